"""What every synthesis strategy shares, and the entity and relationship templates and chain of
thought, on a real LoCoMo slice (conv-26, sessions 1-4: Caroline and Melanie, May to June 2023,
heuristic index), without a teacher and with a fake teacher. The strategies over text units
(text units, temporal, unanswerable, recall) are tested in `test_synth_local_qa.py`, global
questions in `test_synth_global_qa.py`.

The strategies run once per module, in the pipeline's order (each seeing the records of those
before it: the fixtures `heuristic` and `taught` of conftest.py), so the tests read their output;
tests of other settings run a strategy again.
"""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from ragtune.config import load_config
from ragtune.prompts import MEMORY_SYSTEM_PROMPT
from ragtune.synth.pipeline import synthesize
from ragtune.synth.records import QARecord, fact_id
from ragtune.synth.settings import EntityTemplateSettings, RelationshipTemplateSettings
from ragtune.synth.strategies import (
    STRATEGIES,
    ChainOfThoughtQA,
    EntityTemplateQA,
    RelationshipTemplateQA,
)
from ragtune.synth.strategies.templates import (
    ENTITY_TEMPLATES,
    GENERIC_TEMPLATES,
    RELATIONSHIP_TEMPLATES,
)
from ragtune.workspace import Workspace
from synth_runs import DIA_ID, Run, context_of, group_by_fact, record_asking


@pytest.fixture(params=["heuristic", "taught"])
def run(request: pytest.FixtureRequest) -> Run:
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


# --- what every strategy's records share -----------------------------------------------------


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_records_are_traceable_and_in_trl_format(run: Run, name: str) -> None:
    strategy = STRATEGIES[name]
    generated = run.generated[name]
    context = run.context
    if name == "cot" and context.teacher is None:
        assert generated.records == []
        return
    assert generated.records, f"{name} wrote nothing"
    for record in generated.records:
        assert record.kind in strategy.kinds
        assert record.query_scope == ("global" if name == "global_qa" else "local")
        assert record.question.strip() and record.answer.strip()
        assert re.fullmatch(r"fact-[0-9a-f]+", record.fact_id)
        if name == "unanswerable":
            assert record.source_ids == ()
        else:
            assert record.source_ids, record
            assert all(unit_id in context.unit_by_id for unit_id in record.source_ids)
            assert record.source_ids == context.in_order(record.source_ids)  # corpus order
        assert all(DIA_ID.match(turn) for turn in record.evidence)
        line = record.to_json()
        assert line["prompt"] == [
            {"role": "system", "content": MEMORY_SYSTEM_PROMPT},
            {"role": "user", "content": record.question},
        ]
        assert line["completion"] == [{"role": "assistant", "content": record.answer}]
        assert line["kind"] == record.kind
        assert line["query_scope"] == record.query_scope
        assert line["source_ids"] == list(record.source_ids)
        assert line["fact_id"] == record.fact_id
        assert line["evidence"] == list(record.evidence)
        assert "support" not in line
        assert QARecord.from_json(json.loads(json.dumps(line))) == record
    for reason, kind in generated.dropped:
        assert kind in strategy.kinds, (reason, kind)


def test_strategies_are_deterministic(heuristic: Run, slice_copy: Workspace) -> None:
    again = context_of(slice_copy, heuristic.config)
    for name in ("entity_templates", "text_units", "temporal", "unanswerable", "profiles"):
        earlier = heuristic.earlier[name]
        strategy = STRATEGIES[name](getattr(heuristic.config.synth, name))
        assert strategy.generate(again, earlier).records == heuristic.records(name), name


# --- entity and relationship templates -------------------------------------------------------


def test_entity_templates_ask_each_entity_several_ways(heuristic: Run) -> None:
    context = heuristic.context
    settings = heuristic.config.synth.entity_templates
    records = heuristic.records("entity_templates")
    by_fact = group_by_fact(records)
    asked = [
        e
        for e in context.index.entities
        if e.type in settings.types and e.frequency >= settings.min_frequency and e.description
    ]
    assert asked and len(by_fact) == len(asked)
    for entity in asked:
        group = by_fact[fact_id("entity", entity.id)]
        templates = ENTITY_TEMPLATES.get(entity.type, GENERIC_TEMPLATES)
        assert len(group) == min(settings.per_entity, len(templates)) > 1
        assert len({r.question for r in group}) == len(group)  # paraphrases, not repeats
        for record in group:
            assert record.answer == entity.description
            assert entity.title in record.question
            assert record.source_ids == context.in_order(entity.text_unit_ids)
    caroline = context.entity("Caroline")
    assert caroline is not None and caroline.type == "person"
    assert {r.question for r in by_fact[fact_id("entity", caroline.id)]} <= {
        t.format(name="Caroline") for t in ENTITY_TEMPLATES["person"]
    }


def test_entity_templates_ask_only_configured_types(heuristic: Run) -> None:
    context = heuristic.context
    types = {e.type for e in context.index.entities}
    assert "concept" in types  # the heuristic index has salient phrases, never asked by default
    by_answer = {e.description: e for e in context.index.entities}
    default = heuristic.records("entity_templates")
    assert {by_answer[r.answer].type for r in default} <= set(EntityTemplateSettings().types)
    assert all(by_answer[r.answer].type != "concept" for r in default)

    people = EntityTemplateQA(EntityTemplateSettings(types=["person"], per_entity=1))
    records = people.generate(context, []).records
    persons = [e for e in context.index.entities if e.type == "person" and e.description]
    assert len(records) == len(persons)
    assert {by_answer[r.answer].type for r in records} == {"person"}
    assert any("Caroline" in r.question for r in records)

    frequent = EntityTemplateQA(EntityTemplateSettings(min_frequency=5))
    kept = {by_answer[r.answer].title for r in frequent.generate(context, []).records}
    assert kept and all(context.entity(t).frequency >= 5 for t in kept)  # type: ignore[union-attr]
    assert len(kept) < len(group_by_fact(default))


