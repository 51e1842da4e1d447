"""The kill matrix: `ragtune ingest`, `index` and `synthesize` killed with SIGKILL at the
instrumented points of a stage (while staging each output, once all are staged, right after the
commit record, between the renames that publish them; `RAGTUNE_TEST_KILL_AT`), in a real
process. Afterwards the workspace holds one consistent generation — every stage's files are
the ones it committed, the interrupted stage's all old or all new — and a re-run writes what an
uninterrupted run writes."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ragtune.stages import check_generation, read_stages, recover, workspace_lock
from ragtune.workspace import Workspace
from support import RAGTUNE

pytestmark = pytest.mark.subprocess

#: What each stage's run changes, and the files that must then be all old or all new (the
#: summaries index.json and card.json hold timings, so they are compared by generation only).
RUNS = {
    "ingest": (["ingest", "WS", "chunking.size=40", "chunking.overlap=5"], ("text_units.parquet",)),
    "index": (
        ["index", "WS", "index.max_cluster_size=2"],
        ("entities.parquet", "communities.parquet", "community_reports.parquet"),
    ),
    "synthesize": (
        ["synthesize", "WS", "synth.seed=7", "synth.strategies=[text_units,temporal]"],
        ("synth/train.jsonl", "synth/val.jsonl"),
    ),
}

KILLS = [
    ("ingest", "ingest:write:text_units.parquet"),
    ("ingest", "ingest:write:memory.yaml"),
    ("ingest", "ingest:staged"),
    ("ingest", "ingest:committed"),
    ("ingest", "publish:text_units.parquet"),
    ("ingest", "publish:documents.parquet"),
    ("index", "index:write:relationships.parquet"),
    ("index", "index:write:community_reports.parquet"),
    ("index", "index:staged"),
    ("index", "index:committed"),
    ("index", "publish:entities.parquet"),
    ("index", "publish:communities.parquet"),
    ("synthesize", "synthesize:write:val.jsonl"),
    ("synthesize", "synthesize:staged"),
    ("synthesize", "synthesize:committed"),
    ("synthesize", "publish:synth/train.jsonl"),
    ("synthesize", "publish:synth/card.json"),
]


def run(
    args: list[str], workspace: Path, kill_at: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ}
    env.pop("RAGTUNE_TEST_KILL_AT", None)
    if kill_at is not None:
        env["RAGTUNE_TEST_KILL_AT"] = kill_at
    return subprocess.run(
        [str(RAGTUNE), "-q", *(str(workspace) if a == "WS" else a for a in args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def contents(workspace: Path, names: tuple[str, ...]) -> dict[str, bytes]:
    return {name: (workspace / name).read_bytes() for name in names}


@pytest.fixture(scope="module")
def built(
    tiny_model_dir: Path, tiny_locomo_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    root = tmp_path_factory.mktemp("kills") / "memory"
    tiny = [f"chunking.tokenizer=hf:{tiny_model_dir}", f"model=hf:{tiny_model_dir}"]
    for args in (
        ["index", "WS", "--corpus", str(tiny_locomo_file), *tiny],
        ["synthesize", "WS", "synth.strategies=[text_units,temporal]"],
    ):
        done = run(args, root)
        assert done.returncode == 0, done.stderr
    return root


@pytest.fixture(scope="module")
def uninterrupted(
    built: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, bytes]]:
    """What each stage's run writes when nothing kills it."""
    written = {}
    for stage, (args, names) in RUNS.items():
        copy = tmp_path_factory.mktemp(f"clean-{stage}") / "memory"
        shutil.copytree(built, copy)
        done = run(args, copy)
        assert done.returncode == 0, done.stderr
        written[stage] = contents(copy, names)
        assert written[stage] != contents(built, names), f"the {stage} run changes nothing"
    return written


@pytest.mark.timeout(600)
@pytest.mark.parametrize(("stage", "point"), KILLS, ids=[p for _, p in KILLS])
def test_a_killed_stage_leaves_one_generation_and_a_rerun_completes_it(
    built: Path,
    uninterrupted: dict[str, dict[str, bytes]],
    tmp_path: Path,
    stage: str,
    point: str,
) -> None:
    workspace = tmp_path / "memory"
    shutil.copytree(built, workspace)
    args, names = RUNS[stage]
    old = contents(workspace, names)
    old_generation = read_stages(Workspace.at(workspace))[stage]["generation"]

    killed = run(args, workspace, kill_at=point)

    assert killed.returncode == -9, (killed.returncode, killed.stderr)
    space = Workspace.at(workspace)
    with workspace_lock(space):  # what the next command does first
        recover(space)
    for name in ("ingest", "index", "synthesize"):
        check_generation(space, name)
    now = contents(workspace, names)
    committed = point.endswith(":committed") or point.startswith("publish:")
    assert now == (uninterrupted[stage] if committed else old)
    generation = read_stages(space)[stage]["generation"]
    assert (generation != old_generation) == committed
    assert not [p.name for p in workspace.iterdir() if p.name.startswith(".")]

    rerun = run(args, workspace)

    assert rerun.returncode == 0, rerun.stderr
    assert contents(workspace, names) == uninterrupted[stage]
    for name in ("ingest", "index", "synthesize"):
        check_generation(space, name)
