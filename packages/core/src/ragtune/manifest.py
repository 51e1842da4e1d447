"""`manifest.json`: what an adapter was trained from and how, so it can be checked and redone."""

from __future__ import annotations

import importlib.metadata
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ragtune.errors import RagtuneError

MANIFEST = "manifest.json"
_LIBRARIES = (
    "ragtune",
    "torch",
    "transformers",
    "trl",
    "peft",
    "bitsandbytes",
    "accelerate",
    "datasets",
)


@dataclass
class Manifest:
    """An adapter's record.

    Attributes:
        adapter: The adapter's name.
        base_model: The base model's spec, source and ``weights_sha256``.
        corpus_sha256: Hash of the workspace's text units (ids, which hash their text).
        data_card: The `synth/card.json` the data came with.
        hyperparameters: The `train.*` settings, quantization and packing resolved.
        libraries: Versions of the libraries that trained it.
        metrics: Final train and validation loss, steps, epochs, tokens, tokens/s, seconds.
        loss_curve: ``{"train": [[step, loss], ...], "val": [[step, loss], ...]}``.
        device: Where it was trained (``cpu``, ``cuda:0 (NVIDIA H100 ...)``); under DDP, the
            main process's device.
        processes: How many processes trained it (the world size: 1, or N under
            ``accelerate launch`` / torchrun DDP).
        peak_gpu_memory_bytes: The most GPU memory the main process had allocated during the
            run (``torch.cuda.max_memory_allocated``), or None when trained on a CPU.
        version: The adapter version (`ragtune.adapters`); 1 for adapters from before versions.
        parent: The version this one continued (``ragtune train --update``), or None when it
            was trained from the base model alone.
        added: What this version's run trained: ``{"records": new records, "replayed": old
            records trained again, "units": text units new to the weights, "documents":
            their documents}`` (empty for adapters from before versions).
        created: When the version was written (ISO 8601, UTC).
    """

    adapter: str
    base_model: dict[str, str]
    corpus_sha256: str
    data_card: dict[str, Any]
    hyperparameters: dict[str, Any]
    libraries: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    loss_curve: dict[str, list[list[float]]] = field(default_factory=dict)
    device: str = "cpu"
    processes: int = 1
    peak_gpu_memory_bytes: int | None = None
    version: int = 1
    parent: int | None = None
    added: dict[str, Any] = field(default_factory=dict)
    created: str = ""

    def write(self, folder: Path) -> Path:
        """Write the manifest into `folder`; returns its path."""
        path = folder / MANIFEST
        path.write_text(json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n", "utf-8")
        return path

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        """The manifest of the adapter in `folder`.

        Raises:
            RagtuneError: there is none, or it is not a ragtune manifest.
        """
        path = folder / MANIFEST
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**data)
        except FileNotFoundError:
            raise RagtuneError("is not an adapter folder (no manifest.json)", path=folder) from None
        except (json.JSONDecodeError, TypeError) as error:
            raise RagtuneError(f"is not a ragtune adapter manifest ({error})", path=path) from None


def library_versions() -> dict[str, str]:
    """The installed versions of the libraries training uses."""
    versions = {}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions
