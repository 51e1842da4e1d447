"""Stages commit as a set (`ragtune.stages`): staged writes, one publication, recovery of
what a killed run left, the writer lock and the generation check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ragtune.errors import RagtuneError
from ragtune.fileio import atomic_write_text
from ragtune.stages import (
    STAGES_FILE,
    check_generation,
    read_stages,
    recover,
    settle,
    stage,
    workspace_lock,
)
from ragtune.workspace import Workspace

INDEX_FILES = (
    "entities.parquet",
    "relationships.parquet",
    "communities.parquet",
    "community_reports.parquet",
    "index.json",
)


def files(root: Path) -> dict[str, bytes]:
    """Every file under `root` (relative name → bytes)."""
    found = sorted(root.rglob("*"))
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in found if p.is_file()}


def write_index(space: Workspace, text: str) -> None:
    for name in INDEX_FILES:
        atomic_write_text(space.root / name, f"{name} {text}")


@pytest.fixture
def space(tmp_path: Path) -> Workspace:
    workspace = Workspace.at(tmp_path / "memory", create=True)
    with stage(workspace, "ingest"):
        atomic_write_text(workspace.text_units_path, "units v1")
        atomic_write_text(workspace.documents_path, "documents v1")
        atomic_write_text(workspace.config_path, "model: embedded\n")
    with stage(workspace, "index"):
        write_index(workspace, "v1")
    return workspace


def test_outputs_appear_only_when_the_stage_succeeds(space: Workspace) -> None:
    with stage(space, "index"):
        write_index(space, "v2")
        atomic_write_text(space.config_path, "model: other\n")
        assert (space.root / "entities.parquet").read_text() == "entities.parquet v1"
        assert space.config_path.read_text() == "model: embedded\n"
    for name in INDEX_FILES:
        assert (space.root / name).read_text() == f"{name} v2"
    assert space.config_path.read_text() == "model: other\n"
    assert not [p.name for p in space.root.iterdir() if p.name.startswith(".")]


def test_a_failed_stage_leaves_the_workspace_as_it_was(space: Workspace) -> None:
    before = files(space.root)
    with pytest.raises(RuntimeError), stage(space, "index"):
        write_index(space, "v2")
        atomic_write_text(space.config_path, "teacher: openai:x@http://127.0.0.1:9\n")
        raise RuntimeError("the teacher is unreachable")
    assert files(space.root) == before
    assert not [p.name for p in space.root.iterdir() if p.name.startswith(".")]


def test_writes_outside_the_stage_outputs_go_straight_to_the_workspace(space: Workspace) -> None:
    journal = space.extractions_path  # a cache: kept even when the stage fails, to resume
    with pytest.raises(RuntimeError), stage(space, "index"):
        atomic_write_text(journal, "extraction of unit 1")
        raise RuntimeError("killed")
    assert journal.read_text() == "extraction of unit 1"


def test_stages_json_records_each_generation_and_what_it_read(space: Workspace) -> None:
    stages = read_stages(space)
    assert set(stages) == {"ingest", "index"}
    assert stages["index"]["inputs"] == {"ingest": stages["ingest"]["generation"]}
    assert sorted(stages["index"]["files"]) == sorted(INDEX_FILES)
    assert sorted(stages["ingest"]["files"]) == ["documents.parquet", "text_units.parquet"]
    first = stages["index"]["generation"]
    with stage(space, "index"):
        write_index(space, "v2")
    assert read_stages(space)["index"]["generation"] != first
    assert read_stages(space)["ingest"] == stages["ingest"]


def test_a_file_changed_outside_its_stage_is_refused_by_the_next_stage(space: Workspace) -> None:
    (space.root / "relationships.parquet").write_text("relationships of another run")
    with pytest.raises(RagtuneError) as raised, stage(space, "synthesize"):
        pass
    message = str(raised.value)
    assert message.startswith(str(space.root.resolve() / "relationships.parquet"))
    assert "mixes two runs" in message
    assert f"run `ragtune index {space.root.resolve()}` again" in message
    check_generation(space, "ingest")  # the other stage's files are fine


def test_a_missing_file_is_left_to_its_reader(space: Workspace) -> None:
    (space.root / "entities.parquet").unlink()
    check_generation(space, "index")


def killed_index_run(space: Workspace, point: str) -> None:
    """Run an index stage writing version 2 in another process, killed at `point`."""
    body = (
        "import sys\n"
        "from ragtune.fileio import atomic_write_text\n"
        "from ragtune.stages import stage\n"
        "from ragtune.workspace import Workspace\n"
        "space = Workspace.at(sys.argv[1])\n"
        "with stage(space, 'index'):\n"
        f"    for name in {INDEX_FILES!r}:\n"
        "        atomic_write_text(space.root / name, f'{name} v2')\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", body, str(space.root)],
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(sys.path),
            "RAGTUNE_TEST_KILL_AT": point,
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == -9, run.stderr


def index_versions(space: Workspace) -> set[str]:
    return {(space.root / name).read_text().split()[-1] for name in INDEX_FILES}


@pytest.mark.parametrize(
    ("point", "after"),
    [
        ("index:write:entities.parquet", "v1"),
        ("index:write:communities.parquet", "v1"),
        ("index:staged", "v1"),
        ("index:committed", "v2"),
        ("publish:entities.parquet", "v2"),
        ("publish:community_reports.parquet", "v2"),
        ("publish:index.json", "v2"),
    ],
)
def test_a_killed_stage_leaves_one_generation_after_recovery(
    space: Workspace, point: str, after: str
) -> None:
    killed_index_run(space, point)
    if point.startswith("publish:entities"):
        assert index_versions(space) == {"v1", "v2"}  # on disk, until the next command
    with stage(space, "synthesize"):  # recovers, then checks the index generation
        pass
    assert index_versions(space) == {after}
    check_generation(space, "index")
    assert not [p.name for p in space.root.iterdir() if p.name.startswith(".")]


def test_recovery_drops_unrecorded_staging_and_temporary_files(space: Workspace) -> None:
    (space.root / ".staging-index").mkdir()
    (space.root / ".staging-index" / "entities.parquet").write_text("half a run")
    (space.root / ".entities.parquet.k2j3.tmp").write_text("half a table")
    (space.root / "adapters" / ".default.x8a.tmp").mkdir(parents=True)
    (space.root / "adapters" / ".default.partial").mkdir()  # checkpoints: kept to resume
    (space.root / "synth").mkdir()
    (space.root / "synth" / ".train.jsonl.0q.tmp").write_text("{")
    with workspace_lock(space):
        done = recover(space)
    assert len(done) == 4
    assert sorted(p.name for p in space.root.rglob(".*")) == [".default.partial"]
    assert (space.root / "entities.parquet").read_text() == "entities.parquet v1"


def test_settle_publishes_a_recorded_commit_for_readers(space: Workspace) -> None:
    staging = space.root / ".staging-ingest"
    staging.mkdir()
    (staging / "text_units.parquet").write_text("units v2")
    moves = {"text_units.parquet": ".staging-ingest/text_units.parquet"}
    (space.root / ".commit-ingest.json").write_text(json.dumps({"moves": moves}))
    settle(space)
    assert space.text_units_path.read_text() == "units v2"
    assert not staging.exists()


def test_one_stage_writes_a_workspace_at_a_time(space: Workspace) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from ragtune.stages import workspace_lock\n"
            "from ragtune.workspace import Workspace\n"
            "with workspace_lock(Workspace.at(sys.argv[1])):\n"
            "    print('locked', flush=True)\n"
            "    time.sleep(60)\n",
            str(space.root),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        busy = pytest.raises(RagtuneError, match="another ragtune command is writing")
        with busy, stage(space, "index"):
            pass
        settle(space)  # a reader does not wait for the writer
    finally:
        holder.kill()
        holder.wait()
    with stage(space, "index"):
        pass


def test_a_stage_inside_the_same_stage_joins_it(space: Workspace) -> None:
    with stage(space, "synthesize"):
        with stage(space, "synthesize"):
            atomic_write_text(space.card_path, "{}")
        assert not space.card_path.exists()
    assert space.card_path.read_text() == "{}"
    assert STAGES_FILE in files(space.root)


def test_the_same_files_again_keep_their_generation(space: Workspace) -> None:
    before = read_stages(space)
    with stage(space, "index"):
        write_index(space, "v1")
    assert read_stages(space) == before


def test_ragtunes_own_writer_outside_a_stage_keeps_the_record_true(space: Workspace) -> None:
    atomic_write_text(space.root / "entities.parquet", "entities written by the Python API")
    check_generation(space, "index")  # the record follows ragtune's own writer
    (space.root / "entities.parquet").write_text("entities changed by something else")
    with pytest.raises(RagtuneError, match="mixes two runs"):
        check_generation(space, "index")
