"""Incremental synthesis (`ragtune.synth.increments`): a run keeps the earlier run's records
byte-identical, writes records only for new or changed units, retires those of removed units, and
reports what changed in the card (`changes`); a change of settings writes everything anew.

End to end on conv-26 of the LoCoMo dev file (each session a document, heuristic index and
writer, the tiny model's tokenizer), re-ingested with sessions added or removed; `merge`'s edge
rules on hand-made records.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from ragtune.config import load_config, save_config
from ragtune.corpus.tables import read_text_units
from ragtune.index.pipeline import build_index
from ragtune.ingestion import ingest
from ragtune.synth import STRATEGY_NAMES, DatasetCard
from ragtune.synth.increments import EarlierRun, merge
from ragtune.synth.pipeline import synthesize
from ragtune.synth.records import QARecord
from ragtune.workspace import Workspace
from synth_support import record

#: Every strategy but chain-of-thought (it needs a teacher).
ALL_STRATEGIES = [name for name in STRATEGY_NAMES if name != "cot"]


# --- helpers ------------------------------------------------------------------------------------


def write_corpus(folder: Path, locomo_dev: Path, sessions: set[int]) -> Path:
    """conv-26 with only `sessions`, as `folder/corpus.json` (the same name each time: a
    document's id depends on its source, which names the file)."""
    conversation = json.loads(locomo_dev.read_text(encoding="utf-8"))[0]
    conversation["conversation"] = {
        key: value
        for key, value in conversation["conversation"].items()
        if not key.startswith("session_") or int(key.split("_")[1]) in sessions
    }
    conversation["qa"] = []
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "corpus.json"
    path.write_text(json.dumps([conversation]), encoding="utf-8")
    return path


def build(
    root: Path, locomo_dev: Path, tiny_model_dir: Path, sessions: set[int], *overrides: str
) -> tuple[Workspace, DatasetCard]:
    """A workspace of `sessions`, ingested, indexed and synthesized once; (workspace, card)."""
    corpus = write_corpus(root / "corpus", locomo_dev, sessions)
    config = load_config(
        None,
        [
            f"chunking.tokenizer=hf:{tiny_model_dir}",
            f"model=hf:{tiny_model_dir}",
            f"corpus.path={corpus}",
            *overrides,
        ],
    )
    workspace = Workspace.at(root / "memory", create=True)
    ingest(workspace, config, progress=False)
    build_index(workspace, config, progress=False)
    save_config(config, workspace.config_path)
    return workspace, synthesize(workspace, config, progress=False)


def copy_of(source: Workspace, target: Path) -> Workspace:
    """A private copy of a built workspace (with its corpus folder beside it)."""
    shutil.copytree(source.root.parent, target, symlinks=True)
    return Workspace.at(target / "memory")


def resynthesize(
    workspace: Workspace, locomo_dev: Path, sessions: set[int], *overrides: str
) -> DatasetCard:
    """Ingest the workspace's corpus again with only `sessions`, index, and synthesize."""
    corpus = write_corpus(workspace.root.parent / "corpus", locomo_dev, sessions)
    config = load_config(workspace.config_path, [f"corpus.path={corpus}", *overrides])
    ingest(workspace, config, progress=False)
    build_index(workspace, config, progress=False)
    return synthesize(workspace, config, progress=False)


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def sources(line: str) -> set[str]:
    return set(json.loads(line)["source_ids"])


def unit_ids(workspace: Workspace) -> set[str]:
    return {unit.id for unit in read_text_units(workspace.text_units_path)}


def session_units(workspace: Workspace, session: int) -> set[str]:
    """The ids of the text units of session `session` of conv-26."""
    from ragtune.corpus.tables import read_documents

    wanted = {
        d.id
        for d in read_documents(workspace.documents_path)
        if d.source.endswith(f"/session_{session}")
    }
    assert wanted, f"no document of session {session}"
    return {u.id for u in read_text_units(workspace.text_units_path) if u.document_id in wanted}


def saved_card(workspace: Workspace) -> dict[str, Any]:
    return json.loads(workspace.card_path.read_text(encoding="utf-8"))


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def first_run(
    locomo_dev: Path, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Workspace:
    """Sessions 1 and 2, synthesized with the default strategies. Copy it before writing."""
    workspace, card = build(
        tmp_path_factory.mktemp("increments"), locomo_dev, tiny_model_dir, {1, 2}
    )
    assert card.changes == {"new": card.records, "kept": 0, "retired": 0, "left_out": 0}
    return workspace


@pytest.fixture
def workspace(first_run: Workspace, tmp_path: Path) -> Workspace:
    return copy_of(first_run, tmp_path / "copy")


# --- adding, removing, nothing changed ------------------------------------------------------------


def test_adding_a_document_keeps_the_earlier_lines_and_adds_records_of_its_units(
    workspace: Workspace, locomo_dev: Path
) -> None:
    train_before, val_before = lines(workspace.train_path), lines(workspace.val_path)
    units_before = unit_ids(workspace)

    card = resynthesize(workspace, locomo_dev, {1, 2, 3})

    train, val = lines(workspace.train_path), lines(workspace.val_path)
    # Every earlier line is there, byte for byte, in its file, in its order, before the new ones.
    assert train[: len(train_before)] == train_before
    assert val[: len(val_before)] == val_before
    added = [*train[len(train_before) :], *val[len(val_before) :]]
    assert added, "session 3 brought no record"
    new_units = unit_ids(workspace) - units_before
    assert new_units == session_units(workspace, 3)
    for line in added:
        assert sources(line) & new_units, f"a new record cites no new unit: {line}"
    earlier = len(train_before) + len(val_before)
    assert card.changes["new"] == len(added)
    assert card.changes["kept"] + card.changes["retired"] == earlier
    assert card.changes["retired"] == 0
    assert card.changes["new"] + card.changes["kept"] == card.records == len(train) + len(val)
    assert "settings_changed" not in card.changes
    assert saved_card(workspace)["changes"] == card.changes
    state = json.loads(workspace.synth_state_path.read_text(encoding="utf-8"))
    assert set(state["units"]) == unit_ids(workspace)


def test_removing_a_document_retires_its_records_and_keeps_the_others(
    workspace: Workspace, locomo_dev: Path
) -> None:
    gone = session_units(workspace, 1)
    train_before, val_before = lines(workspace.train_path), lines(workspace.val_path)
    citing = [line for line in [*train_before, *val_before] if sources(line) & gone]
    assert citing, "session 1 is the source of no record"

    card = resynthesize(workspace, locomo_dev, {2})  # ingested again without session 1

    train, val = lines(workspace.train_path), lines(workspace.val_path)
    assert not any(sources(line) & gone for line in [*train, *val])
    assert train == [line for line in train_before if not sources(line) & gone]
    assert val == [line for line in val_before if not sources(line) & gone]
    assert card.changes == {
        "new": 0,
        "kept": len(train) + len(val),
        "retired": len(citing),
        "left_out": 0,
    }


def test_a_run_with_nothing_changed_keeps_every_record_and_the_files(
    workspace: Workspace, locomo_dev: Path
) -> None:
    before = {
        path: path.read_bytes()
        for path in (workspace.train_path, workspace.val_path, workspace.synth_state_path)
    }
    records = len(lines(workspace.train_path)) + len(lines(workspace.val_path))

    card = resynthesize(workspace, locomo_dev, {1, 2})

    assert card.changes == {"new": 0, "kept": records, "retired": 0, "left_out": 0}
    assert {path: path.read_bytes() for path in before} == before


@pytest.mark.parametrize("setting", ["synth.seed=7", "synth.text_units.paraphrases=1"])
def test_changed_settings_write_every_record_anew(
    workspace: Workspace, locomo_dev: Path, setting: str
) -> None:
    earlier = len(lines(workspace.train_path)) + len(lines(workspace.val_path))

    card = resynthesize(workspace, locomo_dev, {1, 2}, setting)

    assert card.changes["settings_changed"] == 1
    assert card.changes["kept"] == 0
    assert card.changes["retired"] == earlier
    assert (
        card.changes["new"]
        == card.records
        == len(lines(workspace.train_path)) + len(lines(workspace.val_path))
    )
    again = resynthesize(workspace, locomo_dev, {1, 2}, setting)  # the new settings stand
    assert again.changes == {"new": 0, "kept": card.records, "retired": 0, "left_out": 0}


def test_with_every_strategy_a_removal_leaves_what_a_fresh_synthesis_would_teach(
    locomo_dev: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """Records drawn from several units (profiles, entity and relationship questions, global
    questions) and records without sources (unanswerable questions) of the removed session are
    replaced by what the remaining sessions give, as a synthesis from scratch would write them:
    nothing is lost of what remains, nothing of the removed session is left."""
    strategies = f"synth.strategies=[{','.join(ALL_STRATEGIES)}]"
    workspace, _ = build(tmp_path / "grown", locomo_dev, tiny_model_dir, {1, 2, 3}, strategies)
    gone = session_units(workspace, 2)

    card = resynthesize(workspace, locomo_dev, {1, 3})
    fresh, _ = build(tmp_path / "fresh", locomo_dev, tiny_model_dir, {1, 3}, strategies)

    def by_kind(space: Workspace) -> dict[str, set[tuple[str, str]]]:
        from ragtune.synth.pipeline import read_records

        found: dict[str, set[tuple[str, str]]] = {}
        for r in read_records(space.train_path) + read_records(space.val_path):
            key = (r.question, r.answer) if r.kind == "profile" else (r.question, "")
            found.setdefault(r.kind, set()).add(key)
        return found

    now, scratch = by_kind(workspace), by_kind(fresh)
    records = [*lines(workspace.train_path), *lines(workspace.val_path)]
    assert not any(sources(line) & gone for line in records)
    for kind in ("profile", "unanswerable", "global", "entity_template"):
        assert scratch.get(kind), f"no {kind} records to compare"
        assert now.get(kind) == scratch[kind], kind
    assert card.changes["retired"] > 0
    assert card.changes["new"] + card.changes["kept"] == len(records)


# --- merge: the edge rules ----------------------------------------------------------------------


def line_of(r: QARecord) -> str:
    return f"{r.question} -> {r.answer} {list(r.source_ids)}"


def key_of(r: QARecord) -> tuple[str, str]:
    return r.question, ""


def earlier_run(
    units: set[str], train: list[QARecord], val: list[QARecord] | None = None
) -> EarlierRun:
    """An earlier run whose lines are marked, so a kept line is told from a fresh one."""
    return EarlierRun(
        "fingerprint",
        frozenset(units),
        [(f"earlier: {line_of(r)}", r) for r in train],
        [(f"earlier: {line_of(r)}", r) for r in val or []],
    )


def test_merge_without_an_earlier_run_writes_every_record_as_new() -> None:
    fresh = [record("Q1?", "A1"), record("Q2?", "A2")]

    changes = merge(None, fresh, [], frozenset({"u1"}), line_of, key_of)

    assert changes.train == [(line_of(r), r) for r in fresh]
    assert changes.to_json() == {"new": 2, "kept": 0, "retired": 0, "left_out": 0}


def test_merge_a_question_asked_of_a_new_unit_supersedes_the_earlier_record() -> None:
    old = record("Where does Ann live?", "Oslo", ("u1",))
    other = record("What is Ann's dog called?", "Rex", ("u1",))
    earlier = earlier_run({"u1"}, [old, other])
    moved = record("Where does Ann live?", "Bergen", ("u1", "u2"))  # the fact changed
    again = record("What is Ann's dog called?", "Rex!", ("u1",))  # the same question, re-phrased

    changes = merge(earlier, [moved, again], [], frozenset({"u1", "u2"}), line_of, key_of)

    assert [text for text, _ in changes.train] == [
        f"earlier: {line_of(other)}",  # kept as it was written, not as phrased now
        line_of(moved),
    ]
    assert changes.to_json() == {"new": 1, "kept": 1, "retired": 1, "left_out": 0}


def test_merge_records_without_sources_follow_what_the_run_draws() -> None:
    still = record("Where does Zara live?", "I don't know.", ())
    dropped = record("What did Omar say about work?", "I don't know.", ())
    cited = record("What is Ann's dog called?", "Rex", ("u1",))
    earlier = earlier_run({"u1"}, [still, cited, dropped])
    fresh = [
        record("Where does Zara live?", "Nobody by that name. I don't know.", ()),
        cited,
        record("What is Hugo's hobby?", "I don't know.", ()),  # drawn for the first time
    ]

    changes = merge(earlier, fresh, [], frozenset({"u1"}), line_of, key_of)

    assert [text for text, _ in changes.train] == [
        f"earlier: {line_of(still)}",
        f"earlier: {line_of(cited)}",
        line_of(fresh[2]),
    ]
    # The one no longer drawn is retired (it may restate what was removed, or be answerable).
    assert changes.to_json() == {"new": 1, "kept": 2, "retired": 1, "left_out": 0}


def test_merge_a_record_of_a_removed_unit_is_retired_and_its_kind_drawn_anew() -> None:
    profile = record(
        "Who is Ann?", "Ann lives in Oslo. Ann has a dog.", ("u1", "u2"), kind="profile"
    )
    kept_profile = record("Who is Bob?", "Bob rows.", ("u3",), kind="profile")
    stale_profile = record("What is Ann like?", "Ann has a dog.", ("u1",), kind="profile")
    fact = record("What is Ann's dog called?", "Rex", ("u1",))
    gone = record("Where does Ann live?", "Oslo", ("u2",))
    earlier = earlier_run({"u1", "u2", "u3"}, [profile, kept_profile, stale_profile, fact], [gone])
    now = frozenset({"u1", "u3"})  # u2 was removed
    redrawn = record("Who is Ann?", "Ann has a dog.", ("u1",), kind="profile")
    rephrased = record("Which dog does Ann have?", "Rex", ("u1",))  # u1 lost no record of its kind

    changes = merge(earlier, [redrawn, kept_profile, fact, rephrased], [], now, line_of, key_of)

    assert [text for text, _ in changes.train] == [
        f"earlier: {line_of(kept_profile)}",
        f"earlier: {line_of(fact)}",
        line_of(redrawn),  # Ann's profile taught again from what remains
    ]
    assert changes.val == []
    # profile (cites u2) and gone (u2) are broken; stale_profile is a profile of u1, which lost
    # a profile, and no longer drawn; the re-phrased fact of u1 is left out.
    assert changes.to_json() == {"new": 1, "kept": 2, "retired": 3, "left_out": 1}
