"""The oracle's passages: the gold evidence of a question — the conversation turns that hold its
answer (LoCoMo's ``evidence``) — each as a passage with its session date.

The untuned reader given these passages is the ``oracle`` system: the best a reader can do when
retrieval is perfect, so the ceiling of RAG and the quality of the reader as a teacher."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ragtune.corpus.types import Document, TextUnit

TurnKey = tuple[str | None, str]
"""A conversation turn: (conversation, turn id)."""


@dataclass(frozen=True)
class Evidence:
    """Where a question's answer is: turns of one conversation.

    Attributes:
        conversation: The conversation (LoCoMo ``sample_id``), or None when the memory holds one
            conversation or its documents name none.
        turn_ids: The turns (LoCoMo ``dia_id``s).
    """

    conversation: str | None
    turn_ids: tuple[str, ...]


def document_conversation(document: Document) -> str | None:
    """The conversation a document belongs to (LoCoMo's ``sample_id``), if it names one."""
    sample_id = document.metadata.get("sample_id")
    return str(sample_id) if sample_id else None


class GoldTurns:
    """Every conversation turn of the memory, findable by (conversation, turn id).

    Build it with `GoldTurns.from_documents`.
    """

    def __init__(self, turns: dict[TurnKey, tuple[int, TextUnit]]) -> None:
        self._turns = turns
        self._count = len({unit.id for _, unit in turns.values()})

    @classmethod
    def from_documents(cls, documents: Iterable[Document]) -> GoldTurns:
        """The turns of `documents`, each a passage of its own (its speaker and words, its
        document's date)."""
        turns: dict[TurnKey, tuple[int, TextUnit]] = {}
        position = 0
        ordered = sorted(documents, key=lambda d: (d.timestamp or "", d.source))
        for document in ordered:
            conversation = document_conversation(document)
            for turn in document.turns:
                text = document.text[turn.start : turn.end]
                unit = TextUnit(
                    id=f"{conversation}:{turn.id}" if conversation else turn.id,
                    document_id=document.id,
                    chunk_index=0,
                    text=text,
                    n_tokens=0,
                    start_char=turn.start,
                    end_char=turn.end,
                    timestamp=document.timestamp,
                    turn_ids=(turn.id,),
                    speakers=(turn.speaker,),
                )
                turns[(conversation, turn.id)] = (position, unit)
                turns.setdefault((None, turn.id), (position, unit))
                position += 1
        return cls(turns)

    def __len__(self) -> int:
        return self._count

    def find(self, evidence: Evidence) -> list[TextUnit]:
        """The turns of `evidence` the memory holds, in the order they were said, each once
        (turn ids it does not hold are left out)."""
        found = {
            self._turns[key]
            for key in ((evidence.conversation, turn_id) for turn_id in evidence.turn_ids)
            if key in self._turns
        }
        return [unit for _, unit in sorted(found, key=lambda pair: pair[0])]


def turn_keys(
    units: Sequence[TextUnit], documents: Iterable[Document]
) -> dict[str, frozenset[TurnKey]]:
    """For each text unit id, the (conversation, turn id) pairs it holds: what evidence recall
    checks a retrieved unit against."""
    conversations = {document.id: document_conversation(document) for document in documents}
    return {
        unit.id: frozenset((conversations.get(unit.document_id), t) for t in unit.turn_ids)
        for unit in units
    }
