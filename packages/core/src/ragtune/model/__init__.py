"""The tuned model: `MemoryModel` answers from memory and recalls its source passages."""

from __future__ import annotations

from ragtune.model.grounding import Recollection
from ragtune.model.memory_model import MemoryModel

__all__ = ["MemoryModel", "Recollection"]
