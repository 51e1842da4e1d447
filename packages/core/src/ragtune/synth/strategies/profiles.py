"""Profiles: each person's facts restated as dated sentences, in shuffled order.

A question-and-answer record teaches one fact per ~45 tokens and only in the words of its
question; a profile ("What do you remember about Jon?" → "On 19 January 2023, Jon lost their
job. On 8 February 2023, Jon said about the studio: ...") restates several facts per record,
keyed on the person's name and the date, and each fact appears in `copies` profiles, every one
shuffled differently — the knowledge augmentation that lets a model extract facts it was told
in other words (Allen-Zhu & Li, *Physics of Language Models 3.1*, 2023). The statements come
from the records of the strategies that ran before (text-unit and temporal QA), so a profile
says only what those records say, dated by the time a sentence names ("yesterday", resolved)
or else the day it was told.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import ClassVar

from ragtune.synth.context import SynthContext
from ragtune.synth.records import QARecord, Statement, fact_id
from ragtune.synth.settings import ProfileSettings
from ragtune.synth.strategies.base import Generated, Strategy

#: How a profile is asked for, about someone named and about the memory's owner.
_ABOUT = (
    "What do you remember about {name}?",
    "Tell me what you know about {name}.",
    "What has {name} been up to?",
    "What do you know about {name}'s life?",
)
_ABOUT_OWNER = (
    "What do you remember about me?",
    "Tell me what you know about me.",
    "What have I been up to?",
    "What do you know about my life?",
)


class ProfileQA(Strategy):
    """Shuffled, dated restatements of each person's facts."""

    name: ClassVar[str] = "profiles"
    kinds: ClassVar[tuple[str, ...]] = ("profile",)
    settings_class = ProfileSettings
    settings: ProfileSettings

    def generate(
        self, context: SynthContext, earlier: Sequence[QARecord], *, progress: bool = False
    ) -> Generated:
        """`copies` shuffled profiles of every person, `per_record` statements a record."""
        result = Generated()
        if self.settings.copies == 0:
            return result
        told = _statements(earlier)
        rng = context.rng(self.name)
        for person, facts in told.items():
            questions = _ABOUT if person else _ABOUT_OWNER
            size = self.settings.per_record
            for copy in range(self.settings.copies):
                order = list(facts)
                rng.shuffle(order)
                for start in range(0, len(order), size):
                    chunk = order[start : start + size]
                    asked = questions[(copy + start // size) % len(questions)]
                    result.records.append(_record(context, person, copy, start, chunk, asked))
        return result


def _statements(
    earlier: Sequence[QARecord],
) -> dict[str | None, list[tuple[Statement, QARecord]]]:
    """Each person's statements, once each (text-unit and temporal QA state one fact of a
    sentence alike), with the first record that states each."""
    chosen: dict[tuple[str | None, str], tuple[Statement, QARecord]] = {}
    for record in earlier:
        for statement in record.statements:
            chosen.setdefault((statement.about, statement.body.lower()), (statement, record))
    by_person: dict[str | None, list[tuple[Statement, QARecord]]] = defaultdict(list)
    for (person, _), pair in chosen.items():
        by_person[person].append(pair)
    return by_person


def _record(
    context: SynthContext,
    person: str | None,
    copy: int,
    start: int,
    chunk: Sequence[tuple[Statement, QARecord]],
    question: str,
) -> QARecord:
    units = {unit for _, record in chunk for unit in record.source_ids}
    evidence = dict.fromkeys(turn for _, record in chunk for turn in record.evidence)
    notes = [record.support for _, record in chunk if record.support]
    return QARecord(
        question=question.format(name=person),
        answer=" ".join(statement.text for statement, _ in chunk),
        kind="profile",
        query_scope="local",
        source_ids=context.in_order(units),
        fact_id=fact_id("profile", person or "", str(copy), str(start)),
        evidence=tuple(evidence),
        support="\n".join(notes) or None,
    )
