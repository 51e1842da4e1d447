"""The index model: what extraction finds in one text unit, and the merged memory index.

Merged tables follow Microsoft GraphRAG's output data model (`entities`, `relationships`,
`communities`, `community_reports`), with its column names as field names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Entity types asked for by default (GraphRAG's four, plus object and concept).
DEFAULT_ENTITY_TYPES = ("person", "organization", "geo", "event", "object", "concept")


@dataclass(frozen=True)
class EntityMention:
    """An entity as one text unit mentions it.

    Attributes:
        name: The entity's name as written.
        type: One of the configured entity types.
        description: What the unit says about it.
        text_unit_id: The unit it was found in.
        confidence: How sure the extractor is of the type, from 0 to 1 (a name the heuristic
            extractor typed with no evidence gets less); merging weighs types by it.
    """

    name: str
    type: str
    description: str
    text_unit_id: str
    confidence: float = 1.0


@dataclass(frozen=True)
class RelationshipMention:
    """A relationship between two entities as one text unit states it.

    Attributes:
        source: The source entity's name.
        target: The target entity's name.
        description: What the unit says relates them.
        strength: How strong the relationship is (1–10 from an LLM; a count for co-occurrence).
        text_unit_id: The unit it was found in.
    """

    source: str
    target: str
    description: str
    strength: float
    text_unit_id: str


@dataclass(frozen=True)
class UnitExtraction:
    """What an extractor found in one text unit, or why it failed.

    Attributes:
        text_unit_id: The unit.
        entities: Entities mentioned.
        relationships: Relationships stated.
        error: Why extraction failed (the unit then has no entities), or None.
        dropped: Relationships dropped because an endpoint was not among the unit's entities.
    """

    text_unit_id: str
    entities: tuple[EntityMention, ...] = ()
    relationships: tuple[RelationshipMention, ...] = ()
    error: str | None = None
    dropped: int = 0

    def to_json(self) -> dict[str, Any]:
        """A JSON-serializable record of this extraction."""
        return {
            "text_unit_id": self.text_unit_id,
            "entities": [[e.name, e.type, e.description, e.confidence] for e in self.entities],
            "relationships": [
                [r.source, r.target, r.description, r.strength] for r in self.relationships
            ],
            "error": self.error,
            "dropped": self.dropped,
        }

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> UnitExtraction:
        """The extraction `to_json` recorded."""
        unit = record["text_unit_id"]
        return cls(
            text_unit_id=unit,
            entities=tuple(
                EntityMention(item[0], item[1], item[2], unit, *item[3:4])
                for item in record["entities"]
            ),
            relationships=tuple(
                RelationshipMention(s, t, d, float(w), unit)
                for s, t, d, w in record["relationships"]
            ),
            error=record["error"],
            dropped=record.get("dropped", 0),
        )


@dataclass(frozen=True)
class Entity:
    """A merged entity: a node of the memory graph (a row of `entities.parquet`).

    Attributes:
        id: Stable id (``ent-…``) of the normalized name.
        title: The name, in its most frequent spelling.
        type: The most frequent type among its mentions.
        description: Its descriptions, summarized or trimmed into one.
        text_unit_ids: The units that mention it, in corpus order.
        frequency: How many units mention it.
        degree: How many relationships it takes part in.
    """

    id: str
    title: str
    type: str
    description: str
    text_unit_ids: tuple[str, ...]
    frequency: int = 0
    degree: int = 0


@dataclass(frozen=True)
class Relationship:
    """A merged relationship: an edge of the memory graph (a row of `relationships.parquet`).

    Attributes:
        id: Stable id (``rel-…``) of the normalized endpoint names.
        source: The source entity's title.
        target: The target entity's title.
        description: Its descriptions, summarized or trimmed into one.
        weight: The summed strength of its mentions.
        combined_degree: The degrees of source and target, added.
        text_unit_ids: The units that state it, in corpus order.
    """

    id: str
    source: str
    target: str
    description: str
    weight: float
    text_unit_ids: tuple[str, ...]
    combined_degree: int = 0


@dataclass(frozen=True)
class Community:
    """A community of the hierarchical Leiden clustering (a row of `communities.parquet`).

    Attributes:
        id: Stable id (``com-…``) of its level and members.
        community: Its number, unique across levels (GraphRAG's `community`).
        level: 0 for the coarsest communities; children are one level deeper.
        parent: The parent community's number, or -1 at level 0.
        children: The numbers of its sub-communities.
        title: ``Community <number>``.
        entity_ids: Ids of its member entities.
        relationship_ids: Ids of the relationships with both ends inside it.
        text_unit_ids: Units that mention its members.
        period: The date the index was built (ISO 8601), as GraphRAG records it.
        size: How many entities it holds.
    """

    id: str
    community: int
    level: int
    parent: int
    children: tuple[int, ...]
    title: str
    entity_ids: tuple[str, ...]
    relationship_ids: tuple[str, ...]
    text_unit_ids: tuple[str, ...]
    period: str
    size: int


@dataclass(frozen=True)
class Finding:
    """One insight of a community report."""

    summary: str
    explanation: str


@dataclass(frozen=True)
class CommunityReport:
    """The report on one community (a row of `community_reports.parquet`).

    Attributes:
        id: Stable id (``rep-…``) of the community's id.
        community: The community's number.
        level: The community's level.
        parent: The parent community's number, or -1.
        children: The sub-communities' numbers.
        title: A short name for the community.
        summary: What the community is about, in a few sentences.
        full_content: The whole report as markdown.
        rank: Importance from 0 to 10.
        rating_explanation: Why it has that rank.
        findings: The main insights.
        full_content_json: The report as JSON text (what an LLM answered, or the extractive
            report in the same shape).
        period: The date the index was built (ISO 8601).
        size: How many entities the community holds.
        generated_by: ``"llm"`` or ``"extractive"``.
    """

    id: str
    community: int
    level: int
    parent: int
    children: tuple[int, ...]
    title: str
    summary: str
    full_content: str
    rank: float
    rating_explanation: str
    findings: tuple[Finding, ...]
    full_content_json: str
    period: str
    size: int
    generated_by: str = "extractive"


@dataclass(frozen=True)
class MemoryIndex:
    """A whole index: the four tables."""

    entities: list[Entity] = field(default_factory=list)
    relationships: list[Relationship] = field(default_factory=list)
    communities: list[Community] = field(default_factory=list)
    reports: list[CommunityReport] = field(default_factory=list)

    def communities_per_level(self) -> dict[int, int]:
        """How many communities each level holds, by level."""
        counts: dict[int, int] = {}
        for community in self.communities:
            counts[community.level] = counts.get(community.level, 0) + 1
        return dict(sorted(counts.items()))
