"""Every prompt and JSON schema the index stage sends to a teacher model, as data.

The extraction prompt follows GraphRAG's entity-extraction prompt (entities with a name, a type
from a given list and a description; relationships with a source, a target, a description and a
1–10 strength) but asks for JSON matching a schema instead of a delimited tuple format.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

EXTRACTION_SYSTEM = (
    "You extract a knowledge graph from personal memories: notes, chats and documents. "
    "You answer with JSON only."
)

EXTRACTION_USER = """Find the entities and relationships in the text below.

Entities: every {types} the text mentions. For each give its name (as written in the text), its \
type (one of: {types}) and a description of everything the text says about it.
Relationships: every pair of those entities that the text clearly relates. For each give the \
source and target entity names (exactly as in the entity list), a description of how they are \
related, and a strength from 1 (weak) to 10 (strong).
{context}
Text:
\"\"\"
{text}
\"\"\""""

GLEANING_USER = (
    "Some entities and relationships in the text were missed. Reply with only the ones that "
    "are missing from your last answer, in the same JSON format; reply with empty lists if "
    "nothing is missing."
)

SUMMARIZE_SYSTEM = "You write concise, faithful summaries. You never add facts."

SUMMARIZE_USER = """Combine the descriptions below of {kind} "{name}" into one comprehensive \
description in the third person. Keep every fact, resolve contradictions, and add nothing \
that the descriptions do not say. Reply with the description only.

Descriptions:
{descriptions}"""

REPORT_SYSTEM = (
    "You write reports about communities of related entities in a person's memories. "
    "You answer with JSON only and use only the facts given."
)

REPORT_USER = """Write a report about the community of entities below, taken from a person's \
memories: a short specific title naming its key entities, an executive summary of its \
structure and most important facts, a rating from 0 to 10 of how important this community is \
in the memories, a one-sentence explanation of the rating, and 3 to 8 findings (each a short \
summary plus an explanation grounded in the data).

Entities:
{entities}

Relationships:
{relationships}"""


def extraction_schema(entity_types: Sequence[str]) -> dict[str, Any]:
    """The JSON schema of an extraction answer, with `entity_types` as the allowed types."""
    return {
        "type": "object",
        "properties": {
            "entities": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "minLength": 1, "description": "entity name"},
                        "type": {"type": "string", "enum": list(entity_types)},
                        "description": {"type": "string", "description": "what the text says"},
                    },
                    "required": ["name", "type", "description"],
                },
            },
            "relationships": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "source": {"type": "string", "minLength": 1, "description": "entity name"},
                        "target": {"type": "string", "minLength": 1, "description": "entity name"},
                        "description": {"type": "string", "description": "how they relate"},
                        "strength": {"type": "number", "minimum": 0, "maximum": 10},
                    },
                    "required": ["source", "target", "description", "strength"],
                },
            },
        },
        "required": ["entities", "relationships"],
    }


REPORT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "minLength": 1, "description": "report title"},
        "summary": {"type": "string", "minLength": 1, "description": "executive summary"},
        "rating": {"type": "number", "minimum": 0, "maximum": 10},
        "rating_explanation": {"type": "string", "description": "why this rating"},
        "findings": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "summary": {"type": "string", "description": "finding"},
                    "explanation": {"type": "string", "description": "explanation"},
                },
                "required": ["summary", "explanation"],
            },
        },
    },
    "required": ["title", "summary", "rating", "rating_explanation", "findings"],
}


def extraction_user(text: str, entity_types: Sequence[str], context: str = "") -> str:
    """The user message asking for the entities and relationships of `text`."""
    return EXTRACTION_USER.format(
        types=", ".join(entity_types),
        text=text,
        context=f"\n{context}\n" if context else "",
    )
