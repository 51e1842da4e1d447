"""Merging an adapter into its base model, for tools that know nothing of PEFT."""

from __future__ import annotations

from pathlib import Path

from ragtune.fileio import atomic_directory


def export_merged(workspace: str | Path, target: str | Path, *, adapter: str = "default") -> Path:
    """Write the base model of `workspace` with `adapter` merged in (float32 safetensors, its
    tokenizer and chat template) to the folder `target`, replacing it atomically.

    Raises:
        RagtuneError: the adapter is missing or does not match the base model.
    """
    from ragtune.model.memory_model import MemoryModel

    model = MemoryModel.from_workspace(workspace, adapter, device="cpu", dtype="float32")
    merged = model.backend.model.merge_and_unload()
    with atomic_directory(target, replace=True) as folder:
        merged.save_pretrained(folder, safe_serialization=True)
        model.backend.tokenizer.save_pretrained(folder)
    return Path(target)
