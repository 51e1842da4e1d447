"""The memory index: entities, relationships, hierarchical communities and community reports,
in Microsoft GraphRAG's table format, built by a teacher LLM or by offline heuristics."""

from __future__ import annotations

from ragtune.index.types import (
    DEFAULT_ENTITY_TYPES,
    Community,
    CommunityReport,
    Entity,
    EntityMention,
    Finding,
    MemoryIndex,
    Relationship,
    RelationshipMention,
    UnitExtraction,
)

__all__ = [
    "DEFAULT_ENTITY_TYPES",
    "Community",
    "CommunityReport",
    "Entity",
    "EntityMention",
    "Finding",
    "MemoryIndex",
    "Relationship",
    "RelationshipMention",
    "UnitExtraction",
]