def test_relationship_templates_name_both_ends_and_answer_with_the_description(
    heuristic: Run,
) -> None:
    context = heuristic.context
    settings = heuristic.config.synth.relationship_templates
    records = heuristic.records("relationship_templates")
    relationships = {fact_id("relationship", r.id): r for r in context.index.relationships}
    by_fact = group_by_fact(records)
    assert len(by_fact) >= 5
    for group in by_fact.values():
        assert len(group) == settings.per_relationship
        assert len({r.question for r in group}) == len(group)
        relationship = relationships[group[0].fact_id]
        for record in group:
            assert record.answer == relationship.description
            assert relationship.source in record.question
            assert relationship.target in record.question
            assert record.source_ids == context.in_order(relationship.text_unit_ids)
        ends = [context.entity(relationship.source), context.entity(relationship.target)]
        typed = all(e is not None and e.type in settings.types for e in ends)
        assert typed or relationship.weight >= settings.min_weight
    questions = {r.question for r in records}
    assert questions & {
        t.format(a="Caroline", b="Melanie") for t in RELATIONSHIP_TEMPLATES
    } or questions & {t.format(a="Melanie", b="Caroline") for t in RELATIONSHIP_TEMPLATES}


def test_relationship_templates_skip_weak_untyped_relationships(heuristic: Run) -> None:
    context = heuristic.context
    strict = RelationshipTemplateQA(
        RelationshipTemplateSettings(types=[], min_weight=1e9, per_relationship=1)
    )
    assert strict.generate(context, []).records == []
    people = RelationshipTemplateQA(
        RelationshipTemplateSettings(types=["person"], min_weight=1e9, per_relationship=1)
    )
    records = people.generate(context, []).records
    assert records
    for record in records:
        relationship = next(
            r
            for r in context.index.relationships
            if fact_id("relationship", r.id) == record.fact_id
        )
        assert context.entity(relationship.source).type == "person"  # type: ignore[union-attr]
        assert context.entity(relationship.target).type == "person"  # type: ignore[union-attr]


# --- chain of thought ------------------------------------------------------------------------


def test_cot_writes_nothing_without_a_teacher(heuristic: Run) -> None:
    assert ChainOfThoughtQA.needs_teacher
    assert heuristic.context.teacher is None
    generated = ChainOfThoughtQA().generate(heuristic.context, [])
    assert generated.records == []
    assert not generated.dropped


def test_the_pipeline_skips_cot_without_a_teacher(synth_workspace: Workspace) -> None:
    config = load_config(synth_workspace.config_path, ["synth.writer=heuristic"])
    card = synthesize(synth_workspace, config, strategies=[ChainOfThoughtQA()], progress=False)
    assert "cot" in card.skipped and "teacher" in card.skipped["cot"]
    assert card.train == card.val == 0


def test_cot_with_a_teacher_writes_reasoned_answers(taught: Run) -> None:
    context = taught.context
    settings = taught.config.synth.cot
    records = taught.records("cot")
    kinds = Counter(r.kind for r in records)
    asked_entities = [
        e for e in context.index.entities if e.type in settings.types and e.description
    ]
    asked_relationships = [r for r in context.index.relationships if r.description]
    # two entities were answered badly: one in prose, one with a question not naming it
    assert kinds["entity_cot"] == min(len(asked_entities), settings.max_entities) - 2
    assert kinds["relationship_cot"] == min(len(asked_relationships), settings.max_relationships)
    for record in records:
        reasoning, _, final = record.answer.rpartition("\n\nFinal answer: ")
        assert reasoning and final, record.answer
        assert record.support is not None  # grounded on the description too
    caroline = record_asking(records, "What do the memories say about Caroline?")
    entity = context.entity("Caroline")
    assert entity is not None
    assert caroline.kind == "entity_cot"
    assert caroline.answer == (
        "The passages mention Caroline.\n\nFinal answer: Caroline is in the memories."
    )
    assert caroline.source_ids == context.in_order(entity.text_unit_ids)[: settings.max_units]
    assert caroline.support == entity.description
    # each prompt shows the description and dated passages
    prompt = next(p for p in taught.prompts if "\nEntity: Caroline\n" in p)
    assert entity.description in prompt and "[1] (8 May 2023)" in prompt
    for relationship in context.index.relationships[:10]:
        a, b = relationship.source, relationship.target
        record = record_asking(records, f"How are {a} and {b} related?")
        assert record.kind == "relationship_cot"
        assert (
            record.answer == f"{a} and {b} appear together.\n\nFinal answer: {a} is related to {b}."
        )
        assert (
            record.source_ids == context.in_order(relationship.text_unit_ids)[: settings.max_units]
        )
        assert record.support == relationship.description


def test_cot_drops_unnamed_subjects_and_counts_malformed_answers(taught: Run) -> None:
    generated = taught.generated["cot"]
    assert generated.dropped[("question does not name its subject", "entity_cot")] == 1
    assert generated.dropped[("malformed teacher output", "entity_cot")] == 1
    questions = {r.question for r in generated.records}
    assert "What happened to them?" not in questions
    assert "What do the memories say about Sweden?" not in questions
    assert "What do the memories say about Caroline?" in questions
