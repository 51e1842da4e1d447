"""Chain-of-thought QA (the official RAG-Tuned-LLM recipe): the teacher sees an entity or a
relationship, its description and up to `max_units` of its source text units, and writes a
question about it with a reasoned answer that ends in a concise final answer."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ragtune.synth import prompts
from ragtune.synth.context import SynthContext
from ragtune.synth.records import QARecord, fact_id
from ragtune.synth.settings import CotSettings
from ragtune.synth.strategies.base import Generated, Strategy, teacher_answers
from ragtune.text.shorten import shorten


@dataclass(frozen=True)
class _Item:
    """An entity or relationship to ask about, and the request that asks."""

    kind: str  # entity_cot or relationship_cot
    names: tuple[str, ...]  # what the question must name
    key: str  # the entity's or relationship's id
    description: str
    sources: tuple[str, ...]
    prompt: str = ""


class ChainOfThoughtQA(Strategy):
    """Teacher-written questions with chain-of-thought answers about the most connected
    entities and the strongest relationships."""

    name: ClassVar[str] = "cot"
    kinds: ClassVar[tuple[str, ...]] = ("entity_cot", "relationship_cot")
    settings_class = CotSettings
    settings: CotSettings
    needs_teacher: ClassVar[bool] = True

    def generate(
        self, context: SynthContext, earlier: Sequence[QARecord], *, progress: bool = False
    ) -> Generated:
        """One record per entity and relationship asked about, where the teacher's answer fit
        the schema and its question names what it is about."""
        result = Generated()
        if context.teacher is None:
            return result
        items = self._entity_items(context) + self._relationship_items(context)
        answers = teacher_answers(
            context,
            [item.prompt for item in items],
            prompts.COT_SCHEMA,
            desc="chain-of-thought QA",
            progress=progress,
        )
        for item, answer in zip(items, answers, strict=True):
            record = _record(item, answer)
            if isinstance(record, str):
                result.drop(record, item.kind)
            else:
                result.records.append(record)
        return result

    def _entity_items(self, context: SynthContext) -> list[_Item]:
        types = set(self.settings.types)
        chosen = sorted(
            (e for e in context.index.entities if e.type in types and e.description.strip()),
            key=lambda e: (-e.degree, -e.frequency, e.title),
        )[: self.settings.max_entities]
        return [
            self._item(
                context,
                _Item("entity_cot", (e.title,), e.id, e.description, e.text_unit_ids),
                prompts.COT_ENTITY_USER,
                name=e.title,
                type=e.type,
            )
            for e in chosen
        ]

    def _relationship_items(self, context: SynthContext) -> list[_Item]:
        chosen = sorted(
            (r for r in context.index.relationships if r.description.strip()),
            key=lambda r: (-r.weight, -r.combined_degree, r.id),
        )[: self.settings.max_relationships]
        return [
            self._item(
                context,
                _Item(
                    "relationship_cot", (r.source, r.target), r.id, r.description, r.text_unit_ids
                ),
                prompts.COT_RELATIONSHIP_USER,
                source=r.source,
                target=r.target,
            )
            for r in chosen
        ]

    def _item(self, context: SynthContext, item: _Item, template: str, **fields: str) -> _Item:
        """`item` with its sources cut to `max_units` and its prompt written."""
        sources = context.in_order(item.sources)[: self.settings.max_units]
        prompt = template.format(
            description=item.description,
            context=self._passages(context, sources, item.description),
            **fields,
        )
        return dataclasses.replace(item, sources=sources, prompt=prompt)

    def _passages(self, context: SynthContext, sources: Sequence[str], description: str) -> str:
        budget = self.settings.max_context_chars - len(description)
        parts: list[str] = []
        for number, unit_id in enumerate(sources, start=1):
            unit = context.unit_by_id[unit_id]
            day = context.day(unit)
            header = f"[{number}]" + (f" ({day})" if day else "")
            text = f"{header}\n{unit.text}"
            if len(text) > budget:
                if parts:
                    break
                text = shorten(text, max(budget, 200))
            parts.append(text)
            budget -= len(text)
        return "\n\n".join(parts)


def _record(item: _Item, answer: Any) -> QARecord | str:
    """The record of the teacher's `answer` for `item`, or why it was dropped."""
    if not isinstance(answer, dict):
        return "malformed teacher output"
    question = str(answer.get("question", "")).strip()
    reasoning = str(answer.get("reasoning", "")).strip()
    final = str(answer.get("answer", "")).strip()
    if not question or not final:
        return "malformed teacher output"
    if not all(name.lower() in question.lower() for name in item.names):
        return "question does not name its subject"
    text = f"{reasoning}\n\nFinal answer: {final}" if reasoning else final
    return QARecord(
        question=question,
        answer=text,
        kind=item.kind,
        query_scope="local",
        source_ids=item.sources,
        fact_id=fact_id(item.kind, item.key),
        support=item.description,
    )
