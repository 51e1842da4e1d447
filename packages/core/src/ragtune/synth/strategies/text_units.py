"""Text-unit QA: specific factual questions whose answers are spans or short facts of one text
unit — the keyword-matchable "local" questions where RAG wins.

With a teacher, the teacher writes them (with paraphrases and the supporting quote, which must
be found in the unit). Without one, they come from the unit's sentences and the index: what a
speaker says they did (*What has Caroline been researching?* → *Adoption agencies*) or what
someone named did (*What does Quillon Varga keep?* → *37 ferrets*), what a shared photo
showed, and what a speaker said about an entity the index found in the sentence.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ragtune.corpus.types import TextUnit
from ragtune.synth import prompts
from ragtune.synth.context import SynthContext, UnitSentence
from ragtune.synth.language import first_person_facts, mention_clause, named_facts
from ragtune.synth.phrasing import lower_first, paraphrases, the, upper_first
from ragtune.synth.records import QARecord, Statement, fact_id, paraphrase_records
from ragtune.synth.settings import TextUnitSettings
from ragtune.synth.strategies.base import Generated, Strategy, teacher_answers, text_list
from ragtune.text.names import normalize_name

_SPACES = re.compile(r"\s+")
# What kinds of facts come first when a unit has more than `per_unit`.
_PRIORITY = {"statement": 0, "photo": 1, "mention": 2}


@dataclass(frozen=True)
class _Candidate:
    priority: int
    position: int
    questions: list[str]
    answers: tuple[str, ...]
    evidence: tuple[str, ...]
    statements: tuple[Statement, ...] = ()

    @property
    def answer(self) -> str:
        """The answers joined: one sentence, or a list of captions or quotes."""
        kind = self.priority
        if len(self.answers) == 1:
            text = self.answers[0]
        elif kind == _PRIORITY["mention"]:
            text = " ".join(self.answers)
        else:
            text = "; ".join(a[:1].lower() + a[1:] if n else a for n, a in enumerate(self.answers))
        return text if text.endswith((".", "!", "?", "”")) else text + "."


class TextUnitQA(Strategy):
    """Specific questions per text unit, answered with spans of it."""

    name: ClassVar[str] = "text_units"
    kinds: ClassVar[tuple[str, ...]] = ("text_unit",)
    settings_class = TextUnitSettings
    settings: TextUnitSettings

    def generate(
        self, context: SynthContext, earlier: Sequence[QARecord], *, progress: bool = False
    ) -> Generated:
        """Up to `per_unit` facts per unit, each asked `paraphrases` ways."""
        if self.settings.per_unit == 0:
            return Generated()
        if context.writer == "llm":
            return self._teacher_written(context, progress)
        rng = context.rng(self.name)
        result = Generated()
        asked: set[str] = set()
        for unit in context.units:
            candidates = self._candidates(context, unit, asked)
            if len(candidates) > self.settings.per_unit:
                candidates.sort(key=lambda c: (c.priority, rng.random()))
                candidates = candidates[: self.settings.per_unit]
                candidates.sort(key=lambda c: c.position)
            for candidate in candidates:
                result.records += _records(
                    unit.id,
                    candidate.questions,
                    candidate.answer,
                    candidate.evidence,
                    candidate.statements,
                )
        return result

    def _candidates(
        self, context: SynthContext, unit: TextUnit, asked: set[str]
    ) -> list[_Candidate]:
        """The unit's facts. Photos a speaker shared and what they said about one entity on
        one day are one fact each (their answer lists every caption or quote), and a question
        an earlier (overlapping) unit asked is not asked again."""
        count = self.settings.paraphrases
        anchor = context.anchor(unit)
        found: dict[str, _Candidate] = {}

        def add(
            kind: str,
            position: int,
            questions: list[str],
            answer: str,
            turn: str | None,
            statement: Statement | None,
        ) -> None:
            key = questions[0]
            if key in asked and key not in found:
                return
            evidence = (turn,) if turn else ()
            said = (statement,) if statement else ()
            if key in found:
                earlier = found[key]
                if answer in earlier.answers:
                    return
                found[key] = _Candidate(
                    earlier.priority,
                    earlier.position,
                    earlier.questions,
                    (*earlier.answers, answer),
                    earlier.evidence + evidence,
                    earlier.statements + said,
                )
                return
            asked.add(key)
            found[key] = _Candidate(
                _PRIORITY[kind], position, questions[:count], (answer,), evidence, said
            )

        for position, sentence in enumerate(context.sentences(unit.id)):
            speaker, day, turn = sentence.speaker, sentence.day, sentence.turn_id
            if unit.speakers and not speaker:
                continue  # the tail of a turn cut by the unit's start: speaker unknown
            listener = context.listener(unit, speaker) if speaker else None
            on_day = f" on {day}" if day else ""
            if sentence.caption is not None:
                if speaker:
                    to = f" {listener}" if listener else ""
                    questions = [
                        f"What was in the photo {speaker} shared{on_day}?",
                        f"What did the picture {speaker} sent{to}{on_day} show?",
                    ]
                    caption = _sentence_case(sentence.caption)
                    shared = Statement(speaker, f"{speaker} shared {_shown(caption)}", day)
                    add("photo", position, questions, caption, turn, shared)
                continue
            mentioned = _mentioned(context, unit, sentence)
            stated = first_person_facts(sentence.text, speaker)
            for fact in stated + named_facts(sentence.text, speaker, mentioned):
                if fact.question:
                    questions = paraphrases(fact.question, count, anchor=anchor, who=listener)
                    told = None
                    if fact.statement:
                        told = Statement(fact.about, fact.statement, sentence.when)
                    add("statement", position, questions, fact.answer, turn, told)
            for title in mentioned:
                name = the(title)
                said = self._said(sentence, title)
                saying = f"{speaker} said about {name}" if speaker else f"You wrote about {name}"
                statement = Statement(speaker, f"{saying}: {lower_first(said)}", day)
                if speaker:
                    questions = [f"What did {speaker} say about {name}{on_day}?"]
                    if listener:
                        questions.append(
                            f"What did {speaker} tell {listener} about {name}{on_day}?"
                        )
                    add("mention", position, questions, said, turn, statement)
                else:
                    questions = [
                        f"What do your notes say about {name}?",
                        f"What did you write about {name}{on_day}?",
                    ]
                    add("mention", position, questions, said, turn, statement)
        return list(found.values())

    def _said(self, sentence: UnitSentence, title: str) -> str:
        """What `sentence` says about `title`: the quote, or its clause naming `title`."""
        if self.settings.mentions == "clause":
            clause = mention_clause(sentence.text, title, sentence.speaker)
            if clause:
                return clause.rstrip(".!?") + "."
        if sentence.speaker:
            return f"{sentence.speaker} said: “{sentence.text}”"
        return sentence.text

    def _teacher_written(self, context: SynthContext, progress: bool) -> Generated:
        result = Generated()
        units = context.units
        prompt_list = []
        for unit in units:
            day = context.day(unit)
            prompt_list.append(
                prompts.TEXT_UNIT_USER.format(
                    dated=f", written on {day}" if day else "",
                    text=unit.text,
                    count=self.settings.per_unit,
                    paraphrases=max(self.settings.paraphrases - 1, 0),
                )
            )
        answers = teacher_answers(
            context, prompt_list, prompts.TEXT_UNIT_SCHEMA, desc="text-unit QA", progress=progress
        )
        for unit, answer in zip(units, answers, strict=True):
            if not isinstance(answer, dict) or not isinstance(answer.get("questions"), list):
                result.drop("malformed teacher output", "text_unit")
                continue
            for item in answer["questions"][: self.settings.per_unit]:
                outcome = _teacher_item(context, unit, item, self.settings.paraphrases)
                if isinstance(outcome, str):
                    result.drop(outcome, "text_unit")
                else:
                    result.records += outcome
        return result


def _teacher_item(
    context: SynthContext, unit: TextUnit, item: Any, count: int
) -> list[QARecord] | str:
    if not isinstance(item, dict):
        return "malformed teacher output"
    question = str(item.get("question", "")).strip()
    answer = str(item.get("answer", "")).strip()
    quote = str(item.get("quote", "")).strip()
    if not question or not answer:
        return "malformed teacher output"
    sentence = _quoted_sentence(context, unit, quote)
    if sentence is None:
        return "quote not found in its unit"
    questions = [question, *text_list(item.get("paraphrases"))]
    evidence = (sentence.turn_id,) if sentence.turn_id else ()
    return _records(unit.id, questions[:count], answer, evidence)


def _records(
    unit_id: str,
    questions: Sequence[str],
    answer: str,
    evidence: tuple[str, ...],
    statements: tuple[Statement, ...] = (),
) -> list[QARecord]:
    return paraphrase_records(
        questions,
        answer,
        kind="text_unit",
        fact=fact_id("text_unit", unit_id, questions[0], answer),
        source_ids=(unit_id,),
        evidence=evidence,
        statements=statements,
    )


def _quoted_sentence(context: SynthContext, unit: TextUnit, quote: str) -> UnitSentence | None:
    """The sentence of `unit` that `quote` comes from, if `quote` is in the unit at all."""
    wanted = _SPACES.sub(" ", quote.lower()).strip(" \"“”'")
    if not wanted or wanted not in _SPACES.sub(" ", unit.text.lower()):
        return None
    sentences = context.sentences(unit.id)
    for sentence in sentences:
        text = sentence.text.lower()
        if wanted[:40] in text or text[:40] in wanted:
            return sentence
    return sentences[0] if sentences else None


def _mentioned(context: SynthContext, unit: TextUnit, sentence: UnitSentence) -> list[str]:
    """Titles of the unit's entities the sentence names, other than the people talking (or
    their nicknames: "Mel" for Melanie), whom every sentence is about anyway."""
    words = f" {normalize_name(sentence.text)} "
    talking = [normalize_name(name) for name in (*unit.speakers, sentence.speaker or "") if name]
    titles = []
    for entity in context.entities_of(unit.id):
        key = normalize_name(entity.title)
        nickname = entity.type == "person" and any(name.startswith(key) for name in talking)
        if not key or key in talking or nickname:
            continue
        if f" {key} " in words:
            titles.append(entity.title)
    return titles


def _shown(caption: str) -> str:
    """A photo's caption as what was shared: "a photo of a dance class"."""
    text = lower_first(caption).rstrip(".")
    if text.startswith(("a photo", "a picture", "an image", "a screenshot")):
        return text
    return f"a photo: {text}"


def _sentence_case(text: str) -> str:
    return upper_first(text.strip().rstrip("."))
