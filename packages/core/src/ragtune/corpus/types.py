"""The corpus model: documents, the turns of a conversation, and the text units cut from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ragtune.hashing import content_hash


@dataclass(frozen=True)
class Turn:
    """One utterance of a conversation document, located by character offsets in its text.

    Attributes:
        id: The turn's id in its source (LoCoMo's `dia_id`, e.g. ``"D3:5"``).
        speaker: Who said it.
        start: Offset of the turn's first character in the document text.
        end: Offset just past the turn's last character.
    """

    id: str
    speaker: str
    start: int
    end: int


@dataclass(frozen=True)
class Document:
    """One piece of the memory: a note, a file, a chat session.

    Attributes:
        id: Stable content-hash id (``doc-…``) of the source reference and the text.
        title: A human title (a heading, a file name, a session name).
        text: The full text.
        source: Where it came from, relative to the corpus root (``notes/trip.md``,
            ``locomo_dev.json#conv-26/session_3``).
        timestamp: When it was written, ISO 8601 (``2023-05-08T13:56:00``), or None.
        metadata: Anything else the source said, JSON-serializable.
        turns: For conversations, the turns in order; empty otherwise.
    """

    id: str
    title: str
    text: str
    source: str
    timestamp: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    turns: tuple[Turn, ...] = ()

    @staticmethod
    def make_id(source: str, text: str) -> str:
        """The stable id of the document with this source reference and text."""
        return "doc-" + content_hash(source, text)


@dataclass(frozen=True)
class TextUnit:
    """A chunk of a document, the unit that indexing and synthesis work on.

    Attributes:
        id: Stable content-hash id (``tu-…``) of the document id, position and text.
        document_id: The document it was cut from.
        chunk_index: Its position among that document's units.
        text: The exact substring ``document.text[start_char:end_char]``.
        n_tokens: Its length in tokens of the chunking tokenizer.
        start_char: Offset of its first character in the document text.
        end_char: Offset just past its last character.
        timestamp: The document's timestamp.
        turn_ids: Ids of the document turns the unit overlaps (LoCoMo `dia_id`s).
        speakers: Speakers of those turns, in order of first appearance.
    """

    id: str
    document_id: str
    chunk_index: int
    text: str
    n_tokens: int
    start_char: int
    end_char: int
    timestamp: str | None = None
    turn_ids: tuple[str, ...] = ()
    speakers: tuple[str, ...] = ()

    @staticmethod
    def make_id(document_id: str, start_char: int, text: str) -> str:
        """The stable id of the unit of this document at this offset with this text."""
        return "tu-" + content_hash(document_id, str(start_char), text)
