"""Resumed and incremental index runs: the extraction journal (`cache/extractions.jsonl`).

A run killed mid-way keeps the batches it finished; a run after new documents extracts only
their units; a torn last journal line is ignored; a different teacher or setting starts afresh.
The teacher is a deterministic fake (`gazetteer_teacher`); chunking uses the tiny test model's
tokenizer, so nothing loads a real model.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from ragtune.config import MemoryConfig, load_config
from ragtune.corpus import read_text_units
from ragtune.corpus.types import TextUnit
from ragtune.index.journal import ExtractionJournal
from ragtune.index.pipeline import build_index
from ragtune.index.tables import read_index
from ragtune.index.types import EntityMention, UnitExtraction
from ragtune.ingestion import ingest
from ragtune.llm import ChatRequest
from ragtune.workspace import Workspace
from support import FunctionChatBackend, gazetteer_teacher, request_kind, unit_text

GAZETTEER = {
    "Rui Matos": "person",
    "Ana Matos": "person",
    "Tidewater Kayaks": "organization",
    "Porto": "geo",
    "Bolhao Market": "geo",
    "Lisbon": "geo",
    "Douro River": "geo",
}

#: Short notes: one text unit each at chunking.size=80.
DOCS = {
    "01-founding.md": "Rui Matos founded Tidewater Kayaks in Porto.",
    "02-sister.md": "Ana Matos, the sister of Rui Matos, paddles with Tidewater Kayaks.",
    "03-market.md": "Ana Matos sells cheese at the Bolhao Market in Porto.",
    "04-trip.md": "Rui Matos drove to Lisbon for a kayak fair.",
}
#: A longer note, added later: several text units.
NEW_DOC = (
    "Ana Matos and Rui Matos paddled down the Douro River on a cold morning in May.\n"
    "They started near Porto and stopped for lunch on a sandy bank.\n"
    "Tidewater Kayaks lent them two boats and a waterproof map of the Douro River.\n"
    "In the evening Ana Matos sold the last of her cheese at the Bolhao Market.\n"
)
TABLES = ("entities", "relationships", "communities", "community_reports")

Setup = tuple[Workspace, MemoryConfig, list[TextUnit]]


@pytest.fixture(scope="module")
def tiny_overrides(tiny_model_dir: Path) -> list[str]:
    return [
        f"chunking.tokenizer=hf:{tiny_model_dir}",
        f"model=hf:{tiny_model_dir}",
        "chunking.size=80",
        "chunking.overlap=10",
    ]


@pytest.fixture
def make_workspace(tmp_path: Path, tiny_overrides: list[str]) -> Callable[..., Setup]:
    """Writes the corpus and ingests it into a new workspace with the given overrides; each
    workspace has its own corpus folder, so one can grow without touching the others."""
    made = 0

    def make(*overrides: str) -> Setup:
        nonlocal made
        made += 1
        corpus = tmp_path / f"notes-{made}"
        corpus.mkdir()
        for name, text in DOCS.items():
            (corpus / name).write_text(text + "\n", encoding="utf-8")
        config = load_config(
            None, [f"corpus.path={corpus}", "index.extractor=llm", *tiny_overrides, *overrides]
        )
        workspace = Workspace.at(tmp_path / f"memory-{made}", create=True)
        ingest(workspace, config, progress=False)
        units = read_text_units(workspace.text_units_path)
        assert len(units) == len(DOCS)
        return workspace, config, units

    return make


def extracted_texts(teacher: FunctionChatBackend) -> list[str]:
    """The unit texts of the extraction requests `teacher` received (first turns only)."""
    return [unit_text(r) for r in teacher.received if request_kind(r) == "extract"]


def journal_lines(workspace: Workspace) -> list[dict[str, object]]:
    return [
        json.loads(line)
        for line in workspace.extractions_path.read_text(encoding="utf-8").splitlines()
    ]


def tables(workspace: Workspace) -> dict[str, bytes]:
    return {t: (workspace.root / f"{t}.parquet").read_bytes() for t in TABLES}


class TeacherCrashError(RuntimeError):
    pass


def crashing_teacher(crash_on: str) -> FunctionChatBackend:
    """The gazetteer teacher (same fingerprint) that dies when asked to extract the unit
    whose text is `crash_on`, as a process killed mid-run."""
    healthy = gazetteer_teacher(GAZETTEER)

    def respond(request: ChatRequest) -> str:
        if request_kind(request) == "extract" and unit_text(request) == crash_on:
            raise TeacherCrashError(crash_on)
        return healthy.respond(request)

    return FunctionChatBackend(respond, fingerprint=healthy.fingerprint)


# --- a killed run resumes ------------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [1, 2])
def test_a_killed_run_resumes_where_it_stopped(
    make_workspace: Callable[..., Setup], batch_size: int
) -> None:
    workspace, config, units = make_workspace(f"index.batch_size={batch_size}")
    crashing = crashing_teacher(crash_on=units[batch_size].text)  # the second batch's first

    with pytest.raises(TeacherCrashError):
        build_index(workspace, config, teacher=crashing, progress=False)

    saved = journal_lines(workspace)
    assert [line["text_unit_id"] for line in saved] == [u.id for u in units[:batch_size]]
    assert all(line["error"] is None and line["entities"] for line in saved)
    assert not workspace.entities_path.exists()  # nothing merged yet

    teacher = gazetteer_teacher(GAZETTEER)
    report = build_index(workspace, config, teacher=teacher, progress=False)

    assert report.extracted == len(units) - batch_size
    assert extracted_texts(teacher) == [u.text for u in units[batch_size:]]
    assert report.failures == []
    assert [line["text_unit_id"] for line in journal_lines(workspace)] == [u.id for u in units]

    reference, reference_config, _ = make_workspace(f"index.batch_size={batch_size}")
    uninterrupted = build_index(
        reference, reference_config, teacher=gazetteer_teacher(GAZETTEER), progress=False
    )
    assert uninterrupted.extracted == len(units)
    assert read_index(workspace) == read_index(reference)
    assert tables(workspace) == tables(reference)
    assert (report.entities, report.relationships, report.reports) == (
        uninterrupted.entities,
        uninterrupted.relationships,
        uninterrupted.reports,
    )


# --- an added document ---------------------------------------------------------------------------


def test_after_adding_a_document_only_its_units_are_extracted(
    make_workspace: Callable[..., Setup],
) -> None:
    workspace, config, old_units = make_workspace()
    first = build_index(workspace, config, teacher=gazetteer_teacher(GAZETTEER), progress=False)
    assert first.extracted == len(old_units)
    assert "Douro River" not in {e.title for e in read_index(workspace).entities}

    assert config.corpus.path is not None
    (Path(config.corpus.path) / "05-river.md").write_text(NEW_DOC, encoding="utf-8")
    ingest(workspace, config, progress=False)
    units = read_text_units(workspace.text_units_path)
    new_units = [u for u in units if u.id not in {o.id for o in old_units}]
    assert len(new_units) >= 2  # the new note is cut into several units
    assert len(units) == len(old_units) + len(new_units)
    teacher = gazetteer_teacher(GAZETTEER)

    report = build_index(workspace, config, teacher=teacher, progress=False)

    assert report.extracted == len(new_units)
    assert report.text_units == len(units)
    assert extracted_texts(teacher) == [u.text for u in new_units]
    index = read_index(workspace)
    entities = {e.title: e for e in index.entities}
    assert set(entities) == set(GAZETTEER)
    unit_ids = [u.id for u in units]
    # Merging covers old and new units: Ana Matos is in notes 2 and 3 and in the new note.
    ana = entities["Ana Matos"]
    assert set(ana.text_unit_ids) >= {old_units[1].id, old_units[2].id}
    assert set(ana.text_unit_ids) & {u.id for u in new_units}
    assert list(ana.text_unit_ids) == sorted(ana.text_unit_ids, key=unit_ids.index)
    assert entities["Lisbon"].text_unit_ids == (old_units[3].id,)
    assert set(entities["Douro River"].text_unit_ids) <= {u.id for u in new_units}
    covered = {unit for community in index.communities for unit in community.text_unit_ids}
    assert {u.id for u in old_units} <= covered
    assert {u.id for u in new_units} & covered
    assert len(index.reports) == len(index.communities) == report.reports
    assert {line["text_unit_id"] for line in journal_lines(workspace)} == set(unit_ids)


def test_after_removing_a_document_its_units_leave_the_index(
    make_workspace: Callable[..., Setup],
) -> None:
    workspace, config, units = make_workspace()
    build_index(workspace, config, teacher=gazetteer_teacher(GAZETTEER), progress=False)
    assert "Lisbon" in {e.title for e in read_index(workspace).entities}

    assert config.corpus.path is not None
    (Path(config.corpus.path) / "04-trip.md").unlink()
    ingest(workspace, config, progress=False)
    teacher = gazetteer_teacher(GAZETTEER)

    report = build_index(workspace, config, teacher=teacher, progress=False)

    assert (report.text_units, report.extracted) == (len(units) - 1, 0)
    assert extracted_texts(teacher) == []
    index = read_index(workspace)
    assert "Lisbon" not in {e.title for e in index.entities}
    assert units[3].id not in {u for e in index.entities for u in e.text_unit_ids}
    assert [line["text_unit_id"] for line in journal_lines(workspace)] == [u.id for u in units[:3]]


# --- a torn journal, a changed extractor ---------------------------------------------------------


def test_a_torn_last_journal_line_is_ignored_and_its_unit_extracted_again(
    make_workspace: Callable[..., Setup],
) -> None:
    workspace, config, units = make_workspace()
    build_index(workspace, config, teacher=gazetteer_teacher(GAZETTEER), progress=False)
    before = read_index(workspace)
    text = workspace.extractions_path.read_text(encoding="utf-8")
    last_line = text.splitlines()[-1]
    assert json.loads(last_line)["text_unit_id"] == units[-1].id
    workspace.extractions_path.write_text(
        text[: len(text) - len(last_line) // 2 - 1], encoding="utf-8"
    )  # killed while writing the last line: it is cut mid-line, without its newline
    teacher = gazetteer_teacher(GAZETTEER)

    report = build_index(workspace, config, teacher=teacher, progress=False)

    assert report.extracted == 1
    assert extracted_texts(teacher) == [units[-1].text]
    assert read_index(workspace) == before
    assert [line["text_unit_id"] for line in journal_lines(workspace)] == [u.id for u in units]


def test_appending_after_a_torn_line_keeps_the_new_entries(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "extractions.jsonl"
    journal = ExtractionJournal(path, "llm:test")
    one = UnitExtraction("tu-1", (EntityMention("Porto", "geo", "A city.", "tu-1"),))
    two = UnitExtraction("tu-2", error="the answer is not a JSON object")
    three = UnitExtraction("tu-3", (EntityMention("Lisbon", "geo", "A city.", "tu-3"),))
    journal.append([one, two])
    text = path.read_text(encoding="utf-8")
    path.write_text(text[:-10], encoding="utf-8")  # tu-2's line torn

    assert set(journal.load()) == {"tu-1"}
    journal.append([three])

    assert journal.load() == {"tu-1": one, "tu-3": three}


@pytest.mark.parametrize(
    "change",
    ["teacher fingerprint", "index.entity_types=person,geo", "index.gleanings=0"],
)
def test_a_changed_teacher_or_setting_extracts_everything_again(
    make_workspace: Callable[..., Setup], change: str
) -> None:
    workspace, config, units = make_workspace()
    first = build_index(workspace, config, teacher=gazetteer_teacher(GAZETTEER), progress=False)
    assert first.extracted == len(units)
    fingerprint = "function:gazetteer"
    if change == "teacher fingerprint":
        fingerprint = "function:another-teacher"
    else:
        config = load_config(workspace.config_path, [change])
    teacher = gazetteer_teacher(GAZETTEER, fingerprint=fingerprint)

    report = build_index(workspace, config, teacher=teacher, progress=False)

    assert report.extracted == len(units)
    assert extracted_texts(teacher) == [u.text for u in units]
    extractors = {line["extractor"] for line in journal_lines(workspace)}
    assert len(extractors) == 1  # the old extractor's entries are gone after the run
    if change.startswith("index.entity_types"):
        types = {e.type for e in read_index(workspace).entities}
        assert types == {"person", "geo"}
    unchanged = build_index(workspace, config, teacher=teacher, progress=False)
    assert unchanged.extracted == 0


# --- the heuristic extractor ---------------------------------------------------------------------


def test_the_heuristic_path_resumes_too(make_workspace: Callable[..., Setup]) -> None:
    workspace, config, units = make_workspace("index.extractor=heuristic")

    first = build_index(workspace, config, progress=False)
    written = tables(workspace)
    second = build_index(workspace, config, progress=False)

    assert first.extractor == second.extractor == "heuristic"
    assert first.extracted == len(units)
    assert second.extracted == 0
    assert (first.teacher_calls, second.teacher_calls) == (0, 0)
    assert first.entities > 0
    assert tables(workspace) == written
    assert all(str(line["extractor"]).startswith("heuristic") for line in journal_lines(workspace))


#: A note about people and places none of the others name.
UNRELATED_DOC = (
    "Kofi Mensah met Ama Owusu at the Makola Market in Accra. Kofi Mensah bought kente "
    "cloth there, and Ama Owusu showed Kofi Mensah the Jamestown Lighthouse.\n"
)


def test_after_adding_a_document_only_the_communities_it_touches_get_new_reports(
    make_workspace: Callable[..., Setup],
) -> None:
    workspace, config, _ = make_workspace("index.extractor=heuristic")
    first = build_index(workspace, config, progress=False)
    before = read_index(workspace)
    assert first.reports_kept == 0  # nothing to keep on a first run

    again = build_index(workspace, config, progress=False)
    assert again.reports_kept == again.reports == first.reports  # nothing changed

    assert config.corpus.path is not None
    (Path(config.corpus.path) / "06-accra.md").write_text(UNRELATED_DOC, encoding="utf-8")
    ingest(workspace, config, progress=False)
    grown = build_index(workspace, config, progress=False)
    after = read_index(workspace)

    assert 0 < grown.reports_kept < grown.reports
    earlier = {
        community.id: report
        for community in before.communities
        for report in before.reports
        if report.community == community.community
    }
    reports = {report.community: report for report in after.reports}
    kept = [
        c
        for c in after.communities
        if c.id in earlier and reports[c.community].summary == earlier[c.id].summary
    ]
    assert len(kept) >= grown.reports_kept
    for community in after.communities:  # a community that changed got a report of its own
        report = reports[community.community]
        assert report.size == community.size and report.level == community.level
    assert (
        "summary_line"
        and f"({grown.reports - grown.reports_kept} written, " in grown.summary_line()
    )
