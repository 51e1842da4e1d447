"""Template QA (the official RAG-Tuned-LLM recipe): questions from templates about an entity or
a relationship, answered with its description from the index."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from ragtune.synth.context import SynthContext
from ragtune.synth.phrasing import the
from ragtune.synth.records import QARecord, fact_id, paraphrase_records
from ragtune.synth.settings import EntityTemplateSettings, RelationshipTemplateSettings
from ragtune.synth.strategies.base import Generated, Strategy

ENTITY_TEMPLATES: dict[str, tuple[str, ...]] = {
    "person": (
        "Who is {name}?",
        "What can you tell me about {name}?",
        "What do you know about {name} as a person?",
        "What do you remember about {name}?",
        "Tell me about {name}.",
        "What have you learned about {name}?",
    ),
    "organization": (
        "What can you tell me about the organization {name}?",
        "What is {name}?",
        "What do you know about {name}?",
        "What do you remember about {name}?",
        "Tell me about {name}.",
    ),
    "geo": (
        "What do you know about the place {name}?",
        "What can you tell me about {name}?",
        "What do you remember about {name}?",
        "What happened in {name}?",
        "Tell me about {name}.",
    ),
    "event": (
        "What can you tell me about the event {name}?",
        "What do you know about {name}?",
        "What do you remember about {name}?",
        "What happened with {name}?",
        "Tell me about {name}.",
    ),
    "object": (
        "What can you tell me about {name}?",
        "What do you know about {name}?",
        "What do you remember about {name}?",
        "What is {name}?",
        "Tell me about {name}.",
    ),
}
GENERIC_TEMPLATES = (
    "What can you tell me about {name}?",
    "What do you know about {name}?",
    "What do you remember about {name}?",
    "Tell me about {name}.",
)
RELATIONSHIP_TEMPLATES = (
    "What is the relationship between {a} and {b}?",
    "How are {a} and {b} connected?",
    "How is {a} related to {b}?",
    "What links {a} and {b}?",
    "What do {a} and {b} have to do with each other?",
)


class EntityTemplateQA(Strategy):
    """Templated questions about each entity of the chosen types, answered with its
    description; `per_entity` templates per entity are the fact's paraphrases."""

    name: ClassVar[str] = "entity_templates"
    kinds: ClassVar[tuple[str, ...]] = ("entity_template",)
    settings_class = EntityTemplateSettings
    settings: EntityTemplateSettings

    def generate(
        self, context: SynthContext, earlier: Sequence[QARecord], *, progress: bool = False
    ) -> Generated:
        """One record per template chosen for each entity."""
        rng = context.rng(self.name)
        result = Generated()
        types = set(self.settings.types)
        for entity in context.index.entities:
            if entity.type not in types or entity.frequency < self.settings.min_frequency:
                continue
            if not entity.description.strip():
                continue
            templates = ENTITY_TEMPLATES.get(entity.type, GENERIC_TEMPLATES)
            chosen = rng.sample(templates, min(self.settings.per_entity, len(templates)))
            result.records += paraphrase_records(
                [template.format(name=the(entity.title)) for template in chosen],
                entity.description,
                kind="entity_template",
                fact=fact_id("entity", entity.id),
                source_ids=context.in_order(entity.text_unit_ids),
            )
        return result


class RelationshipTemplateQA(Strategy):
    """Templated questions about each relationship that is strong enough or joins two
    entities of the chosen types, answered with its description."""

    name: ClassVar[str] = "relationship_templates"
    kinds: ClassVar[tuple[str, ...]] = ("relationship_template",)
    settings_class = RelationshipTemplateSettings
    settings: RelationshipTemplateSettings

    def generate(
        self, context: SynthContext, earlier: Sequence[QARecord], *, progress: bool = False
    ) -> Generated:
        """One record per template chosen for each relationship asked about."""
        rng = context.rng(self.name)
        result = Generated()
        types = set(self.settings.types)
        for relationship in context.index.relationships:
            if not relationship.description.strip():
                continue
            ends = [context.entity(relationship.source), context.entity(relationship.target)]
            typed = all(end is not None and end.type in types for end in ends)
            if not typed and relationship.weight < self.settings.min_weight:
                continue
            count = min(self.settings.per_relationship, len(RELATIONSHIP_TEMPLATES))
            ends_named = {"a": the(relationship.source), "b": the(relationship.target)}
            result.records += paraphrase_records(
                [t.format(**ends_named) for t in rng.sample(RELATIONSHIP_TEMPLATES, count)],
                relationship.description,
                kind="relationship_template",
                fact=fact_id("relationship", relationship.id),
                source_ids=context.in_order(relationship.text_unit_ids),
            )
        return result
