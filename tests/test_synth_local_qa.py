"""The synthesis strategies that ask about text units, on a real LoCoMo slice (conv-26,
sessions 1-4: Caroline and Melanie, May to June 2023, heuristic index), without a teacher and
with a fake teacher: questions answered with spans of a unit, temporal questions, unanswerable
questions and recall of the verbatim unit.

The strategies run once per module, in the pipeline's order (each seeing the records of those
before it: the fixtures `heuristic` and `taught` of conftest.py), so the tests read their output;
tests of other settings run a strategy again.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from ragtune.prompts import RECALL_PROMPT
from ragtune.synth.grounding import GroundingFilter, support
from ragtune.synth.language import first_person_facts
from ragtune.synth.records import QARecord, Statement
from ragtune.synth.settings import (
    DEFAULT_ABSTENTION,
    ProfileSettings,
    RecallSettings,
    TemporalSettings,
    TextUnitSettings,
    UnanswerableSettings,
)
from ragtune.synth.strategies import (
    ProfileQA,
    RecallQA,
    TemporalQA,
    TextUnitQA,
    UnanswerableQA,
)
from ragtune.synth.strategies.unanswerable import FIRST_NAMES
from synth_runs import DIA_ID, Run, group_by_fact, record_asking, turn_speakers
from synth_support import record as qa_record

SPEAKERS = ("Caroline", "Melanie")
RECALL_LEAD = RECALL_PROMPT.split("{question}")[0]


# --- text units ------------------------------------------------------------------------------


def test_text_unit_questions_are_answered_with_spans_of_their_unit(heuristic: Run) -> None:
    context = heuristic.context
    records = heuristic.records("text_units")
    went = record_asking(records, "Where did Caroline go?")
    assert went.answer == "A LGBTQ support group."
    assert went.evidence == ("D1:3",)
    assert "I went to a LGBTQ support group" in context.text_of(went.source_ids)
    paraphrase = record_asking(records, "In the conversation on 8 May 2023, where did Caroline go?")
    assert paraphrase.fact_id == went.fact_id and paraphrase.answer == went.answer
    race = record_asking(records, "What did Melanie run?")
    assert race.answer == "A charity race for mental health." and race.evidence == ("D2:1",)
    photo = record_asking(records, "What was in the photo Melanie shared on 8 May 2023?")
    assert photo.answer == "A photo of a painting of a sunset over a lake."
    assert photo.evidence == ("D1:12",)
    sent = record_asking(records, "What did the picture Melanie sent Caroline on 8 May 2023 show?")
    assert sent.fact_id == photo.fact_id

    speakers = turn_speakers(context)
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
    by_fact = group_by_fact(records)
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


def test_mentions_are_answered_with_the_quote_or_the_clause_naming_them(heuristic: Run) -> None:
    """ "What did X say about Y?" is answered with X's sentence quoted, or with `mentions:
    clause` the clause of it that names Y, in the third person; every other fact is the same."""
    context = heuristic.context
    clause = heuristic.records("text_units")  # the default
    assert heuristic.config.synth.text_units.mentions == "clause"
    quoted = TextUnitQA(TextUnitSettings(mentions="quote")).generate(context, []).records
    assert [r.question for r in clause] == [r.question for r in quoted]
    said = re.compile(r"What did (\w+) (?:say|tell \w+) about (.+?)(?: on \d.*)?\?")
    changed = 0
    for before, after in zip(quoted, clause, strict=True):
        asked = said.fullmatch(before.question)
        if not asked:
            assert after.answer == before.answer
            continue
        speaker = asked.group(1)
        assert before.answer.startswith(f"{speaker} said: “")
        assert "said:" not in after.answer and "“" not in after.answer
        assert len(after.answer.split()) < len(before.answer.split())
        assert not re.search(r"\b(?:I|my|me)\b", after.answer), after.answer
        changed += 1
    assert changed >= 10


def test_text_units_with_a_teacher_keep_quoted_questions_and_paraphrases(taught: Run) -> None:
    context = taught.context
    settings = taught.config.synth.text_units
    generated = taught.generated["text_units"]
    by_fact = group_by_fact(generated.records)
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


# --- temporal --------------------------------------------------------------------------------


def test_when_questions_are_answered_with_the_resolved_date(
    heuristic: Run, locomo_slice: Path
) -> None:
    records = heuristic.records("temporal")
    went = record_asking(records, "When did Caroline go to a LGBTQ support group?")
    assert went.answer == "7 May 2023."  # "yesterday", said on 8 May 2023
    assert went.evidence == ("D1:3",)
    again = record_asking(records, "Do you remember when Caroline went to a LGBTQ support group?")
    assert again.fact_id == went.fact_id and again.answer == went.answer
    assert went.support is not None and "yesterday = 7 May 2023" in went.support
    # LoCoMo's own answers to the same questions
    qa = json.loads(locomo_slice.read_text(encoding="utf-8"))[0]["qa"]
    gold = {q["question"]: q for q in qa}
    support_group = gold["When did Caroline go to the LGBTQ support group?"]
    assert went.answer == f"{support_group['answer']}."
    assert tuple(support_group["evidence"]) == went.evidence
    painted = record_asking(records, "When did Melanie paint the lake sunrise?")
    assert painted.answer == f"{gold['When did Melanie paint a sunrise?']['answer']}."
    camping = record_asking(records, "When did Melanie take their fam camping in the mountains?")
    assert camping.answer.rstrip(".").lower() == (
        gold["When did Melanie go camping in June?"]["answer"].lower()
    )


def test_temporal_questions_name_who_said_it(heuristic: Run) -> None:
    """In a conversation every event has a speaker, even a sentence whose turn began before
    its unit did (D4:13: Caroline's "Last Friday, I went to an LGBTQ+ counseling workshop")."""
    speakers = turn_speakers(heuristic.context)
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
    for group in group_by_fact(orderings).values():
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


def test_told_days_date_untimed_events_by_the_day_they_were_told(heuristic: Run) -> None:
    """With `told_days` (the default), "I talked about my transgender journey" said on 9 June
    2023 is asked "When did Caroline talk about ...?" and answered 9 June 2023, the way LoCoMo
    dates events a session tells without naming a time; what is asked without it stays."""
    context = heuristic.context
    told = heuristic.records("temporal")  # the default
    assert heuristic.config.synth.temporal.told_days
    named = TemporalQA(TemporalSettings(told_days=False)).generate(context, []).records
    assert [r for r in told if r.question in {d.question for d in named}] == named
    added = [r for r in told if r not in named]
    talked = record_asking(added, "When did Caroline talk about their transgender journey?")
    assert talked.answer == "9 June 2023." and talked.evidence == ("D3:1",)
    assert talked.support == "9 June 2023: told that day"
    again = record_asking(
        added, "Do you remember when Caroline talked about their transgender journey?"
    )
    assert again.fact_id == talked.fact_id
    said = {
        s.turn_id: s
        for unit in context.units
        for s in context.sentences(unit.id)
        if s.caption is None and s.turn_id
    }
    turns = {t for r in added for t in r.evidence}
    assert len(turns) >= 8
    for record in added:
        (turn,) = record.evidence
        assert record.answer == f"{said[turn].day}."
        assert said[turn].speaker and said[turn].speaker in record.question
        assert not record.question.startswith("Did ")  # no orderings of told days
    assert len({r.question for r in added}) == len(added)


def test_told_days_keep_their_own_questions_with_a_teacher(heuristic: Run, taught: Run) -> None:
    """The teacher phrases questions about a time a sentence names; an event dated by the day
    it was told keeps the sentence's own question, and the teacher is not shown it."""

    def told(records: list[QARecord]) -> dict[str, QARecord]:
        return {r.question: r for r in records if (r.support or "").endswith("told that day")}

    heuristic_told = told(heuristic.records("temporal"))
    taught_told = told(taught.generated["temporal"].records)
    assert heuristic_told
    assert {q: r.answer for q, r in taught_told.items()} == {
        q: r.answer for q, r in heuristic_told.items()
    }
    context = heuristic.context
    temporal_prompts = [p for p in taught.prompts if p.startswith("In a conversation on")]
    assert temporal_prompts
    asked = {q: r for q, r in heuristic_told.items() if q.startswith("When ")}
    assert asked
    for question, record in asked.items():  # the sentence's own question, not its paraphrase
        (turn,) = record.evidence
        sentence = next(
            s.text
            for unit in context.units
            for s in context.sentences(unit.id)
            if s.turn_id == turn
            and any(f.when == question for f in first_person_facts(s.text, s.speaker))
        )
        assert not any(sentence in prompt for prompt in temporal_prompts), sentence


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
    assert all(r.answer.endswith(" " + DEFAULT_ABSTENTION) for r in records)
    assert all(r.source_ids == () for r in records)
    assert len({r.fact_id for r in records}) == len(records)
    # a reason comes first, so the answers are not one completion to fall back on
    assert len({r.answer for r in records}) >= 4
    plain = UnanswerableQA(UnanswerableSettings(explain=False)).generate(context, earlier)
    assert [r.question for r in plain.records] == [r.question for r in records]
    assert {r.answer for r in plain.records} == {DEFAULT_ABSTENTION}

    answerable = {r.question for r in earlier if r.kind in ("text_unit", "temporal")}
    absent = [n for n in FIRST_NAMES if not context.mentions(n)]
    by_question = {r.question: r.answer for r in records}
    swapped = [r.question for r in records if _swap(r.question) in answerable]
    missing = [r.question for r in records if r.question not in swapped]
    assert swapped and missing
    assert len(swapped) <= (len(records) + 1) // 2
    for question in swapped:
        original = _swap(question)
        assert original != question and question not in answerable
        named = [s for s in SPEAKERS if re.search(rf"\b{s}\b", question)]
        assert len(named) == 1  # the other speaker than the one who said it
        teller = _swap(named[0])
        reason = by_question[question].removesuffix(" " + DEFAULT_ABSTENTION)
        assert teller in reason and named[0] in reason  # whom the fact is about, and not
    for question in missing:
        names = [n for n in FIRST_NAMES if re.search(rf"\b{n}\b", question)]
        assert names and all(n in absent for n in names), question
        assert not any(context.mentions(n) for n in names)
        reason = by_question[question].removesuffix(" " + DEFAULT_ABSTENTION)
        assert "by that name" in reason or "with that name" in reason, reason
        assert not any(n in reason for n in names)  # a template naming them would be said of anyone
    assert "When did Caroline paint the lake sunrise?" in swapped
    # Melanie spoke of "the LGBTQ community" and of support: she may have gone to such a group
    assert "When did Caroline go to a LGBTQ support group?" in answerable
    assert "When did Melanie go to a LGBTQ support group?" not in by_question


def test_unanswerable_share_and_abstention_are_settings(heuristic: Run) -> None:
    context = heuristic.context
    earlier = heuristic.earlier["unanswerable"]
    custom = UnanswerableQA(UnanswerableSettings(share=0.02, abstention="I don't know."))
    records = custom.generate(context, earlier).records
    local = [r for r in earlier if r.query_scope == "local" and r.kind != "recall"]
    assert len(records) == round(0.02 * len(local)) > 0
    assert all(r.answer.endswith(". I don't know.") for r in records)
    plain = UnanswerableSettings(share=0.02, abstention="I don't know.", explain=False)
    assert {r.answer for r in UnanswerableQA(plain).generate(context, earlier).records} == {
        "I don't know."
    }
    assert UnanswerableQA(UnanswerableSettings(share=0)).generate(context, earlier).records == []
    swapped = UnanswerableQA(UnanswerableSettings(share=0.05, kinds=["swapped"]))
    records = swapped.generate(context, earlier).records
    assert 0 < len(records) <= round(0.05 * len(local))  # as many swaps as pass the check
    assert all(r.answer.split(".")[0].startswith(("I only", "What I", "That was")) for r in records)
    absent = UnanswerableQA(UnanswerableSettings(share=0.05, kinds=["absent"]))
    records = absent.generate(context, earlier).records
    assert len(records) == round(0.05 * len(local))
    assert not any(re.search(r"\b(?:Caroline|Melanie)\b", r.answer) for r in records)
    assert UnanswerableQA().generate(context, []).records == []


def test_a_swap_the_other_speaker_may_answer_in_other_words_is_dropped(heuristic: Run) -> None:
    context = heuristic.context
    said = "I ran a charity race for mental health last Saturday"
    unit = next(u for u in context.units if said in u.text)
    assert unit.speakers == ("Melanie", "Caroline")
    earlier = [  # as if Caroline had said both: swapped, they ask about Melanie
        qa_record("When did Caroline run a race?", "20 May 2023", (unit.id,), kind="temporal"),
        qa_record("When did Caroline bake a cake?", "20 May 2023", (unit.id,), kind="temporal"),
    ]
    settings = UnanswerableSettings(share=2.0)
    questions = {r.question for r in UnanswerableQA(settings).generate(context, earlier).records}
    # "ran" meets "run": Melanie said she ran a race, so asking her is not unanswerable
    assert "When did Melanie run a race?" not in questions
    assert "When did Melanie bake a cake?" in questions


# --- profiles --------------------------------------------------------------------------------


def _restated(records: list[QARecord]) -> dict[str, int]:
    """How many profiles restate each statement (profile answers are statements joined)."""
    counts: Counter[str] = Counter()
    for record in records:
        counts.update(re.split(r"(?<=\.) (?=[A-Z])", record.answer))
    return counts


def test_profiles_restate_every_fact_in_each_shuffled_copy(heuristic: Run) -> None:
    context = heuristic.context
    settings = heuristic.config.synth.profiles
    records = heuristic.records("profiles")
    earlier = heuristic.earlier["profiles"]
    stated: dict[str, QARecord] = {}
    for record in earlier:  # the first record stating each fact is the one its profile cites
        for statement in record.statements:
            stated.setdefault(statement.text, record)
    assert len(stated) > 50
    counts = _restated(records)
    # every statement of an earlier record is restated `copies` times (once per copy) ...
    assert set(counts) <= set(stated)
    assert Counter(counts.values()) == Counter({settings.copies: len(counts)})
    # ... and each fact once, dated by the time its sentence names rather than the day told
    assert "On 7 May 2023, Caroline went to a LGBTQ support group." in counts
    assert "On 8 May 2023, Caroline went to a LGBTQ support group." not in counts
    ongoing = r"On \d+ \w+ 2023, (?:Caroline|Melanie) (?:is|has been) \w+ing\b"
    assert any(re.match(ongoing, text) for text in counts)  # restated in its own tense
    facts = {(s.about, s.body.lower()): s.text for r in earlier for s in r.statements}
    assert set(counts) == set(facts.values())  # every fact of the records, once per copy
    for record in records:
        person = re.search(r"about (\w+)|has (\w+) been|about (\w+)'s", record.question)
        assert person, record.question
        name = next(group for group in person.groups() if group)
        assert name in SPEAKERS
        said = re.split(r"(?<=\.) (?=[A-Z])", record.answer)
        assert 1 <= len(said) <= settings.per_record
        sources = {u for text in said for u in stated[text].source_ids}
        assert set(record.source_ids) == sources
        assert record.source_ids == context.in_order(sources)
    # each copy is shuffled anew, so no profile repeats another
    answers = [r.answer for r in records]
    assert len(set(answers)) == len(answers)
    questions = {r.question for r in records}
    assert len(questions) >= 4  # several ways of asking for a profile


@pytest.mark.parametrize(
    ("when", "text"),
    [
        ("7 May 2023", "On 7 May 2023, Jon lost their job."),
        ("the week before 9 June 2023", "The week before 9 June 2023, Jon lost their job."),
        ("May 2023", "In May 2023, Jon lost their job."),
        ("2022", "In 2022, Jon lost their job."),
        (None, "Jon lost their job."),
    ],
)
def test_a_statement_reads_as_a_dated_sentence(when: str | None, text: str) -> None:
    assert Statement("Jon", "Jon lost their job", when).text == text


def test_profiles_are_a_setting_and_pass_the_pipeline_filters(heuristic: Run) -> None:
    context = heuristic.context
    earlier = heuristic.earlier["profiles"]
    none = ProfileQA(ProfileSettings(copies=0)).generate(context, earlier).records
    assert none == []
    one = ProfileQA(ProfileSettings(copies=1, per_record=2)).generate(context, earlier).records
    assert Counter(_restated(one).values()) == Counter({1: len(_restated(one))})
    assert max(len(re.split(r"(?<=\.) (?=[A-Z])", r.answer)) for r in one) == 2
    grounding = GroundingFilter(
        {unit.id: f"{context.day(unit)}\n{unit.text}" for unit in context.units},
        heuristic.config.synth.min_support,
    )
    kept = [r for r in heuristic.records("profiles") if grounding.keeps(r)]
    assert len(kept) == len(heuristic.records("profiles"))


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
