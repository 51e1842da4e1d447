"""Unanswerable QA: plausible questions the memory cannot answer, answered by abstaining.

Two kinds, as in LoCoMo's adversarial questions: a fact one speaker stated, asked about the
other speaker ("What has Melanie been researching?" when only Caroline researched adoption
agencies) — kept only if nothing the other speaker said contains the question's or answer's
key words and names; and questions about people the memory never mentions. The answer ends
with the abstention sentence (`synth.unanswerable.abstention`) and, with `explain` (the
default), first says why: nobody by that name, or whom the fact is about. With one fixed answer
the tuned model fell back on it whenever a question was unfamiliar: on conv-30 it abstained on
24 of 26 temporal questions; with the reasons, on 7 (F1 of questions 1-4: 0.032 → 0.101).
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from ragtune.synth.context import SynthContext
from ragtune.synth.grounding import content_stems
from ragtune.synth.language import verb_lemma
from ragtune.synth.records import QARecord, fact_id
from ragtune.synth.settings import UnanswerableSettings
from ragtune.synth.strategies.base import Generated, Strategy
from ragtune.text.lexicon import word_list

#: Common first names; those the memory never mentions become absent people.
FIRST_NAMES = word_list(
    "Aaron Abigail Adrian Alice Amir Ana Andrea Beatriz Ben Bianca Carlos Chloe Daniel Diego "
    "Elena Emma Ethan Fatima Felix Gabriel Grace Hannah Hugo Isaac Ivy Jacob Jade Julia Kai "
    "Karen Leo Lily Lucas Mateo Maya Mia Nadia Noah Olivia Omar Paolo Priya Rafael Rosa Samuel "
    "Sofia Tara Theo Vera Victor Yuki Zara"
)
_ABSENT_TEMPLATES = (
    "What did {absent} say about {topic}?",
    "When did {person} meet {absent}?",
    "What did {person} and {absent} do together?",
    "What is {absent}'s favorite hobby?",
    "Where does {absent} live?",
    "What did {person} give {absent} as a present?",
    "How {does} {person} know {absent}?",
)
# Not naming the absent person: a small model learns the reason as a template and would say
# it of anyone, known people included ("Nobody called Jon comes up in my memory").
_ABSENT_REASONS = (
    "I don't remember anyone by that name.",
    "Nobody by that name comes up in my memory.",
    "I have no memory of anyone with that name.",
)
_SWAPPED_REASONS = (
    "I only remember that about {named}, not about {other}.",
    "What I remember is about {named}, not {other}.",
    "That was {named}, not {other}.",
)
_SWAPPED_KINDS = ("text_unit", "temporal")
_NAME = re.compile(r"\b[A-Z][\w'’-]*")
_WORD = re.compile(r"[\w'’]+")
_LEADS = ("In the conversation", "In your note", "From what", "Do you remember")


class UnanswerableQA(Strategy):
    """Questions whose answer is not in the memory, answered with the abstention sentence."""

    name: ClassVar[str] = "unanswerable"
    kinds: ClassVar[tuple[str, ...]] = ("unanswerable",)
    settings_class = UnanswerableSettings
    settings: UnanswerableSettings

    def generate(
        self, context: SynthContext, earlier: Sequence[QARecord], *, progress: bool = False
    ) -> Generated:
        """About `share` unanswerable records per earlier local record: half swapped
        speakers, the rest (and any shortfall) absent people; all of one kind when `kinds`
        names only one."""
        local = [r for r in earlier if r.query_scope == "local" and r.kind != "recall"]
        wanted = round(self.settings.share * len(local))
        rng = context.rng(self.name)
        kinds = self.settings.kinds
        questions: list[_Question] = []
        if "swapped" in kinds:
            swapped = _swapped_questions(context, earlier)
            rng.shuffle(swapped)
            questions = swapped[: wanted // 2 + wanted % 2 if "absent" in kinds else wanted]
        if "absent" in kinds:
            questions += _absent_questions(context, rng, wanted - len(questions))
        result = Generated()
        for question in questions:
            answer = self.settings.abstention
            if self.settings.explain:
                answer = f"{rng.choice(question.reasons)} {answer}"
            result.records.append(
                QARecord(
                    question=question.text,
                    answer=answer,
                    kind="unanswerable",
                    query_scope="local",
                    source_ids=(),
                    fact_id=fact_id("unanswerable", question.text),
                )
            )
        return result


@dataclass(frozen=True)
class _Question:
    """An unanswerable question and the reasons that may explain it."""

    text: str
    reasons: tuple[str, ...]


def _swapped_questions(context: SynthContext, earlier: Sequence[QARecord]) -> list[_Question]:
    said = _said_by_speaker(context)
    questions = []
    seen_facts = set()
    for record in earlier:
        if record.kind not in _SWAPPED_KINDS or record.fact_id in seen_facts:
            continue
        seen_facts.add(record.fact_id)
        if len(record.source_ids) != 1:
            continue
        unit = context.unit_by_id[record.source_ids[0]]
        named = [s for s in unit.speakers if re.search(rf"\b{re.escape(s)}\b", record.question)]
        if len(unit.speakers) != 2 or len(named) != 1:
            continue
        other = next(s for s in unit.speakers if s != named[0])
        subject = rf"^(?:What|Where|When|Who)\b.*\b(?:did|does|is|was|has) {re.escape(named[0])}\b"
        if not _plain(record.question) or not re.search(subject, record.question):
            continue  # only facts about what the speaker did or has swap to the other one
        question = re.sub(rf"\b{re.escape(named[0])}\b", other, record.question)
        if _may_be_answerable(question, record.answer, other, named[0], said[other]):
            continue
        reasons = tuple(r.format(named=named[0], other=other) for r in _SWAPPED_REASONS)
        questions.append(_Question(question, reasons))
    return questions


def _may_be_answerable(
    question: str, answer: str, other: str, named: str, said: list[_Sentence]
) -> bool:
    """Whether something `other` said may answer `question` after all: a sentence that names
    one of its names ("Rome"), holds half its key words ("lost my job" for "When did Jon lose
    his job at Door Dash?") or half the words of the original answer."""
    asked = {s for s in _key_stems(question) - content_stems(other) if not s.isdigit()}
    answered = content_stems(answer) - content_stems(named)
    if not asked or not answered:
        return True
    names = {n.lower() for n in _NAME.findall(question.split(" ", 1)[-1])} - {other.lower()}
    for sentence in said:
        if any(re.search(rf"\b{re.escape(n)}\b", sentence.lowered) for n in names):
            return True
        if len(asked & sentence.key_stems) * 2 >= len(asked):
            return True
        if len(answered & sentence.stems) * 2 >= len(answered):
            return True
    return False


def _plain(question: str) -> bool:
    """Whether `question` is a fact's plain phrasing (no date or paraphrase lead-in), whose
    words are all about the fact."""
    return not any(question.startswith(lead) for lead in _LEADS) and not re.search(r"\d", question)


def _absent_questions(context: SynthContext, rng: random.Random, count: int) -> list[_Question]:
    if count <= 0:
        return []
    absent = [name for name in FIRST_NAMES if not context.mentions(name)]
    speakers = sorted({s for unit in context.units for s in unit.speakers})
    people = speakers or ["you"]  # notes: their owner (index types of names can be wrong)
    topics = [
        e.title
        for e in sorted(context.index.entities, key=lambda e: (-e.degree, e.title))
        if e.type != "person"
    ][:50] or ["the weekend"]
    questions: list[_Question] = []
    asked: set[str] = set()
    attempts = 0
    while absent and len(questions) < count and attempts < count * 10:
        attempts += 1
        template = rng.choice(_ABSENT_TEMPLATES)
        someone, person, topic = rng.choice(absent), rng.choice(people), rng.choice(topics)
        does = "do" if person == "you" else "does"
        question = template.format(absent=someone, person=person, does=does, topic=topic)
        if question not in asked:
            asked.add(question)
            questions.append(_Question(question, _ABSENT_REASONS))
    return questions


@dataclass(frozen=True)
class _Sentence:
    """A sentence someone said, as the swap check compares it."""

    lowered: str
    stems: set[str]
    key_stems: set[str]


def _said_by_speaker(context: SynthContext) -> dict[str, list[_Sentence]]:
    said: dict[str, list[_Sentence]] = defaultdict(list)
    for unit in context.units:
        for sentence in context.sentences(unit.id):
            if sentence.speaker:
                text = sentence.text
                said[sentence.speaker].append(
                    _Sentence(text.lower(), content_stems(text), _key_stems(text))
                )
    return said


def _key_stems(text: str) -> set[str]:
    """`text`'s content stems with verbs taken to their lemma first, so that "lost" (a stop
    word) and "lose" meet as "lose"."""
    words = [verb_lemma(w.lower()) or w for w in _WORD.findall(text)]
    return content_stems(" ".join(words))
