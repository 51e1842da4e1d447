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
from typing import Any

import pytest
import torch

from ragtune.adapters import AdapterVersions
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


# --- train: the adapter is its own atomic folder; memory.yaml goes with the stage ------------

TRAIN = [
    "train",
    "WS",
    "--max-steps",
    "4",
    "train.quantization=none",
    "train.batch_size=2",
    "train.max_seq_len=256",
    "train.checkpoint_steps=1",
    "train.lr=0.001",
]


def adapter_weights(workspace: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(workspace / "adapters" / "default" / "adapter_model.safetensors")


def same_weights(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> bool:
    return set(first) == set(second) and all(
        torch.allclose(first[k].float(), second[k].float(), rtol=1e-3, atol=1e-5) for k in first
    )


@pytest.fixture(scope="module")
def trained(built: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`built` with an adapter of another learning rate: what a killed run must leave."""
    root = tmp_path_factory.mktemp("trained") / "memory"
    shutil.copytree(built, root)
    done = run([*TRAIN, "train.lr=0.05"], root)
    assert done.returncode == 0, done.stderr
    return root


@pytest.fixture(scope="module")
def trained_again(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What the run under test writes when nothing kills it."""
    root = tmp_path_factory.mktemp("trained-again") / "memory"
    shutil.copytree(trained, root)
    done = run(TRAIN, root)
    assert done.returncode == 0, done.stderr
    return {"weights": adapter_weights(root), "settings": (root / "memory.yaml").read_bytes()}


@pytest.mark.timeout(600)
@pytest.mark.parametrize(
    "point",
    [
        "train:checkpoint-2",
        "train:version-written",
        "adapters:recorded",
        "train:write:memory.yaml",
        "train:committed",
    ],
)
def test_a_killed_training_keeps_the_old_adapter_or_publishes_the_new_one(
    trained: Path, trained_again: dict[str, Any], tmp_path: Path, point: str
) -> None:
    workspace = tmp_path / "memory"
    shutil.copytree(trained, workspace)
    old_weights = adapter_weights(workspace)
    old_adapter = {p.name: p.read_bytes() for p in (workspace / "adapters" / "default").iterdir()}
    old_settings = (workspace / "memory.yaml").read_bytes()

    killed = run(TRAIN, workspace, kill_at=point)

    assert killed.returncode == -9, (killed.returncode, killed.stderr)
    space = Workspace.at(workspace)
    with workspace_lock(space):
        recover(space)
        AdapterVersions(space).repair()  # what every loader and the next train do first
    adapter = {p.name: p.read_bytes() for p in (workspace / "adapters" / "default").iterdir()}
    settings = (workspace / "memory.yaml").read_bytes()
    if point.startswith("train:checkpoint"):  # mid-training: the old adapter, its checkpoint
        assert adapter == old_adapter and settings == old_settings
        assert (workspace / "adapters" / ".default.partial" / "checkpoint-2").is_dir()
        rerun = run([*TRAIN, "--resume"], workspace)
    elif point == "train:version-written":  # the new version is written, not switched to
        assert adapter == old_adapter and settings == old_settings
        rerun = run(TRAIN, workspace)
    else:  # the adapter was published; the settings go with the stage's commit
        assert same_weights(adapter_weights(workspace), trained_again["weights"])
        assert not same_weights(adapter_weights(workspace), old_weights)
        expected = trained_again["settings"] if point == "train:committed" else old_settings
        assert settings == expected
        rerun = run(TRAIN, workspace)
    assert rerun.returncode == 0, rerun.stderr
    assert same_weights(adapter_weights(workspace), trained_again["weights"])
    assert (workspace / "memory.yaml").read_bytes() == trained_again["settings"]
    assert sorted(p.name for p in (workspace / "adapters").iterdir()) == [".versions", "default"]


# --- forget: a killed run leaves the workspace usable; the same command again completes it -------

FORGET = ["forget", "WS", "--source", "tiny.json#conv-tiny/session_2"]


@pytest.mark.timeout(600)
@pytest.mark.parametrize(
    "point",
    [
        "ingest:committed",
        "synthesize:committed",
        "train:checkpoint-2",
        "train:version-written",
        "adapters:recorded",
    ],
)
def test_a_killed_forget_is_completed_by_running_it_again(
    trained: Path, tmp_path: Path, point: str
) -> None:
    from ragtune.adapters import Trained
    from ragtune.corpus.tables import read_documents, read_text_units

    workspace = tmp_path / "memory"
    shutil.copytree(trained, workspace, symlinks=True)
    space = Workspace.at(workspace)
    session = [
        u.id
        for u in read_text_units(space.text_units_path)
        if u.document_id
        in {d.id for d in read_documents(space.documents_path) if d.source.endswith("session_2")}
    ]
    assert session

    killed = run(FORGET, workspace, kill_at=point)
    assert killed.returncode == -9, (killed.returncode, killed.stderr)
    # whatever the point, a loader still finds an adapter to answer with
    assert (workspace / "adapters" / "default" / "adapter_model.safetensors").is_file()

    again = run(FORGET, workspace)

    assert again.returncode == 0, again.stderr
    assert "checked: no file of the workspace holds the removed text" in again.stdout or (
        "not checked" in again.stdout  # the text was gone already: a second run cannot scan
    )
    versions = AdapterVersions(space)
    assert versions.current() is not None
    for number in versions.numbers():  # the answering one, and any left: none saw the session
        trained = Trained.read(versions.path_of(number))
        assert trained is not None and not trained.units & set(session), number
    assert all(not d.source.endswith("session_2") for d in read_documents(space.documents_path))
