"""LLM extraction: a teacher model reads each text unit and answers with JSON entities and
relationships (GraphRAG's extraction, with structured output), then gleans what it missed.

Invalid answers are repaired by the backend a bounded number of times (see
`BaseChatBackend.structured_retries`); a unit whose answer never fits the schema is recorded as
failed, with the reason, and the run goes on. Relationships whose endpoints are not among the
unit's entities are dropped and counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ragtune.corpus.types import TextUnit
from ragtune.hashing import canonical_json, content_hash
from ragtune.index import prompts
from ragtune.index.types import EntityMention, RelationshipMention, UnitExtraction
from ragtune.llm.types import ChatBackend, ChatRequest, ChatResponse, GenerationParams, Message
from ragtune.text.dates import format_day
from ragtune.text.names import normalize_name

_PROMPTS_VERSION = content_hash(
    prompts.EXTRACTION_SYSTEM, prompts.EXTRACTION_USER, prompts.GLEANING_USER
)


class LLMExtractor:
    """Extracts entities and relationships with a teacher model.

    Args:
        backend: The teacher (wrap it in `CachedChatBackend` so re-runs cost nothing).
        entity_types: The types the teacher may give entities.
        gleanings: Extra passes per unit asking for what the previous answers missed; a unit
            stops gleaning when a pass finds nothing new.
        max_tokens: The most tokens of one answer.
    """

    kind = "llm"

    def __init__(
        self,
        backend: ChatBackend,
        entity_types: Sequence[str],
        *,
        gleanings: int = 1,
        max_tokens: int = 1024,
    ) -> None:
        self.backend = backend
        self.entity_types = tuple(entity_types)
        self.gleanings = gleanings
        self.max_tokens = max_tokens
        self.schema = prompts.extraction_schema(self.entity_types)

    @property
    def fingerprint(self) -> str:
        """Identifies the teacher, prompts and settings, so saved extractions are reused only
        with them."""
        settings = {
            "model": self.backend.fingerprint,
            "types": self.entity_types,
            "gleanings": self.gleanings,
            "max_tokens": self.max_tokens,
            "prompts": _PROMPTS_VERSION,
        }
        return "llm:" + content_hash(canonical_json(settings))

    def extract(self, units: Sequence[TextUnit], *, progress: bool = False) -> list[UnitExtraction]:
        """The entities and relationships of each unit, in order (failed units have `error`)."""
        params = GenerationParams(max_tokens=self.max_tokens)
        conversations = [self._first_messages(unit) for unit in units]
        answers = self.backend.chat_batch(
            [ChatRequest(messages, params, self.schema) for messages in conversations],
            progress=progress,
        )
        found: list[list[dict[str, Any]]] = [[] for _ in units]
        errors: list[str | None] = [None] * len(units)
        active = []
        for n, answer in enumerate(answers):
            if answer.error is not None or not isinstance(answer.parsed, dict):
                errors[n] = answer.error or "the answer is not a JSON object"
                continue
            found[n].append(answer.parsed)
            conversations[n] = [*conversations[n], Message(role="assistant", content=answer.text)]
            active.append(n)
        for _ in range(self.gleanings):
            active = self._glean(active, conversations, found, params)
            if not active:
                break
        return [
            UnitExtraction(unit.id, error=errors[n])
            if errors[n] is not None
            else _unit_extraction(unit.id, found[n])
            for n, unit in enumerate(units)
        ]

    def _glean(
        self,
        active: list[int],
        conversations: list[list[Message]],
        found: list[list[dict[str, Any]]],
        params: GenerationParams,
    ) -> list[int]:
        """One gleaning pass over the `active` units; the units that found something new."""
        asks = [
            [*conversations[n], Message(role="user", content=prompts.GLEANING_USER)] for n in active
        ]
        answers: list[ChatResponse] = self.backend.chat_batch(
            [ChatRequest(messages, params, self.schema) for messages in asks]
        )
        still = []
        for n, messages, answer in zip(active, asks, answers, strict=True):
            if answer.error is not None or not isinstance(answer.parsed, dict):
                continue  # a failed gleaning loses nothing already found
            known = {normalize_name(e["name"]) for part in found[n] for e in part["entities"]}
            new = [e for e in answer.parsed["entities"] if normalize_name(e["name"]) not in known]
            found[n].append(answer.parsed)
            conversations[n] = [*messages, Message(role="assistant", content=answer.text)]
            if new:
                still.append(n)
        return still

    def _first_messages(self, unit: TextUnit) -> list[Message]:
        return [
            Message(role="system", content=prompts.EXTRACTION_SYSTEM),
            Message(
                role="user",
                content=prompts.extraction_user(unit.text, self.entity_types, _context(unit)),
            ),
        ]


def _context(unit: TextUnit) -> str:
    """What the teacher should know about a unit besides its text: speakers and date."""
    parts = []
    if unit.speakers:
        parts.append("It is part of a conversation between " + " and ".join(unit.speakers))
    if unit.timestamp:
        from datetime import datetime

        try:
            day = format_day(datetime.fromisoformat(unit.timestamp).date())
        except ValueError:
            day = unit.timestamp
        parts.append(f"on {day}" if parts else f"It was written on {day}")
    return (" ".join(parts) + ".") if parts else ""


def _unit_extraction(unit_id: str, answers: list[dict[str, Any]]) -> UnitExtraction:
    entities: dict[str, EntityMention] = {}
    for answer in answers:
        for item in answer["entities"]:
            name = item["name"].strip()
            key = normalize_name(name)
            if not key:
                continue
            if key in entities:  # mentioned again in a gleaning: keep both descriptions
                earlier = entities[key]
                description = f"{earlier.description} {item['description']}".strip()
                entities[key] = EntityMention(earlier.name, earlier.type, description, unit_id)
            else:
                entities[key] = EntityMention(name, item["type"], item["description"], unit_id)
    relationships = []
    dropped = 0
    for answer in answers:
        for item in answer["relationships"]:
            source, target = normalize_name(item["source"]), normalize_name(item["target"])
            if source not in entities or target not in entities or source == target:
                dropped += 1
                continue
            relationships.append(
                RelationshipMention(
                    entities[source].name,
                    entities[target].name,
                    item["description"],
                    float(item["strength"]),
                    unit_id,
                )
            )
    return UnitExtraction(unit_id, tuple(entities.values()), tuple(relationships), None, dropped)
