"""`SourcePassages`: a workspace's text units found by what a model recalled.

A tuned model asked to recall writes what it remembers; BM25 over the workspace's text units
(together with the question) turns that into real source passages, so a recollection is always
a passage of the corpus with its metadata, never the model's invention. `MemoryModel.recall`
and `ragtune serve`'s `/v1/recall` both ground this way.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from ragtune.corpus.tables import read_documents, read_text_units
from ragtune.corpus.types import Document, TextUnit
from ragtune.model.bm25 import BM25
from ragtune.workspace import Workspace


@dataclass(frozen=True)
class Recollection:
    """A source passage the model recalled.

    Attributes:
        text: The text unit's real text.
        unit_id: The text unit.
        document_id: Its document.
        source: Where the document came from (``notes/trip.md``, ``locomo.json#conv-26/...``).
        timestamp: When it was written (ISO 8601), or None.
        turn_ids: The conversation turns it holds (LoCoMo ``dia_id``s).
        score: How well it matches what the model recalled (BM25).
        recalled: What the model wrote when asked to recall.
    """

    text: str
    unit_id: str
    document_id: str
    source: str
    timestamp: str | None
    turn_ids: tuple[str, ...]
    score: float
    recalled: str

    def metadata(self) -> dict[str, Any]:
        """What the integrations attach to a recalled passage: where it comes from, when it
        was written, the turns it holds and what the model recalled."""
        return {
            "source": self.source,
            "timestamp": self.timestamp,
            "unit_id": self.unit_id,
            "document_id": self.document_id,
            "turn_ids": list(self.turn_ids),
            "recalled": self.recalled,
        }


class SourcePassages:
    """The text units of `workspace`, read (and indexed for BM25) on first use.

    Args:
        workspace: The memory's workspace.
    """

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self._lock = threading.Lock()
        self._loaded: tuple[list[TextUnit], dict[str, Document], BM25] | None = None

    def find(self, recalled: str, question: str, k: int) -> list[Recollection]:
        """Up to `k` text units matching what the model `recalled` for `question`, best
        first."""
        units, documents, bm25 = self._load()
        found = []
        for index, score in bm25.top(f"{recalled}\n{question}", k):
            unit = units[index]
            document = documents.get(unit.document_id)
            found.append(
                Recollection(
                    text=unit.text,
                    unit_id=unit.id,
                    document_id=unit.document_id,
                    source=document.source if document else "",
                    timestamp=unit.timestamp,
                    turn_ids=unit.turn_ids,
                    score=round(score, 4),
                    recalled=recalled,
                )
            )
        return found

    def _load(self) -> tuple[list[TextUnit], dict[str, Document], BM25]:
        with self._lock:
            if self._loaded is None:
                units = read_text_units(self.workspace.text_units_path)
                documents = read_documents(self.workspace.documents_path)
                self._loaded = (
                    units,
                    {document.id: document for document in documents},
                    BM25([unit.text for unit in units]),
                )
            return self._loaded
