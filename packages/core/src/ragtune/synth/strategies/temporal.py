"""Temporal QA: "When did ...?" for dated events, and "Did X happen before Y?" orderings.

An event is a sentence with a time expression in a dated document ("I went to a LGBTQ support
group yesterday", said on 8 May 2023); its date is resolved against the document ("7 May
2023"), never written by a model. With `told_days`, a past or ongoing event a dated sentence
tells without a time expression ("I lost my job as a banker", said on 19 January 2023) is dated
by the day it was told ("19 January 2023"), as LoCoMo's own answers date such events. Without
a teacher the question comes from the sentence ("When did Caroline go to a LGBTQ support
group?"); with one, the teacher phrases it (and its paraphrases) while the answer stays the
resolved date (events dated by the day told keep the sentence's question).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from ragtune.synth import prompts
from ragtune.synth.context import SynthContext, UnitSentence
from ragtune.synth.language import first_person_facts
from ragtune.synth.phrasing import clause, the, upper_first
from ragtune.synth.records import QARecord, Statement, fact_id, paraphrase_records
from ragtune.synth.settings import TemporalSettings
from ragtune.synth.strategies.base import Generated, Strategy, teacher_answers, text_list
from ragtune.text.dates import parse_day
from ragtune.text.names import normalize_name


@dataclass(frozen=True)
class _Event:
    sentence: UnitSentence
    expression: str  # "yesterday"; empty for an event dated by the day it was told
    date: str  # as phrased: "7 May 2023", "the week before 9 June 2023"
    when: str | None  # the heuristic question, if the sentence fits a pattern
    happened: str | None  # "Caroline went to a LGBTQ support group"
    statement: Statement | None = None  # the fact, dated, for profiles

    @property
    def told(self) -> bool:
        """Whether the date is the day the sentence was told, not a time it names."""
        return not self.expression

    @property
    def note(self) -> str:
        """The grounding of the date: the expression and what it resolves to."""
        if self.told:
            return f"{self.sentence.day}: told that day"
        return f"{self.sentence.day}: {self.expression} = {self.date}"

    @property
    def evidence(self) -> tuple[str, ...]:
        return (self.sentence.turn_id,) if self.sentence.turn_id else ()


class TemporalQA(Strategy):
    """When dated events happened, and which of two came first."""

    name: ClassVar[str] = "temporal"
    kinds: ClassVar[tuple[str, ...]] = ("temporal",)
    settings_class = TemporalSettings
    settings: TemporalSettings

    def generate(
        self, context: SynthContext, earlier: Sequence[QARecord], *, progress: bool = False
    ) -> Generated:
        """A "when" fact per dated event, then up to `orderings` ordering questions."""
        events = _events(context, told_days=self.settings.told_days)
        result = Generated()
        if context.writer == "llm":
            named = [event for event in events if not event.told]
            taught = iter(self._teacher_questions(context, named, result, progress))
            questions = [
                self._heuristic_questions(context, event) if event.told else next(taught)
                for event in events
            ]
        else:
            questions = [self._heuristic_questions(context, event) for event in events]
        for event, asked in zip(events, questions, strict=True):
            if not asked:
                continue
            fact = fact_id("temporal", event.sentence.unit_id, event.sentence.text, event.date)
            answer = upper_first(event.date) + "."
            result.records += paraphrase_records(
                asked[: self.settings.paraphrases],
                answer,
                kind="temporal",
                fact=fact,
                source_ids=(event.sentence.unit_id,),
                evidence=event.evidence,
                support=event.note,
                statements=(event.statement,) if event.statement else (),
            )
        result.records += self._orderings(context, events)
        return result

    def _heuristic_questions(self, context: SynthContext, event: _Event) -> list[str]:
        if event.when is None:
            # No first-person pattern: ask about the dated event the index found in it.
            titles = _dated_events(context, event.sentence)
            if not titles:
                return []
            name, who = the(titles[0]), event.sentence.speaker
            if who:
                return [
                    f"When was {name}, according to {who}?",
                    f"When was {name} that {who} mentioned?",
                ]
            return [f"When was {name}?", f"On what date was {name}?"]
        asked = [event.when]
        if event.happened:
            asked.append(f"Do you remember when {clause(event.happened)}?")
            asked.append(f"What was the date when {clause(event.happened)}?")
        return asked

    def _teacher_questions(
        self, context: SynthContext, events: list[_Event], result: Generated, progress: bool
    ) -> list[list[str]]:
        prompt_list = [
            prompts.TEMPORAL_USER.format(
                day=event.sentence.day,
                speaker=event.sentence.speaker or "you",
                sentence=event.sentence.text,
                expression=event.expression,
                date=event.date,
                paraphrases=max(self.settings.paraphrases - 1, 0),
            )
            for event in events
        ]
        answers = teacher_answers(
            context, prompt_list, prompts.TEMPORAL_SCHEMA, desc="temporal QA", progress=progress
        )
        questions: list[list[str]] = []
        for answer in answers:
            if not isinstance(answer, dict) or not str(answer.get("question", "")).strip():
                result.drop("malformed teacher output", "temporal")
                questions.append([])
                continue
            questions.append(
                [str(answer["question"]).strip(), *text_list(answer.get("paraphrases"))]
            )
        return questions

    def _orderings(self, context: SynthContext, events: list[_Event]) -> list[QARecord]:
        """Pairs of past events on known days, asked both ways ("before" and "after")."""
        dated = [
            (day, event)
            for event in events
            if event.happened and event.when and not event.told and (day := parse_day(event.date))
        ]
        pairs = [
            (a, b)
            for n, a in enumerate(dated)
            for b in dated[n + 1 :]
            if a[0] != b[0] and _same_memory(context, a[1], b[1])
        ]
        rng = context.rng(self.name)
        chosen = rng.sample(pairs, min(self.settings.orderings, len(pairs)))
        records = []
        for (day_a, a), (day_b, b) in chosen:
            if rng.random() < 0.5:
                (day_a, a), (day_b, b) = (day_b, b), (day_a, a)
            assert a.when is not None and a.happened is not None and b.happened is not None
            asked = "D" + a.when[len("When d") : -1]  # "Did Caroline go to ..."
            first, then = (a, b) if day_a < day_b else (b, a)
            assert first.happened is not None and then.happened is not None
            facts = f"{first.happened} on {first.date}, and {clause(then.happened)} on {then.date}."
            before = day_a < day_b
            sources = context.in_order([a.sentence.unit_id, b.sentence.unit_id])
            fact = fact_id("ordering", a.sentence.text, b.sentence.text)
            for word, yes in (("before", before), ("after", not before)):
                records.append(
                    QARecord(
                        question=f"{asked} {word} {clause(b.happened)}?",
                        answer=("Yes. " if yes else "No. ") + facts,
                        kind="temporal",
                        query_scope="local",
                        source_ids=sources,
                        fact_id=fact,
                        evidence=a.evidence + b.evidence,
                        support=f"{a.note}\n{b.note}",
                    )
                )
        return records


def _events(context: SynthContext, *, told_days: bool) -> list[_Event]:
    """The dated events (a time expression that resolves), then, with `told_days`, the past or
    ongoing events that dated sentences tell without naming a time, dated by the day they were
    told (one per question: overlapping units repeat sentences)."""
    events, told = [], []
    asked: set[str] = set()
    for unit in context.units:
        if not unit.timestamp:
            continue
        for sentence in context.sentences(unit.id):
            if sentence.caption is not None:
                continue
            named = sentence.named_time
            if named:
                expression, date = named
                if date is None:
                    continue
            elif told_days and sentence.day and (sentence.speaker or not unit.speakers):
                date = sentence.day  # (no speaker: the tail of a turn cut by the unit's start)
            else:
                continue
            facts = [f for f in first_person_facts(sentence.text, sentence.speaker) if f.when]
            fact = facts[0] if facts else None
            when = fact.when if fact else None
            happened = fact.happened if fact else None
            statement = None
            if fact and fact.statement:
                statement = Statement(fact.about, fact.statement, date)
            if named:
                events.append(_Event(sentence, expression, date, when, happened, statement))
            elif when is not None and when not in asked:
                asked.add(when)
                told.append(_Event(sentence, "", date, when, happened, statement))
    return events + told


def _dated_events(context: SynthContext, sentence: UnitSentence) -> list[str]:
    """Titles of the index's event entities that `sentence` names."""
    text = f" {normalize_name(sentence.text)} "
    return [
        entity.title
        for entity in context.entities_of(sentence.unit_id)
        if entity.type == "event" and f" {normalize_name(entity.title)} " in text
    ]


def _same_memory(context: SynthContext, a: _Event, b: _Event) -> bool:
    """Whether two events belong to the same conversation series (LoCoMo sample), so an
    ordering question about them makes sense; always true outside conversations."""
    unit_a = context.unit_by_id[a.sentence.unit_id]
    unit_b = context.unit_by_id[b.sentence.unit_id]
    return set(unit_a.speakers) == set(unit_b.speakers)
