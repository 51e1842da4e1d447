"""One `MemoryModel` per workspace adapter per process, however many integrations use it (a
LangChain chat model and retriever, a LlamaIndex LLM and retriever, ...)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ragtune.model.memory_model import MemoryModel

_LOCK = threading.Lock()
_LOADED: dict[tuple[str, str, str, int], MemoryModel] = {}


def shared_memory_model(
    workspace: str | Path, adapter: str = "default", device: str = "auto"
) -> MemoryModel:
    """The `MemoryModel` of `workspace`'s adapter `adapter`: loaded on first use and shared by
    every caller in this process; loaded again once the adapter is retrained.

    Raises:
        RagtuneError: the workspace has no such adapter, or it was trained on other weights.
    """
    from ragtune.model.memory_model import MemoryModel
    from ragtune.workspace import Workspace

    manifest = Workspace.at(workspace).adapter_path(adapter) / "manifest.json"
    trained = manifest.stat().st_mtime_ns if manifest.is_file() else 0
    key = (str(Path(workspace).resolve()), adapter, device, trained)
    with _LOCK:
        if key not in _LOADED:
            _LOADED[key] = MemoryModel.from_workspace(workspace, adapter, device=device)
        return _LOADED[key]


def require_memory_source(memory: object, workspace: str | Path | None) -> None:
    """Raise `ValueError` unless a memory model or a workspace to load one from is given (what
    the integrations' constructors check)."""
    if memory is None and workspace is None:
        raise ValueError("give a ragtune workspace path (workspace=...) or memory=MemoryModel")


def memory_or_shared(
    memory: MemoryModel | None, workspace: str | Path | None, adapter: str, device: str
) -> MemoryModel:
    """`memory` if given, else `shared_memory_model` of `workspace`.

    Raises:
        ValueError: neither is given.
        RagtuneError: see `shared_memory_model`.
    """
    require_memory_source(memory, workspace)
    if memory is not None:
        return memory
    assert workspace is not None
    return shared_memory_model(workspace, adapter, device)
