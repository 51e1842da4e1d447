"""The systems a memory is compared with — Qdrant RAG, long context, the untuned base model and
the tuned model with retrieval (hybrid) — all answering with the same reader model and prompt."""

from __future__ import annotations

from ragtune.baselines.context import context_block
from ragtune.baselines.embedding import DEFAULT_EMBEDDING_MODEL, Embedder
from ragtune.baselines.long_context import FittedMemory, MemoryWindow
from ragtune.baselines.reader import Reader, Reading
from ragtune.baselines.retrieval import Retrieved, UnitIndex
from ragtune.baselines.stores import STORE_KINDS, Hit, VectorStore, open_store
from ragtune.baselines.systems import (
    SYSTEM_NAMES,
    MemorySystem,
    SystemAnswer,
    build_systems,
)

__all__ = [
    "DEFAULT_EMBEDDING_MODEL",
    "STORE_KINDS",
    "SYSTEM_NAMES",
    "Embedder",
    "FittedMemory",
    "Hit",
    "MemorySystem",
    "MemoryWindow",
    "Reader",
    "Reading",
    "Retrieved",
    "SystemAnswer",
    "UnitIndex",
    "VectorStore",
    "build_systems",
    "context_block",
    "open_store",
]
