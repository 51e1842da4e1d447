"""Each synthesis strategy on a real LoCoMo slice (conv-26, sessions 1-4: Caroline and Melanie,
May to June 2023, heuristic index), without a teacher and with a fake teacher.

The strategies run once per module, in the pipeline's order (each seeing the records of those
before it), so the tests read their output; tests of other settings run a strategy again.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ragtune.config import MemoryConfig, load_config
from ragtune.corpus.tables import read_documents, read_text_units
from ragtune.index.tables import read_index
from ragtune.llm import ChatRequest
from ragtune.synth.context import SynthContext
from ragtune.synth.grounding import support
from ragtune.synth.pipeline import synthesize
from ragtune.synth.prompts import SYSTEM
from ragtune.synth.records import QARecord, fact_id
from ragtune.synth.settings import (
    DEFAULT_ABSTENTION,
    EntityTemplateSettings,
    RecallSettings,
    RelationshipTemplateSettings,
    TextUnitSettings,
    UnanswerableSettings,
)
from ragtune.synth.strategies import (
    RECALL_PROMPT,
    STRATEGIES,
    ChainOfThoughtQA,
    EntityTemplateQA,
    Generated,
    RecallQA,
    RelationshipTemplateQA,
    TextUnitQA,
    UnanswerableQA,
)
from ragtune.synth.strategies.templates import (
    ENTITY_TEMPLATES,
    GENERIC_TEMPLATES,
    RELATIONSHIP_TEMPLATES,
)
from ragtune.synth.strategies.unanswerable import FIRST_NAMES
from ragtune.workspace import Workspace
from support import FunctionChatBackend

SPEAKERS = ("Caroline", "Melanie")
DIA_ID = re.compile(r"^D\d+:\d+$")
NOT_JSON = "Sure! Here is what I think about it, in prose rather than JSON."
RECALL_LEAD = RECALL_PROMPT.split("{question}")[0]


# --- the fake teacher ------------------------------------------------------------------------


@dataclass
class TeacherRules:
    """Which requests the fake teacher answers badly (filled in from the index)."""

    not_json_entity: str = ""
    unnamed_entity: str = ""
    not_json_unit: str = ""
    not_json_sentence: str = "lake sunrise"
    not_json_reduce: str = "necklace"
    no_points_question: str = "What are the main themes of your memory?"
    prompts: list[str] = field(default_factory=list)


def _first_user(request: ChatRequest) -> str:
    return next(m["content"] for m in request.messages if m["role"] == "user")


def _quoted(prompt: str) -> str:
    start = prompt.index('"""\n') + 4
    return prompt[start : prompt.index('\n"""', start)]


def _first_sentence(unit_text: str) -> str:
    line = next(line for line in unit_text.splitlines() if line.strip())
    body = re.sub(r"^(?:Caroline|Melanie): ", "", line.strip())
    return re.split(r"(?<=[.!?])\s", body)[0]


