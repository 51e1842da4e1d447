"""The index stage's LLM path (`build_index` with `index.extractor=llm`), with a deterministic
fake teacher (`FunctionChatBackend`) whose canned JSON answers depend on the text unit quoted in
each request: good answers, malformed ones, truncated JSON, a wrong entity type, relationships
naming unknown entities; gleaning, teacher summaries and reports, the response cache, and the
`ragtune index` console script against the fake served on loopback.

Chunking uses the tiny test model's tokenizer, so nothing loads a real model.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ragtune.config import MemoryConfig, load_config
from ragtune.corpus import read_text_units
from ragtune.corpus.types import TextUnit
from ragtune.index import prompts
from ragtune.index.pipeline import IndexReport, build_index
from ragtune.index.tables import read_index
from ragtune.index.types import Entity, MemoryIndex, Relationship
from ragtune.ingest import ingest
from ragtune.llm import ChatRequest
from ragtune.llm.cache import CachedChatBackend
from ragtune.llm.openai_server import OpenAICompatibleServer
from ragtune.workspace import Workspace
from support import (
    FunctionChatBackend,
    extraction_json,
    gazetteer_teacher,
    is_repair,
    report_json,
    request_kind,
    unit_text,
)

RAGTUNE = Path(sys.executable).parent / "ragtune"
TABLES = ("entities", "relationships", "communities", "community_reports")

#: One short note per file; each is one text unit. The marker words pick the fake's answers.
DOCS = {
    "01-founding.md": "Rui Matos founded Tidewater Kayaks in Porto.",
    "02-sister.md": "RUI MATOS's sister Ana Matos paddles with Tidewater Kayaks.",
    "03-market.md": "Ana Matos sells cheese at the Bolhao Market.",
}
FOUNDING, SISTER, MARKET = "founded", "sister", "cheese"

GOOD = {
    FOUNDING: extraction_json(
        [
            ("Rui Matos", "person", "Founded Tidewater Kayaks."),
            ("Tidewater Kayaks", "organization", "A kayak company in Porto."),
            ("Porto", "geo", "The city of Tidewater Kayaks."),
        ],
        [
            ("Rui Matos", "Tidewater Kayaks", "Rui Matos founded it.", 8),
            ("Tidewater Kayaks", "Porto", "It is based in Porto.", 6),
        ],
    ),
    SISTER: extraction_json(
        [
            ("RUI MATOS's", "person", "Has a sister, Ana Matos."),
            ("Ana Matos", "person", "Rui's sister."),
            ("Tidewater Kayaks", "organization", "Ana paddles with it."),
        ],
        [
            ("Ana Matos", "RUI MATOS's", "They are siblings.", 9),
            # Named as in unit 1, not as in this unit's entity list: still the same entity.
            ("Tidewater Kayaks", "Rui Matos", "Rui's company.", 5),
            ("Ana Matos", "Tidewater Kayaks", "Ana paddles with it.", 4),
        ],
    ),
    MARKET: extraction_json(
        [
            ("Ana Matos", "person", "Sells cheese."),
            ("Bolhao Market", "geo", "A market in Porto."),
        ],
        [("Ana Matos", "Bolhao Market", "Ana sells cheese there.", 7)],
    ),
}
NOTHING = extraction_json()
ENTITY_NAMES = ["Ana Matos", "Bolhao Market", "Porto", "Rui Matos", "Tidewater Kayaks"]


def marker(request: ChatRequest) -> str:
    """Which note an extraction request is about."""
    text = unit_text(request)
    [found] = [m for m in (FOUNDING, SISTER, MARKET) if m in text]
    return found


def answers(
    extract: Callable[[ChatRequest], str] | None = None,
    *,
    glean: Callable[[ChatRequest], str] | None = None,
    summarize: Callable[[ChatRequest], str] | None = None,
    report: Callable[[ChatRequest], str] | None = None,
) -> Callable[[ChatRequest], str]:
    """A fake teacher's `respond`: good extractions, empty gleanings, and a named summary and
    report, unless replaced."""

    def respond(request: ChatRequest) -> str:
        kind = request_kind(request)
        if kind == "extract":
            return extract(request) if extract else GOOD[marker(request)]
        if kind == "glean":
            return glean(request) if glean else NOTHING
        if kind == "summarize":
            return summarize(request) if summarize else "TEACHER: " + summarized_name(request)
        if kind == "report":
            return report(request) if report else report_json("Teacher report")
        raise AssertionError(f"unexpected request {request.messages!r}")

    return respond


def summarized_name(request: ChatRequest) -> str:
    """The entity (or relationship) a summary request names."""
    prompt = request.messages[-1]["content"]
    found = re.search(r'of (?:the entity|the relationship between) "(.*)" into one', prompt)
    assert found, request
    return found.group(1)


@pytest.fixture(scope="module")
def tiny_overrides(tiny_model_dir: Path) -> list[str]:
    return [f"chunking.tokenizer=hf:{tiny_model_dir}", f"model=hf:{tiny_model_dir}"]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "notes"
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text + "\n", encoding="utf-8")
    return folder


@pytest.fixture
def make_workspace(
    tmp_path: Path, corpus: Path, tiny_overrides: list[str]
) -> Callable[..., tuple[Workspace, MemoryConfig, list[TextUnit]]]:
    """Ingests the corpus into a new workspace with the given `index.*` overrides."""
    made = 0

    def make(*overrides: str) -> tuple[Workspace, MemoryConfig, list[TextUnit]]:
        nonlocal made
        made += 1
        config = load_config(
            None,
            [f"corpus.path={corpus}", "index.extractor=llm", *tiny_overrides, *overrides],
        )
        workspace = Workspace.at(tmp_path / f"memory-{made}", create=True)
        ingest(workspace, config, progress=False)
        units = read_text_units(workspace.text_units_path)
        assert len(units) == len(DOCS)
        return workspace, config, units

    return make


def by_title(index: MemoryIndex) -> dict[str, Entity]:
    return {entity.title: entity for entity in index.entities}


def pairs(index: MemoryIndex) -> dict[frozenset[str], Relationship]:
    return {frozenset((r.source, r.target)): r for r in index.relationships}


def build(
    workspace: Workspace, config: MemoryConfig, teacher: FunctionChatBackend | CachedChatBackend
) -> IndexReport:
    return build_index(workspace, config, teacher=teacher, progress=False)


# --- good answers --------------------------------------------------------------------------------


def test_good_answers_merge_into_entities_and_relationships(
    make_workspace: Callable[..., tuple[Workspace, MemoryConfig, list[TextUnit]]],
) -> None:
    workspace, config, units = make_workspace(
        "index.gleanings=0", "index.summaries=extractive", "index.reports=extractive"
    )
    founding, sister, market = (u.id for u in units)
    teacher = FunctionChatBackend(answers())

    report = build(workspace, config, teacher)

    assert report.extractor == "llm"
    assert (report.text_units, report.extracted, report.failures) == (3, 3, [])
    assert report.teacher_calls == teacher.stats.model_calls == 3
    assert [request_kind(r) for r in teacher.received] == ["extract"] * 3
    assert report.dropped_relationships == 0
    assert report.summarized == 0
    for table in TABLES:
        assert (workspace.root / f"{table}.parquet").is_file()
    index = read_index(workspace)
    entities = by_title(index)
    assert sorted(entities) == ENTITY_NAMES
    assert (report.entities, report.relationships) == (5, 5)

    # "Rui Matos" (unit 1) and "RUI MATOS's" (unit 2) are one entity; ties go to the first
    # spelling; descriptions are joined in corpus order.
    rui = entities["Rui Matos"]
    assert rui.type == "person"
    assert rui.text_unit_ids == (founding, sister)
    assert rui.frequency == 2
    assert rui.description == "Founded Tidewater Kayaks. Has a sister, Ana Matos."
    assert rui.degree == 2
    assert entities["Tidewater Kayaks"].type == "organization"
    assert entities["Tidewater Kayaks"].text_unit_ids == (founding, sister)
    assert entities["Tidewater Kayaks"].degree == 3
    assert entities["Ana Matos"].text_unit_ids == (sister, market)
    assert entities["Porto"].text_unit_ids == (founding,)
    assert entities["Bolhao Market"].type == "geo"

    relationships = pairs(index)
    company = relationships[frozenset(("Rui Matos", "Tidewater Kayaks"))]
    assert (company.source, company.target) == ("Rui Matos", "Tidewater Kayaks")
    assert company.weight == 8 + 5  # strengths summed over units 1 and 2
    assert company.text_unit_ids == (founding, sister)
    assert company.description == "Rui Matos founded it. Rui's company."
    siblings = relationships[frozenset(("Ana Matos", "Rui Matos"))]
    assert (siblings.weight, siblings.text_unit_ids) == (9, (sister,))
    assert relationships[frozenset(("Ana Matos", "Bolhao Market"))].weight == 7
    assert set(relationships) == {
        frozenset(pair)
        for pair in [
            ("Rui Matos", "Tidewater Kayaks"),
            ("Tidewater Kayaks", "Porto"),
            ("Ana Matos", "Rui Matos"),
            ("Ana Matos", "Tidewater Kayaks"),
            ("Ana Matos", "Bolhao Market"),
        ]
    }

    assert index.communities and len(index.reports) == len(index.communities)
    assert sum(report.communities_per_level.values()) == len(index.communities)
    assert all(r.generated_by == "extractive" for r in index.reports)
    members = {e for c in index.communities for e in c.entity_ids}
    assert members == {e.id for e in index.entities}
    summary = json.loads(workspace.index_summary_path.read_text(encoding="utf-8"))
    assert summary["extractor"] == "llm"
    assert (summary["entities"], summary["relationships"], summary["failed_units"]) == (5, 5, 0)
    assert summary["teacher_calls"] == 3


# --- repair, failure ---------------------------------------------------------------------------

WRONG_TYPE = extraction_json(
    [("Rui Matos", "person", "Founded it."), ("Tidewater Kayaks", "spaceship", "A company.")]
)
NOT_JSON = "Sure! Rui Matos is a person and Tidewater Kayaks is a company."


@pytest.mark.parametrize(
    ("first_answer", "problem"),
    [
        (WRONG_TYPE, "'spaceship' is not one of"),
        (NOT_JSON, "no complete JSON object"),
    ],
    ids=["wrong-entity-type", "not-json"],
)
def test_an_answer_repaired_on_the_repair_turn_succeeds(
    make_workspace: Callable[..., tuple[Workspace, MemoryConfig, list[TextUnit]]],
    first_answer: str,
    problem: str,
) -> None:
    workspace, config, units = make_workspace(
        "index.gleanings=0", "index.summaries=extractive", "index.reports=extractive"
    )

    def extract(request: ChatRequest) -> str:
        if marker(request) == FOUNDING and not is_repair(request):
            return first_answer
        return GOOD[marker(request)]

    teacher = FunctionChatBackend(answers(extract))

    report = build(workspace, config, teacher)

    assert report.failures == []
    assert report.teacher_calls == teacher.stats.model_calls == 4  # three units, one repair
    [repair] = [r for r in teacher.received if is_repair(r)]
    assert marker(repair) == FOUNDING
    assert repair.messages[-2] == {"role": "assistant", "content": first_answer}
    assert problem in repair.messages[-1]["content"]
    assert repair.messages[: len(repair.messages) - 2] == teacher.received[0].messages
    index = read_index(workspace)
    assert by_title(index)["Porto"].text_unit_ids == (units[0].id,)  # from the repaired answer
    assert by_title(index)["Tidewater Kayaks"].type == "organization"


def test_an_answer_never_valid_fails_its_unit_and_the_run_goes_on(
    make_workspace: Callable[..., tuple[Workspace, MemoryConfig, list[TextUnit]]],
) -> None:
    workspace, config, units = make_workspace("index.summaries=extractive")
    # Cut off inside the first entity, as an answer that ran into max_tokens.
    truncated = GOOD[SISTER][: GOOD[SISTER].index('"description"') + 5]

    def extract(request: ChatRequest) -> str:
        return truncated if marker(request) == SISTER else GOOD[marker(request)]

    teacher = FunctionChatBackend(answers(extract))

    report = build(workspace, config, teacher)

    founding, sister, market = (u.id for u in units)
    assert report.failed_units == 1
    [(failed, reason)] = report.failures
    assert failed == sister
    assert "no complete JSON object" in reason
    extractions = [r for r in teacher.received if request_kind(r) in ("extract", "glean")]
    sister_requests = [r for r in extractions if marker(r) == SISTER]
    assert len(sister_requests) == 1 + teacher.structured_retries  # first answer and 2 repairs
    assert all(request_kind(r) == "extract" for r in sister_requests)  # a failed unit never gleans
    entities = by_title(read_index(workspace))
    assert entities["Rui Matos"].text_unit_ids == (founding,)
    assert entities["Ana Matos"].text_unit_ids == (market,)  # only from the unit that worked
    assert "Bolhao Market" in entities and "Porto" in entities
    assert report.extracted == 3
    assert "(3 extracted now, 1 failed)" in report.summary_line()
    summary = json.loads(workspace.index_summary_path.read_text(encoding="utf-8"))
    assert summary["failed_units"] == 1
    assert summary["failures"] == [[sister, reason]]


# --- gleaning ----------------------------------------------------------------------------------

GLEANED_PORTO = extraction_json(
    [("Porto", "geo", "Where the company is.")],
    [("Tidewater Kayaks", "Porto", "Based in Porto.", 3)],
)
FOUNDING_WITHOUT_PORTO = extraction_json(
    [
        ("Rui Matos", "person", "Founded Tidewater Kayaks."),
        ("Tidewater Kayaks", "organization", "A kayak company."),
    ],
    [("Rui Matos", "Tidewater Kayaks", "Rui Matos founded it.", 8)],
)


def gleaning_answers(request: ChatRequest) -> str:
    """Unit 1 finds Porto in its first gleaning only; unit 2 repeats a known entity; unit 3
    finds nothing."""
    glean_turns = sum(
        m["role"] == "user" and m["content"].startswith(prompts.GLEANING_USER)
        for m in request.messages
    )
    if marker(request) == FOUNDING:
        return GLEANED_PORTO if glean_turns == 1 else NOTHING
    if marker(request) == SISTER:
        return extraction_json([("Rui Matos", "person", "Mentioned again.")])
    return NOTHING


def first_extraction(request: ChatRequest) -> str:
    return FOUNDING_WITHOUT_PORTO if marker(request) == FOUNDING else GOOD[marker(request)]


def test_gleaning_continues_the_conversation_and_adds_what_it_finds(
    make_workspace: Callable[..., tuple[Workspace, MemoryConfig, list[TextUnit]]],
) -> None:
    workspace, config, units = make_workspace(
        "index.gleanings=1", "index.summaries=extractive", "index.reports=extractive"
    )
    teacher = FunctionChatBackend(answers(first_extraction, glean=gleaning_answers))

    report = build(workspace, config, teacher)

    gleanings = [r for r in teacher.received if request_kind(r) == "glean"]
    assert sorted(marker(r) for r in gleanings) == sorted([FOUNDING, SISTER, MARKET])
    [founding_glean] = [r for r in gleanings if marker(r) == FOUNDING]
    [founding_first] = [
        r for r in teacher.received if request_kind(r) == "extract" and marker(r) == FOUNDING
    ]
    messages = list(founding_glean.messages)
    assert len(messages) == 4
    assert messages[0] == {"role": "system", "content": prompts.EXTRACTION_SYSTEM}
    asked = prompts.extraction_user(units[0].text, config.index.entity_types)
    assert messages[1] == {"role": "user", "content": asked}
    assert founding_first.messages[1]["content"].startswith(asked)  # + the schema instruction
    assert messages[2] == {"role": "assistant", "content": FOUNDING_WITHOUT_PORTO}
    assert messages[3]["role"] == "user"
    assert messages[3]["content"].startswith(prompts.GLEANING_USER)
    assert report.teacher_calls == 6
    index = read_index(workspace)
    porto = by_title(index)["Porto"]
    assert (porto.type, porto.text_unit_ids) == ("geo", (units[0].id,))
    based = pairs(index)[frozenset(("Tidewater Kayaks", "Porto"))]
    assert (based.weight, based.text_unit_ids) == (3, (units[0].id,))
    # A gleaning naming a known entity again adds its description to the unit's mention.
    assert by_title(index)["Rui Matos"].description == (
        "Founded Tidewater Kayaks. Has a sister, Ana Matos. Mentioned again."
    )


def test_no_gleaning_request_with_zero_gleanings(
    make_workspace: Callable[..., tuple[Workspace, MemoryConfig, list[TextUnit]]],
) -> None:
    workspace, config, _ = make_workspace(
        "index.gleanings=0", "index.summaries=extractive", "index.reports=extractive"
    )
    teacher = FunctionChatBackend(answers(first_extraction, glean=gleaning_answers))

    report = build(workspace, config, teacher)

    assert [request_kind(r) for r in teacher.received] == ["extract"] * 3
    assert report.teacher_calls == 3
    assert "Porto" not in by_title(read_index(workspace))


def test_a_unit_stops_gleaning_when_a_pass_finds_nothing_new(
    make_workspace: Callable[..., tuple[Workspace, MemoryConfig, list[TextUnit]]],
) -> None:
    workspace, config, _ = make_workspace(
        "index.gleanings=2", "index.summaries=extractive", "index.reports=extractive"
    )
    teacher = FunctionChatBackend(answers(first_extraction, glean=gleaning_answers))

    build(workspace, config, teacher)

    gleanings = [r for r in teacher.received if request_kind(r) == "glean"]
    counts = {m: sum(marker(r) == m for r in gleanings) for m in (FOUNDING, SISTER, MARKET)}
    # Unit 1 found Porto in its first pass, so it gleans again; unit 2's pass repeated a known
    # entity and unit 3's found nothing, so each gleans once.
    assert counts == {FOUNDING: 2, SISTER: 1, MARKET: 1}
    [second] = [r for r in gleanings if marker(r) == FOUNDING and len(r.messages) > 4]
    assert len(second.messages) == 6
    assert second.messages[4] == {"role": "assistant", "content": GLEANED_PORTO}
    assert second.messages[5]["content"].startswith(prompts.GLEANING_USER)


# --- dropped relationships -----------------------------------------------------------------------


def test_relationships_naming_unknown_entities_are_dropped_and_counted(
    make_workspace: Callable[..., tuple[Workspace, MemoryConfig, list[TextUnit]]],
) -> None:
    workspace, config, _ = make_workspace(
        "index.gleanings=0", "index.summaries=extractive", "index.reports=extractive"
    )
    founding = json.loads(GOOD[FOUNDING])
    founding["relationships"].append(
        {"source": "Rui Matos", "target": "Lisbon", "description": "Visits.", "strength": 2}
    )
    market = json.loads(GOOD[MARKET])
    market["relationships"].append(
        {"source": "Porto", "target": "Ana Matos", "description": "Lives.", "strength": 2}
    )  # Porto is an entity of unit 1, not of this unit
    canned = {**GOOD, FOUNDING: json.dumps(founding), MARKET: json.dumps(market)}
    teacher = FunctionChatBackend(answers(lambda request: canned[marker(request)]))

    report = build(workspace, config, teacher)

    assert report.dropped_relationships == 2
    assert report.failures == []
    index = read_index(workspace)
    assert "Lisbon" not in by_title(index)
    assert frozenset(("Porto", "Ana Matos")) not in pairs(index)
    assert report.relationships == 5
    # Saved extractions keep the count: a re-run from the journal reports it too.
    again = build(workspace, config, FunctionChatBackend(answers()))
    assert (again.extracted, again.dropped_relationships) == (0, 2)


# --- teacher summaries and reports ---------------------------------------------------------------


def test_teacher_summaries_combine_descriptions_from_several_units(
    make_workspace: Callable[..., tuple[Workspace, MemoryConfig, list[TextUnit]]],
) -> None:
    workspace, config, _ = make_workspace(
        "index.gleanings=0", "index.summaries=llm", "index.reports=extractive"
    )
    teacher = FunctionChatBackend(answers())

    report = build(workspace, config, teacher)

    summarized = [r for r in teacher.received if request_kind(r) == "summarize"]
    names = sorted(summarized_name(r) for r in summarized)
    assert names == ["Ana Matos", "Rui Matos", "Rui Matos and Tidewater Kayaks", "Tidewater Kayaks"]
    [rui_request] = [r for r in summarized if summarized_name(r) == "Rui Matos"]
    prompt = rui_request.messages[-1]["content"]
    assert "- Founded Tidewater Kayaks.\n- Has a sister, Ana Matos." in prompt
    assert report.summarized == 4
    assert report.teacher_calls == 3 + 4
    index = read_index(workspace)
    entities = by_title(index)
    assert entities["Rui Matos"].description == "TEACHER: Rui Matos"
    assert entities["Ana Matos"].description == "TEACHER: Ana Matos"
    assert entities["Porto"].description == "The city of Tidewater Kayaks."  # one description
    company = pairs(index)[frozenset(("Rui Matos", "Tidewater Kayaks"))]
    assert company.description == "TEACHER: Rui Matos and Tidewater Kayaks"


def test_an_empty_teacher_summary_keeps_the_extractive_description(
    make_workspace: Callable[..., tuple[Workspace, MemoryConfig, list[TextUnit]]],
) -> None:
    workspace, config, _ = make_workspace(
        "index.gleanings=0", "index.summaries=llm", "index.reports=extractive"
    )

    def summarize(request: ChatRequest) -> str:
        return "  \n" if summarized_name(request) == "Rui Matos" else "TEACHER"

    report = build(workspace, config, FunctionChatBackend(answers(summarize=summarize)))

    entities = by_title(read_index(workspace))
    assert entities["Rui Matos"].description == "Founded Tidewater Kayaks. Has a sister, Ana Matos."
    assert entities["Ana Matos"].description == "TEACHER"
    assert report.summarized == 3


def test_teacher_reports_carry_the_teachers_title_and_findings(
    make_workspace: Callable[..., tuple[Workspace, MemoryConfig, list[TextUnit]]],
) -> None:
    workspace, config, _ = make_workspace(
        "index.gleanings=0", "index.summaries=extractive", "index.reports=llm"
    )

    def report(request: ChatRequest) -> str:
        entity_table = request.messages[-1]["content"].split("Relationships:")[0]
        members = sorted(n for n in ENTITY_NAMES if f",{n}," in entity_table)
        return report_json(
            "Teacher: " + " & ".join(members),
            [("Finding one", "Because the fake says so."), ("Finding two", "Also scripted.")],
            rating=7.5,
        )

    teacher = FunctionChatBackend(answers(report=report))

    result = build(workspace, config, teacher)

    index = read_index(workspace)
    assert index.reports and result.reports == len(index.communities)
    assert result.failed_reports == 0
    report_requests = [r for r in teacher.received if request_kind(r) == "report"]
    assert len(report_requests) == len(index.communities)
    ids = {e.id: e.title for e in index.entities}
    communities = {c.community: c for c in index.communities}
    for written in index.reports:
        assert written.generated_by == "llm"
        members = sorted(ids[e] for e in communities[written.community].entity_ids)
        assert written.title == "Teacher: " + " & ".join(members)
        assert [(f.summary, f.explanation) for f in written.findings] == [
            ("Finding one", "Because the fake says so."),
            ("Finding two", "Also scripted."),
        ]
        assert written.rank == 7.5
        assert "## Finding one" in written.full_content
        assert json.loads(written.full_content_json)["title"] == written.title


def test_a_report_never_matching_its_schema_falls_back_to_extractive(
    make_workspace: Callable[..., tuple[Workspace, MemoryConfig, list[TextUnit]]],
) -> None:
    workspace, config, _ = make_workspace(
        "index.gleanings=0", "index.summaries=extractive", "index.reports=llm"
    )
    teacher = FunctionChatBackend(answers(report=lambda request: '{"title": "Only a title"}'))

    result = build(workspace, config, teacher)

    index = read_index(workspace)
    assert index.reports
    assert result.failed_reports == len(index.reports) == len(index.communities)
    assert all(r.generated_by == "extractive" for r in index.reports)
    assert all(r.title != "Only a title" for r in index.reports)
    report_requests = [r for r in teacher.received if request_kind(r) == "report"]
    assert len(report_requests) == len(index.reports) * (1 + teacher.structured_retries)
    repairs = [r for r in report_requests if is_repair(r)]
    assert len(repairs) == len(index.reports) * teacher.structured_retries
    assert all("is a required property" in r.messages[-1]["content"] for r in repairs)
    summary = json.loads(workspace.index_summary_path.read_text(encoding="utf-8"))
    assert summary["failed_reports"] == len(index.reports)


# --- the response cache --------------------------------------------------------------------------


def test_a_rerun_through_the_response_cache_makes_no_model_calls(
    make_workspace: Callable[..., tuple[Workspace, MemoryConfig, list[TextUnit]]],
) -> None:
    workspace, config, _ = make_workspace(
        "index.gleanings=1", "index.summaries=llm", "index.reports=llm"
    )

    def extract(request: ChatRequest) -> str:  # one repair, to cache it too
        if marker(request) == MARKET and not is_repair(request):
            return NOT_JSON
        return GOOD[marker(request)]

    first_fake = FunctionChatBackend(answers(extract))
    first_teacher = CachedChatBackend(first_fake, workspace.llm_cache_path)
    first = build(workspace, config, first_teacher)
    first_teacher.close()
    tables = {t: (workspace.root / f"{t}.parquet").read_bytes() for t in TABLES}
    index = read_index(workspace)
    assert first.teacher_calls == first_fake.stats.model_calls > 0
    assert first.cache_hits == 0
    assert first.summarized > 0 and first.failures == []
    assert any(r.generated_by == "llm" for r in index.reports)

    workspace.extractions_path.unlink()  # the response cache alone must suffice
    second_fake = FunctionChatBackend(answers(extract))
    second_teacher = CachedChatBackend(second_fake, workspace.llm_cache_path)
    second = build(workspace, config, second_teacher)
    second_teacher.close()

    assert second_fake.received == []
    assert second.teacher_calls == 0
    assert second.extracted == 3  # re-extracted, all from the cache
    assert second.cache_hits == second_teacher.hits > 0
    assert second_teacher.misses == 0
    assert read_index(workspace) == index
    assert {t: (workspace.root / f"{t}.parquet").read_bytes() for t in TABLES} == tables
    assert workspace.extractions_path.is_file()


# --- the console script --------------------------------------------------------------------------

GAZETTEER = {
    "Rui Matos": "person",
    "Ana Matos": "person",
    "Tidewater Kayaks": "organization",
    "Porto": "geo",
    "Bolhao Market": "geo",
}
SUMMARY_LINE = re.compile(
    r"^indexed (\d+) text units \((\d+) extracted now, (\d+) failed\) with the llm extractor: "
    r"(\d+) entities, (\d+) relationships, (\d+) communities \(per level [\d/]+\), "
    r"(\d+) reports; teacher calls (\d+), cache hits (\d+); \d+\.\d s$"
)


@pytest.fixture
def served_teacher() -> Iterator[tuple[FunctionChatBackend, str]]:
    fake = gazetteer_teacher(GAZETTEER)
    with OpenAICompatibleServer(fake) as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        yield fake, server.base_url


def run_index(*args: str | Path) -> subprocess.CompletedProcess[str]:
    assert RAGTUNE.is_file(), f"the ragtune console script is not installed at {RAGTUNE}"
    env = os.environ.copy()  # carries the test session's RAGTUNE_CACHE and HF_HUB_OFFLINE
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        env.pop(name, None)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.pop("OPENAI_API_KEY", None)
    return subprocess.run(
        [str(RAGTUNE), "index", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_ragtune_index_with_a_served_teacher(
    tmp_path: Path,
    corpus: Path,
    tiny_overrides: list[str],
    served_teacher: tuple[FunctionChatBackend, str],
) -> None:
    fake, base_url = served_teacher
    workspace = tmp_path / "memory"
    teacher = f"openai:fake@{base_url}"
    args: list[str | Path] = [workspace, "--corpus", corpus, "--teacher", teacher, *tiny_overrides]

    result = run_index(*args)

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stdout.splitlines()
    match = SUMMARY_LINE.match(line)
    assert match, line
    units, extracted, failed, entities, relationships, communities, reports, calls, hits = (
        int(g) for g in match.groups()
    )
    index = read_index(Workspace.at(workspace))
    assert (units, extracted, failed) == (3, 3, 0)
    assert (entities, relationships) == (len(index.entities), len(index.relationships)) == (5, 5)
    assert communities == len(index.communities) == reports == len(index.reports) > 0
    assert calls == fake.stats.model_calls == len(fake.received) > 0
    assert hits == 0
    assert all(r.generated_by == "llm" for r in index.reports)
    summary = json.loads((workspace / "index.json").read_text(encoding="utf-8"))
    assert (summary["teacher_calls"], summary["extractor"]) == (calls, "llm")
    assert f"openai:fake@{base_url}" in (workspace / "memory.yaml").read_text(encoding="utf-8")

    again = run_index(*args)

    assert again.returncode == 0, again.stderr
    [line] = again.stdout.splitlines()
    match = SUMMARY_LINE.match(line)
    assert match, line
    assert "(0 extracted now, 0 failed)" in line
    assert "teacher calls 0," in line
    assert int(match.group(9)) > 0  # summaries and reports answered from the response cache
    assert fake.stats.model_calls == calls  # the served teacher got no new request
    assert read_index(Workspace.at(workspace)) == index
