"""Adapter versions (`ragtune.adapters`): every training run writes `adapters/.versions/<name>/vN`
and the adapter's name is a relative link switched to it in one rename.

First `AdapterVersions` on hand-made version folders (a manifest and a small safetensors file,
no training): switching, copies of a workspace with and without its links, adapters from before
versions, a switch cut short, refusing mixed-up folders, pruning and lineage. Then one story of
training with the tiny random model of `tiny_model_dir` (two steps a run, no quantization,
about three seconds each): v1 from the base model, v2 an update on new records plus a replayed
share of old ones, v3 an update of v1 without replay — what each trained on, what it records,
that it starts from its parent's weights; the `ragtune adapters` commands; and `MemoryModel`
following the current version between answers.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file

from ragtune.adapters import TRAINED, VERSIONS, AdapterVersions, Trained, record_hash
from ragtune.config import MemoryConfig
from ragtune.corpus.tables import write_text_units
from ragtune.corpus.types import TextUnit
from ragtune.errors import RagtuneError
from ragtune.hashing import content_hash
from ragtune.manifest import MANIFEST, Manifest
from ragtune.model import MemoryModel
from ragtune.stages import workspace_lock
from ragtune.train.trainer import TrainReport, train_adapter
from ragtune.workspace import Workspace
from support import run_ragtune
from train_support import (
    UNITS,
    TrainerSpy,
    adapter_tensors,
    patch_trainer,
    record,
    train_config,
    train_workspace,
)

WEIGHTS = "adapter_model.safetensors"


# -- hand-made versions -----------------------------------------------------------------------


def write_version(
    folder: Path,
    version: int | None,
    *,
    adapter: str = "default",
    parent: int | None = None,
    weights: bool = True,
    value: float | None = None,
) -> Path:
    """A version folder as training writes it, small: its manifest (without the version
    fields when `version` is None: an adapter from before versions) and a safetensors file
    whose one tensor is filled with `value` (default the version number)."""
    folder.mkdir(parents=True)
    number = version or 1
    Manifest(
        adapter=adapter,
        base_model={"spec": "hf:fake", "source": "fake", "weights_sha256": "0" * 64},
        corpus_sha256="0" * 64,
        data_card={},
        hyperparameters={},
        metrics={"steps": 2, "val_loss": 1.25 * number},
        version=number,
        parent=parent,
        added={"records": 10 * number, "replayed": number},
        created=f"2026-01-0{number}T00:00:00+00:00",
    ).write(folder)
    if version is None:
        path = folder / MANIFEST
        data = json.loads(path.read_text(encoding="utf-8"))
        for key in ("version", "parent", "added", "created"):
            del data[key]
        path.write_text(json.dumps(data), encoding="utf-8")
    if weights:
        filled = float(value if value is not None else number)
        save_file({"lora_B": torch.full((2, 2), filled)}, str(folder / WEIGHTS))
    return folder


def weight_value(folder: Path) -> float:
    """The value the tensor of a hand-made version is filled with."""
    return float(load_file(str(folder / WEIGHTS))["lora_B"][0, 0])


def versions_at(root: Path, *parents: int | None) -> AdapterVersions:
    """A workspace with versions v1, v2, ... (version i+1 with parent `parents[i]`), none
    current yet."""
    workspace = Workspace.at(root, create=True)
    versions = AdapterVersions(workspace)
    for index, parent in enumerate(parents):
        write_version(versions.folder(index + 1), index + 1, parent=parent)
    return versions


@pytest.fixture
def two(tmp_path: Path) -> AdapterVersions:
    """v1 and v2 (an update of v1), v2 current."""
    versions = versions_at(tmp_path / "memory", None, 1)
    versions.use(2)
    return versions


def names_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_use_points_the_name_at_a_version_through_a_relative_link(tmp_path: Path) -> None:
    versions = versions_at(tmp_path / "memory", None, 1)
    assert versions.current() is None
    assert versions.numbers() == [1, 2]
    assert versions.next_number() == 3

    versions.use(1)

    assert versions.current() == 1
    assert versions.link.is_symlink()
    assert versions.link.readlink() == Path(VERSIONS) / "default" / "v1"  # relative
    assert weight_value(versions.link) == 1.0
    assert (versions.root / "current").read_text(encoding="utf-8") == "v1\n"

    versions.use(2)

    assert versions.current() == 2
    assert weight_value(versions.link) == 2.0
    assert [(v.number, v.label, v.current, v.manifest.parent) for v in versions.all()] == [
        (1, "v1", False, None),
        (2, "v2", True, 1),
    ]
    assert [v.folder for v in versions.all()] == [versions.folder(1), versions.folder(2)]
    assert versions.get(1).manifest.added == {"records": 10, "replayed": 1}
    assert versions.next_number() == 3
    assert names_in(versions.workspace.adapters_dir) == [VERSIONS, "default"]
    assert names_in(versions.root) == ["current", "v1", "v2"]


def test_a_missing_version_is_refused_naming_those_there(two: AdapterVersions) -> None:
    with pytest.raises(RagtuneError) as raised:
        two.use(7)

    assert "has no version v7 (versions: v1, v2)" in str(raised.value)
    assert two.current() == 2


def test_a_workspace_copied_with_its_links_keeps_its_versions(
    two: AdapterVersions, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(two.workspace.root, copy, symlinks=True)
    shutil.rmtree(two.workspace.root)  # the copy's link must not lead back here

    versions = AdapterVersions(Workspace.at(copy))

    assert versions.link.is_symlink() and versions.current() == 2
    assert versions.link.resolve() == versions.folder(2).resolve()
    assert weight_value(versions.link) == 2.0
    versions.use(1)
    assert weight_value(versions.link) == 1.0


def test_a_workspace_copied_without_links_is_the_version_its_manifest_names(
    two: AdapterVersions, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(two.workspace.root, copy, symlinks=False)
    versions = AdapterVersions(Workspace.at(copy))
    assert versions.link.is_dir() and not versions.link.is_symlink()  # the link became a folder

    assert versions.current() == 2
    assert versions.numbers() == [1, 2]
    assert [(v.number, v.current) for v in versions.all()] == [(1, False), (2, True)]
    assert versions.get(2).folder == versions.link
    assert versions.repair() == []  # nothing to finish: the folder is v2, as recorded

    versions.use(1)  # the folder is dropped for a link (v2 is there with the same weights)

    assert versions.link.is_symlink() and versions.current() == 1
    assert weight_value(versions.link) == 1.0
    assert names_in(versions.workspace.adapters_dir) == [VERSIONS, "default"]
    assert names_in(versions.root) == ["current", "v1", "v2"]
    assert weight_value(versions.folder(2)) == 2.0
    versions.use(2)
    assert weight_value(versions.link) == 2.0


def test_a_copied_folder_is_migrated_when_its_own_version_is_used(
    two: AdapterVersions, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(two.workspace.root, copy, symlinks=False)
    versions = AdapterVersions(Workspace.at(copy))

    versions.use(2)

    assert versions.link.is_symlink() and versions.current() == 2
    assert versions.link.resolve() == versions.folder(2).resolve()


def test_a_copied_folder_with_other_weights_than_its_version_is_refused(
    two: AdapterVersions, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(two.workspace.root, copy, symlinks=False)
    versions = AdapterVersions(Workspace.at(copy))
    save_file({"lora_B": torch.full((2, 2), 9.0)}, str(versions.link / WEIGHTS))

    with pytest.raises(RagtuneError, match="other weights under that number"):
        versions.use(1)

    assert not versions.link.is_symlink() and weight_value(versions.link) == 9.0
    assert weight_value(versions.folder(2)) == 2.0


def test_a_folder_from_before_versions_becomes_version_1_on_first_use(tmp_path: Path) -> None:
    workspace = Workspace.at(tmp_path / "memory", create=True)
    versions = AdapterVersions(workspace)
    write_version(versions.link, None, value=5.0)

    assert versions.numbers() == [1]
    assert versions.current() == 1
    assert versions.next_number() == 2
    [legacy] = versions.all()
    assert legacy.folder == versions.link and legacy.manifest.version == 1 and legacy.current
    assert legacy.manifest.parent is None and legacy.manifest.added == {}

    versions.use(1)

    assert versions.link.is_symlink()
    assert versions.link.readlink() == Path(VERSIONS) / "default" / "v1"
    assert weight_value(versions.folder(1)) == 5.0
    assert (versions.folder(1) / MANIFEST).is_file()
    assert names_in(workspace.adapters_dir) == [VERSIONS, "default"]

    write_version(versions.folder(2), 2, parent=1)
    versions.use(2)
    assert weight_value(versions.link) == 2.0
    versions.use(1)
    assert weight_value(versions.link) == 5.0


def test_a_new_version_beside_a_folder_from_before_versions_moves_it_to_v1(
    tmp_path: Path,
) -> None:
    workspace = Workspace.at(tmp_path / "memory", create=True)
    versions = AdapterVersions(workspace)
    write_version(versions.link, None, value=5.0)
    write_version(versions.folder(versions.next_number()), 2)

    versions.use(2)  # what training does after writing v2

    assert versions.current() == 2 and versions.numbers() == [1, 2]
    assert weight_value(versions.folder(1)) == 5.0


def test_repair_finishes_a_switch_cut_after_its_record(two: AdapterVersions) -> None:
    two.use(1)
    (two.root / "current").write_text("v2\n", encoding="utf-8")  # recorded, not switched
    leftovers = [two.root / ".v3.x1y2.tmp", two.root / ".current.a1b2.tmp"]
    leftovers[0].mkdir()
    leftovers[1].write_text("v", encoding="utf-8")
    assert two.current() == 1

    done = two.repair()

    assert two.current() == 2 and weight_value(two.link) == 2.0
    assert "adapter 'default' switched to v2 (a switch was cut short)" in done
    assert sorted(line for line in done if line.startswith("removed")) == [
        "removed adapters/.versions/default/.current.a1b2.tmp",
        "removed adapters/.versions/default/.v3.x1y2.tmp",
    ]
    assert not any(path.exists() for path in leftovers)
    assert two.repair() == []


def test_a_switch_killed_after_its_record_is_finished_by_repair(two: AdapterVersions) -> None:
    two.use(1)
    code = (
        "import sys\n"
        "from ragtune.adapters import AdapterVersions\n"
        "from ragtune.workspace import Workspace\n"
        "AdapterVersions(Workspace.at(sys.argv[1])).use(2)\n"
    )
    killed = subprocess.run(
        [sys.executable, "-c", code, str(two.workspace.root)],
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(sys.path),
            "RAGTUNE_TEST_KILL_AT": "adapters:recorded",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert killed.returncode == -9, killed.stderr

    assert two.current() == 1  # the link was not switched
    assert (two.root / "current").read_text(encoding="utf-8") == "v2\n"
    two.repair()
    assert two.current() == 2 and weight_value(two.link) == 2.0


def test_repair_leaves_the_temporary_files_of_a_writer_holding_the_lock(
    two: AdapterVersions,
) -> None:
    # A loader repairs without the workspace lock: while a writer (a training run) holds it,
    # the `.vN.*.tmp` folder it is writing, or the `.vN.removing.old` it is deleting, is not
    # a leftover. A cut switch is still finished.
    two.use(1)
    (two.root / "current").write_text("v2\n", encoding="utf-8")
    writing = two.root / ".v3.x1y2.tmp"
    writing.mkdir()
    with workspace_lock(two.workspace):
        done = two.repair()
        assert writing.is_dir()
        assert two.current() == 2
        assert two.repair(locked=True) == ["removed adapters/.versions/default/.v3.x1y2.tmp"]
        assert not writing.exists()
    assert done == ["adapter 'default' switched to v2 (a switch was cut short)"]
    writing.mkdir()
    assert two.repair() == ["removed adapters/.versions/default/.v3.x1y2.tmp"]


def test_a_folder_holding_another_version_is_refused(two: AdapterVersions) -> None:
    write_version(two.folder(3), 2, parent=1)  # v3's folder holds a v2

    with pytest.raises(RagtuneError) as raised:
        two.use(3)

    message = str(raised.value)
    assert message.startswith(str(two.folder(3) / MANIFEST))
    assert "holds adapter 'default' version v2, not 'default' v3" in message
    assert "mixed up" in message
    assert two.current() == 2


def test_a_folder_of_another_adapter_is_refused(two: AdapterVersions) -> None:
    write_version(two.folder(3), 3, adapter="other")

    with pytest.raises(RagtuneError, match="holds adapter 'other' version v3, not 'default' v3"):
        two.get(3)


def test_a_version_without_weights_is_refused(two: AdapterVersions) -> None:
    write_version(two.folder(3), 3, weights=False)

    with pytest.raises(RagtuneError) as raised:
        two.use(3)

    assert str(raised.value) == (
        f"{two.folder(3)}: version v3 has no weights (*.safetensors); train again"
    )
    assert two.current() == 2


def test_prune_keeps_the_newest_versions_and_the_current_one(tmp_path: Path) -> None:
    versions = versions_at(tmp_path / "memory", None, 1, 2, 3, 4)
    versions.use(2)

    assert versions.prune(0) == []
    assert versions.prune(5) == []
    assert versions.prune(2) == [1, 3]  # v2 is older than the newest two, but current

    assert versions.numbers() == [2, 4, 5]
    assert versions.current() == 2 and weight_value(versions.link) == 2.0
    assert names_in(versions.root) == ["current", "v2", "v4", "v5"]
    assert versions.remove([2, 9]) == []
    versions.use(5)
    assert versions.prune(1) == [2, 4]
    assert versions.numbers() == [5]


def test_lineage_follows_the_parents_still_on_disk(tmp_path: Path) -> None:
    versions = versions_at(tmp_path / "memory", None, 1, 2, 1)
    versions.use(4)

    assert [v.number for v in versions.lineage(3)] == [3, 2, 1]
    assert [v.number for v in versions.lineage(4)] == [4, 1]
    assert [v.number for v in versions.lineage(1)] == [1]
    assert versions.lineage(9) == []

    assert versions.remove([2]) == [2]
    assert [v.number for v in versions.lineage(3)] == [3]


# -- updates refused before any training ------------------------------------------------------


def fact(number: int, unit: str) -> dict[str, Any]:
    """A training record about fact `number`, synthesized from the text unit `unit`."""
    return {**record(number), "source_ids": [unit]}


FIRST = [fact(n, "tu-1" if n < 4 else "tu-2") for n in range(8)]
#: New facts, from a new text unit of a new document.
ADDED = [fact(n, "tu-3") for n in (20, 21, 22, 23)]
MORE = [fact(n, "tu-3") for n in (30, 31)]
NEW_UNIT = TextUnit("tu-3", "doc-2", 0, "Fact 20 is 140. Fact 30 is 210.", 14, 0, 31)


def set_records(workspace: Workspace, records: list[dict[str, Any]]) -> None:
    workspace.train_path.write_text(
        "".join(json.dumps(r) + "\n" for r in records), encoding="utf-8"
    )


def trained_on(records: list[dict[str, Any]]) -> Trained:
    return Trained(
        frozenset(record_hash(r) for r in records),
        frozenset(str(u) for r in records for u in r["source_ids"]),
    )


@pytest.fixture
def untrained(tmp_path: Path, tiny_model_dir: Path) -> tuple[Workspace, MemoryConfig]:
    workspace = train_workspace(tmp_path / "memory", train=FIRST)
    return workspace, train_config(tiny_model_dir, "train.quantization=none")


def test_an_update_with_nothing_new_is_refused(
    untrained: tuple[Workspace, MemoryConfig],
) -> None:
    workspace, config = untrained
    versions = AdapterVersions(workspace)
    trained_on(FIRST).write(write_version(versions.folder(1), 1))
    versions.use(1)

    with pytest.raises(RagtuneError) as raised:
        train_adapter(workspace, config, progress=False, update=True)

    assert "nothing new to train: adapter 'default' v1 was trained on every record" in str(
        raised.value
    )
    assert versions.numbers() == [1]


def test_an_update_of_an_adapter_from_before_versions_is_refused(
    untrained: tuple[Workspace, MemoryConfig],
) -> None:
    workspace, config = untrained
    write_version(workspace.adapter_path("default"), None)  # no trained.json either

    with pytest.raises(RagtuneError) as raised:
        train_adapter(workspace, config, progress=False, update=True)

    assert "adapter 'default' v1 was trained before ragtune recorded what each version" in str(
        raised.value
    )
    assert "run `ragtune train` once without --update" in str(raised.value)


def test_an_update_without_an_adapter_is_refused(
    untrained: tuple[Workspace, MemoryConfig],
) -> None:
    workspace, config = untrained

    with pytest.raises(RagtuneError, match="has no adapter 'default' to update"):
        train_adapter(workspace, config, progress=False, update=True)


def test_an_update_continues_the_version_a_cut_switch_was_for(
    untrained: tuple[Workspace, MemoryConfig],
) -> None:
    # A switch to v2 killed after its record: the update continues v2, the current version
    # once the switch is finished, not v1 (the link's version until then).
    workspace, config = untrained
    versions = AdapterVersions(workspace)
    for number in (1, 2):
        trained_on(FIRST).write(write_version(versions.folder(number), number))
    versions.use(1)
    (versions.root / "current").write_text("v2\n", encoding="utf-8")

    with pytest.raises(RagtuneError, match="nothing new to train: adapter 'default' v2"):
        train_adapter(workspace, config, progress=False, update=True)


# -- the CLI on hand-made versions ------------------------------------------------------------


def test_adapters_list_shows_the_versions_and_marks_the_current_one(
    two: AdapterVersions,
) -> None:
    run = run_ragtune("adapters", "list", two.workspace.root)

    assert run.returncode == 0, run.stderr
    header, first, second = run.stdout.splitlines()
    assert header.split() == [
        "version",
        "parent",
        "created",
        "records",
        "replayed",
        "steps",
        "val",
        "loss",
    ]
    assert first.startswith("   v1 ") and first.split() == [
        "v1",
        "-",
        "2026-01-01T00:00:00+00:00",
        "10",
        "1",
        "2",
        "1.250",
    ]
    assert second.startswith("*  v2 ") and second.split()[1:] == [
        "v2",
        "v1",
        "2026-01-02T00:00:00+00:00",
        "20",
        "2",
        "2",
        "2.500",
    ]


def test_adapters_list_without_an_adapter_says_so(tmp_path: Path) -> None:
    Workspace.at(tmp_path / "memory", create=True)

    run = run_ragtune("adapters", "list", tmp_path / "memory")

    assert run.returncode == 1
    assert "has no adapter 'default'; run `ragtune train`" in run.stderr


@pytest.mark.parametrize("version", ["v1", "1"])
def test_adapters_use_switches_the_link(two: AdapterVersions, version: str) -> None:
    run = run_ragtune("adapters", "use", two.workspace.root, version)

    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().endswith("v2 → v1")
    assert two.current() == 1
    assert two.link.resolve() == two.folder(1).resolve()


def test_adapters_use_refuses_what_is_not_a_version(two: AdapterVersions) -> None:
    bad = run_ragtune("adapters", "use", two.workspace.root, "latest")
    missing = run_ragtune("adapters", "use", two.workspace.root, "v3")

    assert bad.returncode == 2 and "'latest' is not a version" in bad.stderr
    assert missing.returncode == 1 and "has no version v3 (versions: v1, v2)" in missing.stderr
    assert two.current() == 2


def test_train_from_without_update_is_a_usage_error(two: AdapterVersions) -> None:
    run = run_ragtune("train", two.workspace.root, "--from", "v1")

    assert run.returncode == 2
    assert "--from needs --update" in run.stderr


def test_train_from_a_malformed_version_is_a_usage_error(two: AdapterVersions) -> None:
    run = run_ragtune("train", two.workspace.root, "--update", "--from", "one")

    assert run.returncode == 2
    assert "Invalid value for '--from': 'one' is not a version" in run.stderr


# -- a story of training runs with the tiny model ---------------------------------------------


@dataclass
class Story:
    """v1 trained on FIRST; ADDED appended, v2 an update (replay 0.5); MORE appended, v3 an
    update of v1 (while v2 is current) without replay."""

    workspace: Workspace
    config: MemoryConfig
    reports: dict[int, TrainReport] = field(default_factory=dict)
    spies: dict[int, TrainerSpy] = field(default_factory=dict)
    #: Each version's LoRA tensors as its run wrote them.
    saved: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)

    @property
    def versions(self) -> AdapterVersions:
        return AdapterVersions(self.workspace)

    def facts(self, version: int) -> list[int]:
        """The facts the run of `version` trained on, one per dataset row, sorted."""
        trainer = self.spies[version].trainers[-1]
        rows = [trainer.processing_class.decode(row["input_ids"]) for row in trainer.train_dataset]
        return sorted(int(n) for row in rows for n in re.findall(r"What is fact (\d+)\?", row))

    def initial(self, version: int) -> dict[str, torch.Tensor]:
        """The LoRA weights the run of `version` started from, named as saved."""
        return by_saved_name(self.spies[version].initial_lora)


def by_saved_name(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """LoRA weights named as PEFT names them in a model (``...lora_B.<adapter>.weight``)
    renamed as it saves them (``...lora_B.weight``)."""
    return {
        re.sub(r"\.(lora_[AB])\.[^.]+\.weight$", r".\1.weight", n): w for n, w in weights.items()
    }


def lora_in(model: MemoryModel) -> dict[str, torch.Tensor]:
    """The LoRA weights `model` answers with, named as saved."""
    return by_saved_name(
        {n: p.detach() for n, p in model.backend.model.named_parameters() if "lora_" in n}
    )


def same(weights: dict[str, torch.Tensor], saved: dict[str, torch.Tensor]) -> bool:
    return set(weights) == set(saved) and all(
        weights[name].to(tensor.dtype).equal(tensor) for name, tensor in saved.items()
    )


@pytest.fixture(scope="module")
def story(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Story:
    workspace = train_workspace(tmp_path_factory.mktemp("versions") / "memory", train=FIRST)
    write_text_units(workspace.text_units_path, [*UNITS, NEW_UNIT])
    settings = ("train.lr=0.001", "train.quantization=none")
    config = train_config(tiny_model_dir, *settings, "train.replay=0.5")
    story = Story(workspace, config)

    def run(version: int, config: MemoryConfig, **update: Any) -> None:
        with pytest.MonkeyPatch.context() as monkeypatch:
            spy = patch_trainer(monkeypatch)
            report = train_adapter(workspace, config, progress=False, **update)
        assert report.version == version
        story.reports[version] = report
        story.spies[version] = spy
        story.saved[version] = adapter_tensors(story.versions.folder(version))

    run(1, config)
    set_records(workspace, [*FIRST, *ADDED])
    run(2, config, update=True)
    set_records(workspace, [*FIRST, *ADDED, *MORE])
    run(3, train_config(tiny_model_dir, *settings, "train.replay=0"), update=True, parent=1)
    return story


def test_the_first_run_writes_version_1_with_what_it_trained_on(story: Story) -> None:
    v1 = story.versions.get(1)

    assert story.reports[1].parent is None and story.reports[1].new_records == 8
    assert v1.manifest.version == 1 and v1.manifest.parent is None
    assert v1.manifest.added == {"records": 8, "replayed": 0, "units": 2, "documents": ["doc-1"]}
    assert v1.manifest.created
    assert Trained.read(v1.folder) == trained_on(FIRST)
    data = json.loads((v1.folder / TRAINED).read_text(encoding="utf-8"))
    assert data == {"records": sorted(record_hash(r) for r in FIRST), "units": ["tu-1", "tu-2"]}
    assert story.facts(1) == list(range(8))
    # It started from a fresh LoRA (B zero) and learned something.
    assert all(not w.any() for n, w in story.initial(1).items() if ".lora_B." in n)
    assert any(w.any() for n, w in story.saved[1].items() if ".lora_B." in n)


def test_an_update_trains_the_new_records_and_a_replayed_share_of_the_old(story: Story) -> None:
    report, v2 = story.reports[2], story.versions.get(2)

    assert (report.version, report.parent) == (2, 1)
    assert (report.new_records, report.replayed_records) == (4, 4)  # round(0.5 × 8) replayed
    assert "v2, an update of v1 (4 new records, 4 replayed)" in report.summary_line()
    assert v2.manifest.parent == 1
    assert v2.manifest.added == {"records": 4, "replayed": 4, "units": 1, "documents": ["doc-2"]}
    assert Trained.read(v2.folder) == trained_on([*FIRST, *ADDED])
    facts = story.facts(2)
    hashes = [record_hash(r) for r in FIRST]
    assert len(facts) == 8
    assert [n for n in facts if n >= 20] == [20, 21, 22, 23]
    # The replayed share: the first of the old records ranked by a hash seeded with
    # train.seed, so that a rerun replays the same ones.
    ranked = sorted(range(8), key=lambda n: content_hash(str(story.config.train.seed), hashes[n]))
    assert [n for n in facts if n < 8] == sorted(ranked[:4])


def test_an_update_makes_train_update_epochs_passes_and_a_first_run_train_epochs(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    workspace = train_workspace(tmp_path / "memory", train=FIRST)
    write_text_units(workspace.text_units_path, [*UNITS, NEW_UNIT])
    config = train_config(
        tiny_model_dir,
        "train.max_steps=-1",
        "train.batch_size=4",
        "train.quantization=none",
        "train.replay=0",
    )
    assert (config.train.epochs, config.train.update_epochs) == (2.0, 1.0)  # the defaults

    first = train_adapter(workspace, config, progress=False)
    set_records(workspace, [*FIRST, *ADDED])
    update = train_adapter(workspace, config, progress=False, update=True)

    # 8 records at batch 4, two passes; then the 4 added records, one pass.
    assert (first.epochs, first.steps) == (2.0, 4)
    assert (update.new_records, update.epochs, update.steps) == (4, 1.0, 1)


def test_update_epochs_0_means_train_epochs(tiny_model_dir: Path) -> None:
    settings = train_config(tiny_model_dir, "train.epochs=3", "train.update_epochs=0").train
    assert (settings.epochs_for(update=True), settings.epochs_for(update=False)) == (3.0, 3.0)
    settings = train_config(tiny_model_dir, "train.epochs=3", "train.update_epochs=0.5").train
    assert (settings.epochs_for(update=True), settings.epochs_for(update=False)) == (0.5, 3.0)


def test_an_update_starts_from_its_parents_weights(story: Story) -> None:
    for version, parent in ((2, 1), (3, 1)):
        assert same(story.initial(version), story.saved[parent]), version
        assert not same(story.saved[version], story.saved[parent]), version  # and trained


def test_an_update_of_an_older_version_without_replay_trains_only_what_it_lacks(
    story: Story,
) -> None:
    report, v3 = story.reports[3], story.versions.get(3)

    assert (report.parent, report.new_records, report.replayed_records) == (1, 6, 0)
    assert v3.manifest.parent == 1
    assert v3.manifest.added == {"records": 6, "replayed": 0, "units": 1, "documents": ["doc-2"]}
    # What v1 lacks: v2's records too (v3 is not v2's child), and nothing old.
    assert story.facts(3) == [20, 21, 22, 23, 30, 31]
    assert Trained.read(v3.folder) == trained_on([*FIRST, *ADDED, *MORE])
    assert [v.number for v in story.versions.lineage(3)] == [3, 1]
    assert [v.number for v in story.versions.lineage(2)] == [2, 1]


def test_each_run_switches_the_name_to_its_version(story: Story) -> None:
    versions = story.versions

    assert versions.numbers() == [1, 2, 3] and versions.current() == 3
    assert versions.link.readlink() == Path(VERSIONS) / "default" / "v3"
    assert story.reports[3].adapter == versions.link
    assert same(adapter_tensors(versions.link), story.saved[3])
    assert names_in(story.workspace.adapters_dir) == [VERSIONS, "default"]  # no checkpoints


def test_an_update_after_every_record_was_trained_is_refused(
    story: Story, tiny_model_dir: Path
) -> None:
    config = train_config(tiny_model_dir, "train.quantization=none")

    with pytest.raises(RagtuneError, match="nothing new to train: adapter 'default' v3"):
        train_adapter(story.workspace, config, progress=False, update=True)

    assert story.versions.numbers() == [1, 2, 3]


def test_adapters_list_shows_the_story(story: Story) -> None:
    run = run_ragtune("adapters", "list", story.workspace.root)

    assert run.returncode == 0, run.stderr
    rows = [line.replace("*", " ").split() for line in run.stdout.splitlines()[1:]]
    assert [(r[0], r[1], r[3], r[4], r[5]) for r in rows] == [
        ("v1", "-", "8", "0", "2"),
        ("v2", "v1", "4", "4", "2"),
        ("v3", "v1", "6", "0", "2"),
    ]
    assert [line[0] for line in run.stdout.splitlines()[1:]] == [" ", " ", "*"]


# -- MemoryModel follows the current version --------------------------------------------------


@pytest.fixture
def memory_copy(story: Story, tmp_path: Path) -> AdapterVersions:
    """A copy of the story's workspace (links kept) with v2 current."""
    root = tmp_path / "memory"
    shutil.copytree(story.workspace.root, root, symlinks=True)
    versions = AdapterVersions(Workspace.at(root))
    versions.use(2)
    return versions