def fake_teacher(rules: TeacherRules) -> FunctionChatBackend:
    """A teacher answering each synthesis prompt with JSON that fits its schema (except where
    `rules` says to answer with prose), chosen by the request's first user message."""

    def respond(request: ChatRequest) -> str:
        assert request.messages[0]["content"] == SYSTEM
        prompt = _first_user(request)
        rules.prompts.append(prompt)
        if prompt.startswith("Here is an entity from the memories."):
            name = re.search(r"^Entity: (.+)$", prompt, re.MULTILINE)
            assert name is not None
            title = name.group(1)
            if title == rules.not_json_entity:
                return NOT_JSON
            question = (
                "What happened to them?"
                if title == rules.unnamed_entity
                else f"What do the memories say about {title}?"
            )
            return json.dumps(
                {
                    "question": question,
                    "reasoning": f"The passages mention {title}.",
                    "answer": f"{title} is in the memories.",
                }
            )
        if prompt.startswith("Here is a relationship between two entities"):
            ends = re.search(r"^Between: (.+) and (.+)$", prompt, re.MULTILINE)
            assert ends is not None
            a, b = ends.groups()
            return json.dumps(
                {
                    "question": f"How are {a} and {b} related?",
                    "reasoning": f"{a} and {b} appear together.",
                    "answer": f"{a} is related to {b}.",
                }
            )
        if prompt.startswith("Here is a passage from the memories"):
            text = _quoted(prompt)
            if text == rules.not_json_unit:
                return NOT_JSON
            quote = _first_sentence(text)
            return json.dumps(
                {
                    "questions": [
                        {
                            "question": f"What was said first in: {quote}?",
                            "paraphrases": [f"Which words open: {quote}?", f"Opening: {quote}?"],
                            "answer": quote,
                            "quote": quote,
                        },
                        {
                            "question": "What did the astronaut eat on the moon?",
                            "paraphrases": [],
                            "answer": "Cheese",
                            "quote": "The astronaut ate cheese on the moon.",
                        },
                    ]
                }
            )
        if prompt.startswith("In a conversation on"):
            said = re.search(r'^In a conversation on .+?, (.+?) said: "(.+)"$', prompt, re.M)
            assert said is not None
            speaker, sentence = said.groups()
            if rules.not_json_sentence in sentence:
                return NOT_JSON
            return json.dumps(
                {
                    "question": f"When did {speaker} say this happened: {sentence}",
                    "paraphrases": [f"On what day, by {speaker}'s words: {sentence}"],
                }
            )
        if prompt.startswith("Question: ") and "\nHere is a report" in prompt:
            question = prompt.split("\n", 1)[0][len("Question: ") :]
            if question == rules.no_points_question:
                return json.dumps({"points": []})
            report = prompt.split("Here is a report about part of the memories:\n", 1)[1]
            title = report.split("\n", 1)[0].lstrip("# ").strip()
            return json.dumps(
                {
                    "points": [
                        {"description": f"Point from {title}", "score": 80},
                        {"description": "A useless point", "score": 0},
                    ]
                }
            )
        if prompt.startswith("Question: ") and "\nKey points from reports" in prompt:
            question = prompt.split("\n", 1)[0][len("Question: ") :]
            if rules.not_json_reduce in question:
                return NOT_JSON
            points = [line[2:] for line in prompt.splitlines() if line.startswith("- ")]
            return json.dumps({"answer": f"Reduced: {points[0]}"})
        raise AssertionError(f"unexpected request: {prompt[:200]}")

    return FunctionChatBackend(respond, native=True)


# --- fixtures: the slice, read once; every strategy run once per writer ------------------------


@dataclass
class Run:
    context: SynthContext
    config: MemoryConfig
    generated: dict[str, Generated]
    earlier: dict[str, list[QARecord]]
    rules: TeacherRules | None = None

    def records(self, name: str) -> list[QARecord]:
        return self.generated[name].records

    @property
    def prompts(self) -> list[str]:
        """The user prompts the fake teacher was sent (repairs included)."""
        assert self.rules is not None
        return self.rules.prompts


