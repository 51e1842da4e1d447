"""Recall QA: a question paired with the verbatim text of the unit that answers it, so the
tuned model learns to recall its sources (what `MemoryModel.recall` and the retriever
interfaces ask of it).

Questions are those of earlier single-unit records (text-unit and temporal QA), wrapped in the
recall instruction (`ragtune.prompts.recall_question`); a unit no earlier record asks about
gets a question about the conversation or note itself, so every unit can be recalled.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import ClassVar

from ragtune.corpus.types import TextUnit
from ragtune.prompts import recall_question
from ragtune.synth.context import SynthContext
from ragtune.synth.records import QARecord, fact_id
from ragtune.synth.settings import RecallSettings
from ragtune.synth.strategies.base import Generated, Strategy

_FROM_KINDS = ("text_unit", "temporal")


class RecallQA(Strategy):
    """Questions answered with their source passage, verbatim."""

    name: ClassVar[str] = "recall"
    kinds: ClassVar[tuple[str, ...]] = ("recall",)
    settings_class = RecallSettings
    settings: RecallSettings

    def generate(
        self, context: SynthContext, earlier: Sequence[QARecord], *, progress: bool = False
    ) -> Generated:
        """Up to `per_unit` recall records per unit."""
        result = Generated()
        if self.settings.per_unit == 0:
            return result
        by_unit: dict[str, list[QARecord]] = defaultdict(list)
        seen = set()
        for record in earlier:
            single = record.kind in _FROM_KINDS and len(record.source_ids) == 1
            if single and record.fact_id not in seen:
                seen.add(record.fact_id)
                by_unit[record.source_ids[0]].append(record)
        rng = context.rng(self.name)
        for unit in context.units:
            asked = by_unit.get(unit.id, [])
            chosen = rng.sample(asked, min(self.settings.per_unit, len(asked)))
            pairs = [(r.question, r.evidence) for r in sorted(chosen, key=asked.index)]
            if not pairs:
                pairs = [(_about(context, unit), ())]
            for question, evidence in pairs:
                result.records.append(
                    QARecord(
                        question=recall_question(question),
                        answer=self._passage(context, unit, evidence),
                        kind="recall",
                        query_scope="local",
                        source_ids=(unit.id,),
                        fact_id=fact_id("recall", unit.id, question),
                        evidence=evidence,
                    )
                )
        return result

    def _passage(self, context: SynthContext, unit: TextUnit, evidence: Sequence[str]) -> str:
        """The unit's text, or (with `passage: turns`) the turns around the evidence."""
        document = context.documents.get(unit.document_id)
        if self.settings.passage == "unit" or not evidence or document is None:
            return unit.text
        turns = list(document.turns)
        positions = [n for n, turn in enumerate(turns) if turn.id in evidence]
        if not positions:
            return unit.text
        first = turns[max(min(positions) - 1, 0)]
        last = turns[min(max(positions) + 1, len(turns) - 1)]
        start = max(first.start, unit.start_char)
        end = min(last.end, unit.end_char)
        return document.text[start:end]


def _opening(text: str, words: int = 8) -> str:
    """The first `words` words of `text`, on one line."""
    return " ".join(text.split()[:words]) + "…"


def _about(context: SynthContext, unit: TextUnit) -> str:
    day = context.day(unit)
    when = f" on {day}" if day else ""
    # later parts of one session or note are told apart by how they begin
    part = f", in the part that begins “{_opening(unit.text)}”" if unit.chunk_index else ""
    if unit.speakers:
        return f"What did {' and '.join(unit.speakers)} talk about{when}{part}?"
    document = context.documents.get(unit.document_id)
    title = document.title if document else "your notes"
    return f"What did you write in “{title}”{when}{part}?"
