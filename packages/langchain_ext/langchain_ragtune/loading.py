"""Loading a workspace's memory model once per process, however many LangChain objects use it."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

_LOCK = threading.Lock()
_LOADED: dict[tuple[str, str, str, int], Any] = {}


def memory_model(memory: Any, workspace: str | None, adapter: str, device: str) -> Any:
    """`memory` if given, else the `MemoryModel` of `workspace`'s adapter: loaded on first use
    and shared by every chat model and retriever of that adapter in this process (loaded again
    after the adapter is retrained).

    Raises:
        ValueError: neither `memory` nor `workspace` is given.
        RagtuneError: the workspace has no such adapter, or it was trained on other weights.
    """
    if memory is not None:
        return memory
    if workspace is None:
        raise ValueError("give a ragtune workspace path (workspace=...) or memory=MemoryModel")
    from ragtune.model import MemoryModel
    from ragtune.workspace import Workspace

    folder = Workspace.at(workspace).adapter_path(adapter)
    manifest = folder / "manifest.json"
    trained = manifest.stat().st_mtime_ns if manifest.is_file() else 0
    key = (str(Path(workspace).resolve()), adapter, device, trained)
    with _LOCK:
        if key not in _LOADED:
            _LOADED[key] = MemoryModel.from_workspace(workspace, adapter, device=device)
        return _LOADED[key]