QUESTION = "What is fact 20?"


def test_a_memory_model_follows_a_switch_before_its_next_answer(
    story: Story, memory_copy: AdapterVersions
) -> None:
    model = MemoryModel.from_workspace(memory_copy.workspace.root, device="cpu")
    assert model.version == 2 and same(lora_in(model), story.saved[2])

    memory_copy.use(1)
    assert model.version == 2  # nothing is loaded until the next answer
    answer = model.answer(QUESTION, max_new_tokens=4)

    assert isinstance(answer, str)
    assert model.version == 1 and model.manifest.version == 1
    assert same(lora_in(model), story.saved[1])
    assert len(model.backend.model.peft_config) == 1  # the old adapter was deleted

    switched = run_ragtune("adapters", "use", memory_copy.workspace.root, "v3")
    assert switched.returncode == 0, switched.stderr
    streamed = "".join(model.stream(QUESTION, max_new_tokens=4))

    assert isinstance(streamed, str)
    assert model.version == 3 and same(lora_in(model), story.saved[3])
    assert model.refresh() is False  # already the current one


def test_a_memory_model_not_following_keeps_its_version(
    story: Story, memory_copy: AdapterVersions
) -> None:
    model = MemoryModel.from_workspace(
        memory_copy.workspace.root, device="cpu", follow_versions=False
    )

    memory_copy.use(1)
    model.answer(QUESTION, max_new_tokens=4)

    assert model.version == 2 and same(lora_in(model), story.saved[2])
    assert model.refresh() is True  # asked to, it loads the current one
    assert model.version == 1 and same(lora_in(model), story.saved[1])


def test_a_memory_model_keeps_answering_when_the_new_version_is_unusable(
    story: Story, memory_copy: AdapterVersions, caplog: pytest.LogCaptureFixture
) -> None:
    model = MemoryModel.from_workspace(memory_copy.workspace.root, device="cpu")
    path = memory_copy.folder(1) / MANIFEST
    data = json.loads(path.read_text(encoding="utf-8"))
    data["base_model"]["weights_sha256"] = "0" * 64  # trained on other base weights
    path.write_text(json.dumps(data), encoding="utf-8")
    memory_copy.use(1)

    with caplog.at_level(logging.WARNING, logger="ragtune"):
        first = model.answer(QUESTION, max_new_tokens=4)
        second = model.answer(QUESTION, max_new_tokens=4)

    assert first == second
    assert model.version == 2 and same(lora_in(model), story.saved[2])
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "still answering with v2" in warnings[0]
    with pytest.raises(RagtuneError, match="was trained on"):
        model.refresh()
