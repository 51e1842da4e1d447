"""Helpers of the train stage tests (`test_train.py`, `test_train_resume.py`): a workspace with
synthesized training data, the training settings of the tiny model, what an adapter folder holds,
a spy on the trainer that can crash a run after a checkpoint, and small hand-made adapter version
folders (imported as `train_support`; tests/ is on sys.path)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file
from transformers import TrainerCallback

import ragtune.train.trainer as trainer_module
from ragtune.config import MemoryConfig, load_config
from ragtune.corpus.tables import write_text_units
from ragtune.corpus.types import TextUnit
from ragtune.manifest import MANIFEST, Manifest
from ragtune.workspace import Workspace

PROJECTIONS = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
CARD = {"records": 8, "dropped": 1, "strategies": {"text_unit": 8}, "teacher": "test"}
UNITS = (
    TextUnit("tu-1", "doc-1", 0, "Fact 1 is 7. Fact 2 is 14.", 12, 0, 26),
    TextUnit("tu-2", "doc-1", 1, "Fact 3 is 21. Fact 4 is 28.", 12, 27, 54),
)


def record(number: int, answer: str | None = None) -> dict[str, Any]:
    return {
        "prompt": [{"role": "user", "content": f"What is fact {number}?"}],
        "completion": [
            {"role": "assistant", "content": answer or f"Fact {number} is {7 * number}."}
        ],
        "kind": "text_unit",
        "query_scope": "local",
        "source_ids": ["tu-1"],
        "fact_id": f"f{number}",
        "evidence": [],
    }


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def train_workspace(
    root: Path,
    *,
    train: list[dict[str, Any]] | None = None,
    val: list[dict[str, Any]] | None = None,
    card: dict[str, Any] | None = CARD,
) -> Workspace:
    workspace = Workspace.at(root, create=True)
    write_text_units(workspace.text_units_path, list(UNITS))
    _write_jsonl(
        workspace.train_path, train if train is not None else [record(n) for n in range(8)]
    )
    _write_jsonl(workspace.val_path, val if val is not None else [record(8), record(9)])
    if card is not None:
        workspace.card_path.write_text(json.dumps(card), encoding="utf-8")
    return workspace


def train_config(tiny_model_dir: Path, *overrides: str) -> MemoryConfig:
    return load_config(
        None,
        [
            f"model=hf:{tiny_model_dir}",
            "train.max_steps=2",
            "train.batch_size=2",
            "train.max_seq_len=256",
            *overrides,
        ],
    )


def files(folder: Path) -> dict[str, str]:
    """Relative path → SHA-256 of every file under `folder`."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def adapter_tensors(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


class SimulatedCrashError(Exception):
    """Raised by `_CrashAfterSave` in place of a killed process."""


class _CrashAfterSave(TrainerCallback):  # type: ignore[misc]
    """Crashes the run right after the checkpoint of `step` is saved."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == self.step:
            raise SimulatedCrashError(f"killed after the checkpoint of step {self.step}")


@dataclass
class TrainerSpy:
    """What `patch_trainer` saw: the trainers built, and whether the partial folder existed
    when each was built."""

    trainers: list[Any]
    partial_existed: list[bool]
    initial_lora: dict[str, torch.Tensor] = field(default_factory=dict)


def patch_trainer(monkeypatch: pytest.MonkeyPatch, *, crash_after: int | None = None) -> TrainerSpy:
    """Wrap `ragtune.train.trainer._trainer` to record the trainer it builds (and crash it after
    the checkpoint of step `crash_after`)."""
    spy = TrainerSpy([], [])
    original = trainer_module._trainer

    def wrapped(
        base: Any,
        config: MemoryConfig,
        train: Any,
        val: Any,
        output: Path,
        progress: bool,
        **options: Any,
    ) -> Any:
        spy.partial_existed.append(output.exists())
        trainer = original(base, config, train, val, output, progress, **options)
        if crash_after is not None:
            trainer.add_callback(_CrashAfterSave(crash_after))
        spy.trainers.append(trainer)
        spy.initial_lora = {
            name: p.detach().clone()
            for name, p in trainer.model.named_parameters()
            if "lora_" in name
        }
        return trainer

    monkeypatch.setattr(trainer_module, "_trainer", wrapped)
    return spy


WEIGHTS = "adapter_model.safetensors"


def write_version(
    folder: Path,
    version: int | None,
    *,
    adapter: str = "default",
    parent: int | None = None,
    weights: bool = True,
    value: float | None = None,
) -> Path:
    """A version folder as training writes it, small: its manifest (without the version
    fields when `version` is None: an adapter from before versions) and a safetensors file
    whose one tensor is filled with `value` (default the version number)."""
    folder.mkdir(parents=True)
    number = version or 1
    Manifest(
        adapter=adapter,
        base_model={"spec": "hf:fake", "source": "fake", "weights_sha256": "0" * 64},
        corpus_sha256="0" * 64,
        data_card={},
        hyperparameters={},
        metrics={"steps": 2, "val_loss": 1.25 * number},
        version=number,
        parent=parent,
        added={"records": 10 * number, "replayed": number},
        created=f"2026-01-0{number}T00:00:00+00:00",
    ).write(folder)
    if version is None:
        path = folder / MANIFEST
        data = json.loads(path.read_text(encoding="utf-8"))
        for key in ("version", "parent", "added", "created"):
            del data[key]
        path.write_text(json.dumps(data), encoding="utf-8")
    if weights:
        filled = float(value if value is not None else number)
        save_file({"lora_B": torch.full((2, 2), filled)}, str(folder / WEIGHTS))
    return folder


def names_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())
