"""Training runs that write and continue adapter versions (`ragtune train --update`), with the
tiny random model of `tiny_model_dir` (no quantization, about three seconds a run).

First the updates refused before any training (nothing new, an adapter from before versions, no
adapter; a cut switch continues the version it was for). Then one story: v1 from the base model,
v2 an update on new records plus a replayed share of old ones, v3 an update of v1 without replay
— what each trained on, what it records, that it starts from its parent's weights, how many
passes an update makes (`train.update_epochs`), the `ragtune adapters` listing; and
`MemoryModel` following the current version between answers. The version store itself
(`ragtune.adapters` on hand-made folders) is `test_adapter_versions.py`.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch

from ragtune.adapters import TRAINED, VERSIONS, AdapterVersions, Trained, record_hash
from ragtune.config import MemoryConfig
from ragtune.corpus.tables import write_text_units
from ragtune.corpus.types import TextUnit
from ragtune.errors import RagtuneError
from ragtune.hashing import content_hash
from ragtune.manifest import MANIFEST
from ragtune.model import MemoryModel
from ragtune.train.trainer import TrainReport, train_adapter
from ragtune.workspace import Workspace
from support import run_ragtune
from train_support import (
    UNITS,
    TrainerSpy,
    adapter_tensors,
    names_in,
    patch_trainer,
    record,
    train_config,
    train_workspace,
    write_version,
)

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
