"""The index stage's LLM extraction (`build_index` with `index.extractor=llm`), with a
deterministic fake teacher (`FunctionChatBackend`) whose canned JSON answers depend on the text
unit quoted in each request: good answers, malformed ones, truncated JSON, a wrong entity type,
relationships naming unknown entities, and gleaning.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from llm_index_scenario import (
    ENTITY_NAMES,
    FOUNDING,
    GOOD,
    MARKET,
    NOT_JSON,
    NOTHING,
    SISTER,
    TABLES,
    answers,
    build,
    by_title,
    marker,
    pairs,
)
from ragtune.config import MemoryConfig
from ragtune.corpus.types import TextUnit
from ragtune.index import prompts
from ragtune.index.tables import read_index
from ragtune.llm import ChatRequest
from ragtune.workspace import Workspace
from support import (
    FunctionChatBackend,
    extraction_json,
    is_repair,
    request_kind,
)

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
