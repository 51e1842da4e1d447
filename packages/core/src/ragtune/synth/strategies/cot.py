"""Chain-of-thought QA (the official RAG-Tuned-LLM recipe): the teacher sees an entity or a
relationship, its description and up to `max_units` of its source text units, and writes a
question about it with a reasoned answer that ends in a concise final answer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from ragtune.index.text import shorten
from ragtune.synth import prompts
from ragtune.synth.context import SynthContext
from ragtune.synth.records import QARecord, fact_id
from ragtune.synth.settings import CotSettings
from ragtune.synth.strategies.base import Generated, Strategy, teacher_answers


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
            [prompt for _, _, prompt, _ in items],
            prompts.COT_SCHEMA,
            desc="chain-of-thought QA",
            progress=progress,
        )
        for (kind, names, _, (key, description, sources)), answer in zip(
            items, answers, strict=True
        ):
            record = self._record(kind, names, key, description, sources, answer)
            if isinstance(record, str):
                result.drop(record, kind)
            else:
                result.records.append(record)
        return result

    def _entity_items(self, context: SynthContext) -> list[tuple[str, list[str], str, Any]]:
        types = set(self.settings.types)
        chosen = sorted(
            (e for e in context.index.entities if e.type in types and e.description.strip()),
            key=lambda e: (-e.degree, -e.frequency, e.title),
        )[: self.settings.max_entities]
        items = []
        for entity in chosen:
            sources = context.in_order(entity.text_unit_ids)[: self.settings.max_units]
            prompt = prompts.COT_ENTITY_USER.format(
                name=entity.title,
                type=entity.type,
                description=entity.description,
                context=self._passages(context, sources, entity.description),
            )
            items.append(
                ("entity_cot", [entity.title], prompt, (entity.id, entity.description, sources))
            )
        return items

    def _relationship_items(self, context: SynthContext) -> list[tuple[str, list[str], str, Any]]:
        chosen = sorted(
            (r for r in context.index.relationships if r.description.strip()),
            key=lambda r: (-r.weight, -r.combined_degree, r.id),
        )[: self.settings.max_relationships]
        items = []
        for relationship in chosen:
            sources = context.in_order(relationship.text_unit_ids)[: self.settings.max_units]
            prompt = prompts.COT_RELATIONSHIP_USER.format(
                source=relationship.source,
                target=relationship.target,
                description=relationship.description,
                context=self._passages(context, sources, relationship.description),
            )
            names = [relationship.source, relationship.target]
            items.append(
                (
                    "relationship_cot",
                    names,
                    prompt,
                    (relationship.id, relationship.description, sources),
                )
            )
        return items

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

    def _record(
        self,
        kind: str,
        names: list[str],
        key: str,
        description: str,
        sources: tuple[str, ...],
        answer: Any,
    ) -> QARecord | str:
        if not isinstance(answer, dict):
            return "malformed teacher output"
        question = str(answer.get("question", "")).strip()
        reasoning = str(answer.get("reasoning", "")).strip()
        final = str(answer.get("answer", "")).strip()
        if not question or not final:
            return "malformed teacher output"
        if not all(name.lower() in question.lower() for name in names):
            return "question does not name its subject"
        text = f"{reasoning}\n\nFinal answer: {final}" if reasoning else final
        return QARecord(
            question=question,
            answer=text,
            kind=kind,
            query_scope="local",
            source_ids=sources,
            fact_id=fact_id(kind, key),
            support=description,
        )