@pytest.fixture(scope="module")
def slice_copy(indexed_slice: Path, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    target = tmp_path_factory.mktemp("synth-strategies") / "memory"
    shutil.copytree(indexed_slice, target)
    return Workspace.at(target)


def _context(
    workspace: Workspace,
    config: MemoryConfig,
    teacher: FunctionChatBackend | None = None,
) -> SynthContext:
    return SynthContext(
        read_text_units(workspace.text_units_path),
        read_documents(workspace.documents_path),
        read_index(workspace),
        config.synth,
        teacher=teacher,
        writer="llm" if teacher else "heuristic",
    )


def _run_all(
    context: SynthContext, config: MemoryConfig
) -> tuple[dict[str, Generated], dict[str, list[QARecord]]]:
    generated: dict[str, Generated] = {}
    earlier: dict[str, list[QARecord]] = {}
    kept: list[QARecord] = []
    for name, cls in STRATEGIES.items():
        earlier[name] = list(kept)
        generated[name] = cls(getattr(config.synth, name)).generate(context, kept)
        kept += generated[name].records
    return generated, earlier


@pytest.fixture(scope="module")
def heuristic(slice_copy: Workspace) -> Run:
    config = load_config(slice_copy.config_path)
    context = _context(slice_copy, config)
    generated, earlier = _run_all(context, config)
    return Run(context, config, generated, earlier)


@pytest.fixture(scope="module")
def taught(slice_copy: Workspace) -> Run:
    config = load_config(slice_copy.config_path)
    index = read_index(slice_copy)
    titles = {entity.title for entity in index.entities}
    assert {"Melanie", "Sweden"} <= titles
    rules = TeacherRules(not_json_entity="Sweden", unnamed_entity="Melanie")
    rules.not_json_unit = read_text_units(slice_copy.text_units_path)[0].text
    context = _context(slice_copy, config, fake_teacher(rules))
    generated, earlier = _run_all(context, config)
    return Run(context, config, generated, earlier, rules)


@pytest.fixture(params=["heuristic", "taught"])
def run(request: pytest.FixtureRequest) -> Run:
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


def _by_fact(records: Sequence[QARecord]) -> dict[str, list[QARecord]]:
    groups: dict[str, list[QARecord]] = defaultdict(list)
    for record in records:
        groups[record.fact_id].append(record)
    return groups


def _one(records: Sequence[QARecord], question: str) -> QARecord:
    found = [r for r in records if r.question == question]
    assert len(found) == 1, (question, [r.question for r in records])
    return found[0]


def _turn_speakers(context: SynthContext) -> dict[str, str]:
    return {t.id: t.speaker for d in context.documents.values() for t in d.turns}


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
        assert line["prompt"] == [{"role": "user", "content": record.question}]
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
    again = _context(slice_copy, heuristic.config)
    for name in ("entity_templates", "text_units", "temporal", "unanswerable"):
        earlier = heuristic.earlier[name]
        strategy = STRATEGIES[name](getattr(heuristic.config.synth, name))
        assert strategy.generate(again, earlier).records == heuristic.records(name), name


# --- entity and relationship templates -------------------------------------------------------


def test_entity_templates_ask_each_entity_several_ways(heuristic: Run) -> None:
    context = heuristic.context
    settings = heuristic.config.synth.entity_templates
    records = heuristic.records("entity_templates")
    by_fact = _by_fact(records)
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
    assert len(kept) < len(_by_fact(default))


def test_relationship_templates_name_both_ends_and_answer_with_the_description(
    heuristic: Run,
) -> None:
    context = heuristic.context
    settings = heuristic.config.synth.relationship_templates
    records = heuristic.records("relationship_templates")
    relationships = {fact_id("relationship", r.id): r for r in context.index.relationships}
    by_fact = _by_fact(records)
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
    caroline = _one(records, "What do the memories say about Caroline?")
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
        record = _one(records, f"How are {a} and {b} related?")
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


# --- text units ------------------------------------------------------------------------------


def test_text_unit_questions_are_answered_with_spans_of_their_unit(heuristic: Run) -> None:
    context = heuristic.context
    records = heuristic.records("text_units")
    went = _one(records, "Where did Caroline go?")
    assert went.answer == "A LGBTQ support group."
    assert went.evidence == ("D1:3",)
    assert "I went to a LGBTQ support group" in context.text_of(went.source_ids)
    paraphrase = _one(records, "In the conversation on 8 May 2023, where did Caroline go?")
    assert paraphrase.fact_id == went.fact_id and paraphrase.answer == went.answer
    race = _one(records, "What did Melanie run?")
    assert race.answer == "A charity race for mental health." and race.evidence == ("D2:1",)
    photo = _one(records, "What was in the photo Melanie shared on 8 May 2023?")
    assert photo.answer == "A photo of a painting of a sunset over a lake."
    assert photo.evidence == ("D1:12",)
    sent = _one(records, "What did the picture Melanie sent Caroline on 8 May 2023 show?")
    assert sent.fact_id == photo.fact_id

    speakers = _turn_speakers(context)
    min_support = heuristic.config.synth.min_support
    for record in records:
        (unit_id,) = record.source_ids
        unit = context.unit_by_id[unit_id]
        assert support(record.answer, unit.text) >= min_support, record
        assert record.evidence
        for turn in record.evidence:
            assert speakers[turn] in unit.speakers
            document_turns = context.documents[unit.document_id].turns
            located = next(t for t in document_turns if t.id == turn)
            assert located.start < unit.end_char and located.end > unit.start_char
        if record.question.startswith("What was in the photo"):
            assert record.answer.rstrip(".").lower() in unit.text.lower()


def test_text_unit_facts_are_asked_once_and_limited_per_unit(heuristic: Run) -> None:
    records = heuristic.records("text_units")
    settings = heuristic.config.synth.text_units
    by_fact = _by_fact(records)
    assert all(1 <= len(group) <= settings.paraphrases for group in by_fact.values())
    first_questions = Counter(group[0].question for group in by_fact.values())
    assert max(first_questions.values()) == 1  # overlapping units do not ask a fact twice
    facts_per_unit = Counter(group[0].source_ids for group in by_fact.values())
    assert max(facts_per_unit.values()) <= settings.per_unit

    one = TextUnitQA(TextUnitSettings(per_unit=1, paraphrases=1)).generate(heuristic.context, [])
    assert max(Counter(r.source_ids for r in one.records).values()) == 1
    assert len({r.fact_id for r in one.records}) == len(one.records)
    # first-person statements come before photos and mentions
    assert "Where did Caroline go?" in {r.question for r in one.records}
    assert not any(r.question.startswith("In the conversation") for r in one.records)
    assert TextUnitQA(TextUnitSettings(per_unit=0)).generate(heuristic.context, []).records == []


def test_text_units_with_a_teacher_keep_quoted_questions_and_paraphrases(taught: Run) -> None:
    context = taught.context
    settings = taught.config.synth.text_units
    generated = taught.generated["text_units"]
    by_fact = _by_fact(generated.records)
    assert len(by_fact) == len(context.units) - 1  # the first unit was answered in prose
    for group in by_fact.values():
        assert len(group) == settings.paraphrases
        quote = group[0].answer
        assert group[0].question == f"What was said first in: {quote}?"
        assert group[1].question == f"Which words open: {quote}?"
        (unit_id,) = group[0].source_ids
        assert all(r.source_ids == (unit_id,) and r.answer == quote for r in group)
        assert quote in context.unit_by_id[unit_id].text
        assert all(len(r.evidence) <= 1 for r in group)
    assert not any("astronaut" in r.question for r in generated.records)
    assert generated.dropped[("quote not found in its unit", "text_unit")] == len(context.units) - 1
    assert generated.dropped[("malformed teacher output", "text_unit")] == 1
    first = next(r for r in generated.records if r.source_ids == (context.units[1].id,))
    assert first.evidence and DIA_ID.match(first.evidence[0])


# --- global questions ------------------------------------------------------------------------


def test_global_questions_are_answered_from_community_reports(heuristic: Run) -> None:
    context = heuristic.context
    settings = heuristic.config.synth.global_qa
    by_fact = _by_fact(heuristic.records("global_qa"))
    reports = {report.community: report for report in context.index.reports}
    communities = [c for c in context.index.communities if c.community in reports]
    assert len(communities) >= 3
    for community in communities:
        report = reports[community.community]
        group = by_fact[fact_id("global", f"community {community.id}")]
        assert len(group) == settings.per_community
        assert len({r.question for r in group}) == len(group)
        assert all(report.title in r.question for r in group)
        answer = group[0].answer
        assert all(r.answer == answer for r in group)
        assert answer.startswith(f"The main points about {report.title} are:\n")
        points = [line for line in answer.splitlines() if line.startswith("- ")]
        assert 1 <= len(points) <= settings.max_points
        assert points[0].startswith(f"- {report.findings[0].summary}: ")
        assert all(r.source_ids == context.in_order(community.text_unit_ids) for r in group)
        assert all(r.support is not None and report.full_content in r.support for r in group)
    memory = by_fact[fact_id("global", "memory")]
    assert [r.question for r in memory] == [
        "What are the main themes of your memory?",
        "What topics come up most often in your memory?",
    ]
    top = sorted((r for r in reports.values() if r.level == 0), key=lambda r: -r.rank)
    assert memory[0].answer.startswith(f"The main themes of the memory are:\n- {top[0].title}: ")


def test_timelines_list_what_a_person_said_oldest_first(heuristic: Run) -> None:
    records = heuristic.records("global_qa")
    timeline = [
        r for r in records if r.question.endswith("over time?") and "Caroline" in r.question
    ]
    assert timeline
    answer = timeline[0].answer
    assert answer.startswith("Over time, Caroline said:\n")
    days = re.findall(r"^- (\d{1,2} [A-Z][a-z]+ \d{4}): Caroline said “", answer, re.MULTILINE)
    assert len(days) >= 2
    dates = [dt.datetime.strptime(day, "%d %B %Y").date() for day in days]
    assert dates == sorted(dates) and len(set(dates)) == len(dates)
    assert days[0] == "8 May 2023"
    assert "I went to a LGBTQ support group yesterday" in answer
    speakers = _turn_speakers(heuristic.context)
    assert timeline[0].evidence and all(speakers[t] == "Caroline" for t in timeline[0].evidence)
    sessions = [int(t[1 : t.index(":")]) for t in timeline[0].evidence]
    assert sessions == sorted(sessions)
    assert len({r.fact_id for r in timeline}) == 1
    questions = {r.question for r in records}
    assert questions & {"How has Melanie changed over time?", "What happened to Melanie over time?"}


def test_global_questions_with_a_teacher_are_mapped_and_reduced(taught: Run) -> None:
    generated = taught.generated["global_qa"]
    community = [r for r in generated.records if not r.question.endswith("over time?")]
    assert community
    for group in _by_fact(community).values():
        assert group[0].answer.startswith("Reduced: Point from ")
        assert all(r.answer == group[0].answer for r in group)
        assert not any("necklace" in r.question for r in group)
    assert not any("main themes of your memory" in r.question for r in generated.records)
    assert generated.dropped[("no relevant points", "global")] == 1
    assert generated.dropped[("malformed teacher output", "global")] == 1
    reduce_prompts = [p for p in taught.prompts if "\nKey points from reports" in p]
    assert reduce_prompts and not any("A useless point" in p for p in reduce_prompts)
    # timelines need no teacher: they are what the person said
    assert any(r.answer.startswith("Over time, Caroline said:") for r in generated.records)


# --- temporal --------------------------------------------------------------------------------


def test_when_questions_are_answered_with_the_resolved_date(
    heuristic: Run, locomo_slice: Path
) -> None:
    records = heuristic.records("temporal")
    went = _one(records, "When did Caroline go to a LGBTQ support group?")
    assert went.answer == "7 May 2023."  # "yesterday", said on 8 May 2023
    assert went.evidence == ("D1:3",)
    again = _one(records, "Do you remember when Caroline went to a LGBTQ support group?")
    assert again.fact_id == went.fact_id and again.answer == went.answer
    assert went.support is not None and "yesterday = 7 May 2023" in went.support
    # LoCoMo's own answers to the same questions
    qa = json.loads(locomo_slice.read_text(encoding="utf-8"))[0]["qa"]
    gold = {q["question"]: q for q in qa}
    support_group = gold["When did Caroline go to the LGBTQ support group?"]
    assert went.answer == f"{support_group['answer']}."
    assert tuple(support_group["evidence"]) == went.evidence
    painted = _one(records, "When did Melanie paint the lake sunrise?")
    assert painted.answer == f"{gold['When did Melanie paint a sunrise?']['answer']}."
    camping = _one(records, "When did Melanie take their fam camping in the mountains?")
    assert camping.answer.rstrip(".").lower() == (
        gold["When did Melanie go camping in June?"]["answer"].lower()
    )


def test_temporal_questions_name_who_said_it(heuristic: Run) -> None:
    """In a conversation every event has a speaker, even a sentence whose turn began before
    its unit did (D4:13: Caroline's "Last Friday, I went to an LGBTQ+ counseling workshop")."""
    speakers = _turn_speakers(heuristic.context)
    records = heuristic.records("temporal")
    assert records
    for record in records:
        assert record.evidence
        for turn in record.evidence:
            assert speakers[turn] in record.question, (record.question, turn)
        assert not re.search(r"\b(?:[Dd]id|[Ii]s|[Ww]as|[Hh]ave) you\b", record.question), record
        assert "you went" not in record.answer


def test_orderings_are_consistent_with_the_dates(heuristic: Run) -> None:
    records = heuristic.records("temporal")
    dated: dict[str, str] = {}
    checked = 0
    for record in records:
        remember = re.fullmatch(r"Do you remember when (.+)\?", record.question)
        if remember:
            dated[remember.group(1).lower()] = record.answer.rstrip(".")
    orderings = [r for r in records if r.question.startswith("Did ")]
    assert orderings
    for group in _by_fact(orderings).values():
        assert len(group) == 2
        words = {}
        for record in group:
            match = re.fullmatch(r"Did (.+) (before|after) (.+)\?", record.question)
            assert match, record.question
            _, word, other = match.groups()
            verdict, _, facts = record.answer.partition(". ")
            assert verdict in ("Yes", "No")
            first, second = facts.rstrip(".").split(", and ")
            day_first = re.search(r" on (\d{1,2} [A-Z][a-z]+ \d{4})$", first)
            day_second = re.search(r" on (\d{1,2} [A-Z][a-z]+ \d{4})$", second)
            assert day_first and day_second
            one, two = (
                dt.datetime.strptime(m.group(1), "%d %B %Y").date() for m in (day_first, day_second)
            )
            assert one < two  # the answer tells them in order
            other_first = other.lower() in first.lower()
            assert other_first != (other.lower() in second.lower())
            # "Did X before Y?" is yes iff Y is the later; "Did X after Y?" iff Y is the earlier
            assert (verdict == "Yes") == ((word == "before") != other_first)
            words[word] = verdict
            for event_said, day_said in ((first, day_first), (second, day_second)):
                event = event_said.rpartition(" on ")[0].lower()
                if event in dated:  # the date its "when" question answers
                    assert dated[event] == day_said.group(1)
                    checked += 1
            assert len(record.evidence) == 2 and len(record.source_ids) in (1, 2)
        assert set(words) == {"before", "after"} and words["before"] != words["after"]
    assert checked


def test_temporal_questions_with_a_teacher_keep_the_resolved_dates(
    heuristic: Run, taught: Run
) -> None:
    generated = taught.generated["temporal"]
    records = [r for r in generated.records if not r.question.startswith("Did ")]
    heuristic_answers = {r.fact_id: r.answer for r in heuristic.records("temporal")}
    shared = [r for r in records if r.fact_id in heuristic_answers]
    assert shared
    assert all(r.answer == heuristic_answers[r.fact_id] for r in shared)
    went = next(r for r in records if "I went to a LGBTQ support group" in r.question)
    assert went.question == (
        "When did Caroline say this happened: "
        "I went to a LGBTQ support group yesterday and it was so powerful."
    )
    assert went.answer == "7 May 2023." and went.evidence == ("D1:3",)
    paraphrases = [r for r in records if r.fact_id == went.fact_id]
    assert len(paraphrases) == taught.config.synth.temporal.paraphrases
    prompt = next(
        p
        for p in taught.prompts
        if p.startswith("In a conversation on") and "LGBTQ support group yesterday" in p
    )
    assert 'The time it mentions ("yesterday") is 7 May 2023.' in prompt
    assert generated.dropped[("malformed teacher output", "temporal")] == 1
    assert not any("lake sunrise" in r.question for r in records)


# --- unanswerable ----------------------------------------------------------------------------


def _swap(question: str) -> str:
    return re.sub(r"\b(Caroline|Melanie)\b", lambda m: SPEAKERS[m.group(1) == "Caroline"], question)


def test_unanswerable_questions_are_answered_by_abstaining(heuristic: Run) -> None:
    context = heuristic.context
    records = heuristic.records("unanswerable")
    earlier = heuristic.earlier["unanswerable"]
    local = [r for r in earlier if r.query_scope == "local" and r.kind != "recall"]
    share = heuristic.config.synth.unanswerable.share
    assert len(records) == round(share * len(local))
    assert len({r.question for r in records}) == len(records)
    assert all(r.answer == DEFAULT_ABSTENTION and r.source_ids == () for r in records)
    assert len({r.fact_id for r in records}) == len(records)

    answerable = {r.question for r in earlier if r.kind in ("text_unit", "temporal")}
    absent = [n for n in FIRST_NAMES if not context.mentions(n)]
    swapped = [r.question for r in records if _swap(r.question) in answerable]
    missing = [r.question for r in records if r.question not in swapped]
    assert swapped and missing
    assert len(swapped) <= (len(records) + 1) // 2
    for question in swapped:
        original = _swap(question)
        assert original != question and question not in answerable
        named = [s for s in SPEAKERS if re.search(rf"\b{s}\b", question)]
        assert len(named) == 1  # the other speaker than the one who said it
    for question in missing:
        names = [n for n in FIRST_NAMES if re.search(rf"\b{n}\b", question)]
        assert names and all(n in absent for n in names), question
        assert not any(context.mentions(n) for n in names)
    assert "When did Melanie go to a LGBTQ support group?" in swapped


def test_unanswerable_share_and_abstention_are_settings(heuristic: Run) -> None:
    context = heuristic.context
    earlier = heuristic.earlier["unanswerable"]
    custom = UnanswerableQA(UnanswerableSettings(share=0.02, abstention="I don't know."))
    records = custom.generate(context, earlier).records
    local = [r for r in earlier if r.query_scope == "local" and r.kind != "recall"]
    assert len(records) == round(0.02 * len(local)) > 0
    assert {r.answer for r in records} == {"I don't know."}
    assert UnanswerableQA(UnanswerableSettings(share=0)).generate(context, earlier).records == []
    assert UnanswerableQA().generate(context, []).records == []


# --- recall ----------------------------------------------------------------------------------


def test_recall_answers_with_the_verbatim_unit(heuristic: Run) -> None:
    context = heuristic.context
    records = heuristic.records("recall")
    earlier = heuristic.earlier["recall"]
    single = {
        r.question: r
        for r in earlier
        if r.kind in ("text_unit", "temporal") and len(r.source_ids) == 1
    }
    per_unit = Counter(r.source_ids for r in records)
    assert set(per_unit) == {(unit.id,) for unit in context.units}  # every unit is recalled
    assert max(per_unit.values()) <= heuristic.config.synth.recall.per_unit
    for record in records:
        assert record.question.startswith(RECALL_LEAD)
        asked = record.question[len(RECALL_LEAD) :]
        (unit_id,) = record.source_ids
        assert record.answer == context.unit_by_id[unit_id].text
        if asked in single:
            assert single[asked].source_ids == record.source_ids
            assert record.evidence == single[asked].evidence
        else:
            assert re.fullmatch(r"What did \w+ and \w+ talk about on .+\?", asked), asked
            assert record.evidence == ()


def test_recall_of_turns_is_a_verbatim_part_of_the_unit(heuristic: Run) -> None:
    context = heuristic.context
    earlier = heuristic.earlier["recall"]
    records = RecallQA(RecallSettings(passage="turns")).generate(context, earlier).records
    assert len(records) == len(heuristic.records("recall"))
    shorter = 0
    for record in records:
        (unit_id,) = record.source_ids
        unit = context.unit_by_id[unit_id]
        assert record.answer in unit.text
        if not record.evidence:
            assert record.answer == unit.text
            continue
        shorter += len(record.answer) < len(unit.text)
        document = context.documents[unit.document_id]
        turns = list(document.turns)
        cited = [n for n, turn in enumerate(turns) if turn.id in record.evidence]
        first = turns[max(min(cited) - 1, 0)]  # the answering turns, with one turn either side
        last = turns[min(max(cited) + 1, len(turns) - 1)]
        start, end = max(first.start, unit.start_char), min(last.end, unit.end_char)
        assert record.answer == document.text[start:end]
    assert shorter > len(records) // 2
    painted = [
        r for r in records if r.question.endswith("When did Melanie paint the lake sunrise?")
    ]
    for record in painted:
        assert "Melanie: Yeah, I painted that lake sunrise last year!" in record.answer
        assert record.answer.startswith("Caroline: ")  # the turn before, in full
    assert RecallQA(RecallSettings(per_unit=0)).generate(context, earlier).records == []
