"""One `MemoryModel` per workspace adapter, however many integrations use it (a LangChain chat
model and retriever, a LlamaIndex LLM and retriever, ...): `MemoryModelCache`, an explicit
cache with a bound and `clear()`. The integrations share `SHARED_MODELS` unless given a
`memory=` of their own."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ragtune.model.memory_model import MemoryModel

#: A loaded model's key: the workspace folder, the adapter and the device.
_Slot = tuple[str, str, str]


class MemoryModelCache:
    """Loaded `MemoryModel`s by workspace, adapter and device, at most `max_models` of them
    (the least recently used is dropped first). A retrained adapter (its manifest changed) is
    loaded again, replacing the old one.

    Args:
        max_models: How many models it keeps loaded at most.
    """

    def __init__(self, max_models: int = 4) -> None:
        if max_models < 1:
            raise ValueError("max_models must be at least 1")
        self.max_models = max_models
        self._lock = threading.Lock()
        self._models: OrderedDict[_Slot, tuple[int, MemoryModel]] = OrderedDict()

    def get(
        self, workspace: str | Path, adapter: str = "default", device: str = "auto"
    ) -> MemoryModel:
        """The `MemoryModel` of `workspace`'s adapter `adapter` on `device`: loaded on first
        use, and again once the adapter is retrained.

        Raises:
            RagtuneError: the workspace has no such adapter, or it was trained on other weights.
        """
        from ragtune.model.memory_model import MemoryModel
        from ragtune.workspace import Workspace

        manifest = Workspace.at(workspace).adapter_path(adapter) / "manifest.json"
        trained = manifest.stat().st_mtime_ns if manifest.is_file() else 0
        slot = (str(Path(workspace).resolve()), adapter, device)
        with self._lock:
            held = self._models.get(slot)
            if held is not None and held[0] == trained:
                self._models.move_to_end(slot)
                return held[1]
            model = MemoryModel.from_workspace(workspace, adapter, device=device)
            self._models[slot] = (trained, model)
            self._models.move_to_end(slot)
            while len(self._models) > self.max_models:
                self._models.popitem(last=False)
            return model

    def clear(self) -> None:
        """Forget every loaded model (each is freed once nothing else holds it)."""
        with self._lock:
            self._models.clear()

    def __len__(self) -> int:
        """How many models are loaded."""
        return len(self._models)


#: The cache the integrations share in this process.
SHARED_MODELS = MemoryModelCache()


def check_hybrid(mode: str, retriever: object) -> None:
    """Raise `ValueError` when hybrid mode (what the integrations' models offer) has no
    retriever to take its passages from."""
    if mode == "hybrid" and retriever is None:
        raise ValueError("hybrid mode puts retrieved passages in the prompt: give retriever=")


def require_memory_source(memory: object, workspace: str | Path | None) -> None:
    """Raise `ValueError` unless a memory model or a workspace to load one from is given (what
    the integrations' constructors check)."""
    if memory is None and workspace is None:
        raise ValueError("give a ragtune workspace path (workspace=...) or memory=MemoryModel")


def memory_or_shared(
    memory: MemoryModel | None,
    workspace: str | Path | None,
    adapter: str,
    device: str,
    cache: MemoryModelCache = SHARED_MODELS,
) -> MemoryModel:
    """`memory` if given, else the model of `workspace` from `cache`.

    Raises:
        ValueError: neither is given.
        RagtuneError: see `MemoryModelCache.get`.
    """
    require_memory_source(memory, workspace)
    if memory is not None:
        return memory
    assert workspace is not None
    return cache.get(workspace, adapter, device)
