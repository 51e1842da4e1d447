"""The tuned model: `MemoryModel` answers from memory and recalls its source passages."""

from __future__ import annotations

from ragtune.model.memory_model import MemoryModel, Recollection

__all__ = ["MemoryModel", "Recollection"]
