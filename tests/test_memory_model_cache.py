"""`MemoryModelCache`: the integrations' shared models, explicit, bounded and clearable."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ragtune.model.shared import SHARED_MODELS, MemoryModelCache, memory_or_shared
from ragtune.workspace import Workspace


@pytest.fixture
def two_memories(tiny_memory: Workspace, tmp_path: Path) -> tuple[Path, Path]:
    """The tiny memory and a copy of it: two workspaces of the same adapter."""
    copy = tmp_path / "copy"
    shutil.copytree(tiny_memory.root, copy)
    return tiny_memory.root, copy


def test_one_model_per_workspace_adapter_and_device(two_memories: tuple[Path, Path]) -> None:
    first, _ = two_memories
    cache = MemoryModelCache()
    model = cache.get(first, device="cpu")
    assert cache.get(str(first), "default", "cpu") is model  # the same slot, however named
    assert len(cache) == 1


def test_the_least_recently_used_model_is_dropped_past_the_bound(
    two_memories: tuple[Path, Path],
) -> None:
    first, second = two_memories
    cache = MemoryModelCache(max_models=1)
    one = cache.get(first, device="cpu")
    two = cache.get(second, device="cpu")
    assert len(cache) == 1
    assert cache.get(second, device="cpu") is two
    assert cache.get(first, device="cpu") is not one  # dropped, so loaded again


def test_clear_forgets_every_model(two_memories: tuple[Path, Path]) -> None:
    first, _ = two_memories
    cache = MemoryModelCache()
    model = cache.get(first, device="cpu")
    cache.clear()
    assert len(cache) == 0
    assert cache.get(first, device="cpu") is not model


def test_a_retrained_adapter_replaces_the_loaded_model(two_memories: tuple[Path, Path]) -> None:
    _, copy = two_memories
    cache = MemoryModelCache()
    old = cache.get(copy, device="cpu")
    manifest = Workspace.at(copy).adapter_path("default") / "manifest.json"
    later = manifest.stat().st_mtime_ns + 1_000_000_000
    os.utime(manifest, ns=(later, later))  # what a new training run does to the manifest
    new = cache.get(copy, device="cpu")
    assert new is not old and len(cache) == 1


def test_a_bound_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        MemoryModelCache(max_models=0)


def test_integrations_use_the_shared_cache_unless_given_a_model(
    two_memories: tuple[Path, Path],
) -> None:
    first, _ = two_memories
    shared = memory_or_shared(None, first, "default", "cpu")
    assert shared is SHARED_MODELS.get(first, device="cpu")
    own = MemoryModelCache()
    assert memory_or_shared(None, first, "default", "cpu", own) is not shared
    assert memory_or_shared(shared, None, "default", "cpu") is shared
    with pytest.raises(ValueError, match="give a ragtune workspace"):
        memory_or_shared(None, None, "default", "cpu")
    SHARED_MODELS.clear()
