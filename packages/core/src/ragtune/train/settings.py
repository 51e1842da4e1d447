"""The `train.*` settings of `memory.yaml`: how the memory is tuned into the model (LoRA/QLoRA),
and what the train stage reads of the whole configuration (`TrainInputs`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from ragtune.errors import ConfigError
from ragtune.ranges import FRACTION, SEED, SHARE, Range, check_ranges, counts


@dataclass
class TrainConfig:
    """How the synthesized data is trained into a LoRA adapter."""

    adapter: str = field(default="default", metadata={"help": "Name of the adapter to write."})
    base_model: str | None = field(
        default=None, metadata={"help": "The model spec to tune; default `model`."}
    )
    quantization: Literal["auto", "4bit", "8bit", "none"] = field(
        default="auto",
        metadata={
            "help": "4bit (QLoRA: NF4, double quantization, bf16 compute), 8bit or none; auto is "
            "4bit (the fastest correct choice, on a GPU and on these CPUs alike)."
        },
    )
    epochs: float = field(default=2.0, metadata={"help": "Passes over the training data."})
    max_steps: int = field(
        default=-1, metadata={"help": "Stop after this many optimizer steps (-1: no limit)."}
    )
    lr: float = field(default=1e-3, metadata={"help": "Peak learning rate (cosine schedule)."})
    batch_size: int = field(default=4, metadata={"help": "Examples per device per step."})
    grad_accum: int = field(default=1, metadata={"help": "Steps whose gradients add up."})
    max_seq_len: int = field(
        default=512, metadata={"help": "Longest example in tokens (longer ones are cut)."}
    )
    warmup_ratio: float = field(default=0.03, metadata={"help": "Share of steps warming up."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping norm."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling numerator."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA input."})
    packing: Literal["auto", "yes", "no"] = field(
        default="auto",
        metadata={
            "help": "Pack examples into full sequences; auto packs only where attention keeps "
            "packed examples apart (flash attention on a GPU)."
        },
    )
    group_by_length: bool = field(
        default=True,
        metadata={
            "help": "Batch examples of similar length together (less padding: faster where "
            "records differ in length, as profiles and questions do)."
        },
    )
    checkpoint_steps: int = field(
        default=50,
        metadata={
            "help": "Save a resumable checkpoint every this many steps (more often in a short "
            "run: at least four checkpoints a run)."
        },
    )
    seed: int = field(default=0, metadata={"help": "Seed of initialization and data order."})
    objective: Literal["sft", "distill", "sft+distill"] = field(
        default="sft",
        metadata={
            "help": "The loss on the answer tokens: sft (cross-entropy), distill (KL divergence "
            "from the base model asked with the record's source passages in its prompt) or "
            "sft+distill (their sum)."
        },
    )
    distill_top_k: int = field(
        default=20,
        metadata={"help": "How many of the teacher's likeliest tokens per answer token to match."},
    )
    replay: float = field(
        default=0.25,
        metadata={
            "help": "`ragtune train --update`: the share of the records the adapter was "
            "already trained on that are trained again beside the new ones (against "
            "forgetting them)."
        },
    )
    update_epochs: float = field(
        default=1.0,
        metadata={
            "help": "Passes over an update's records (`ragtune train --update`, and the update "
            "`ragtune forget` trains); 0: train.epochs."
        },
    )
    keep_versions: int = field(
        default=5,
        metadata={
            "help": "Adapter versions kept for `ragtune adapters use` (the newest ones; the "
            "current one always stays); 0 keeps all."
        },
    )

    def epochs_for(self, update: bool) -> float:
        """The passes over the data of a training run: `update_epochs` for an update (when
        above 0), else `epochs`."""
        return self.update_epochs if update and self.update_epochs > 0 else self.epochs

    def check(self) -> None:
        """Check the values' ranges.

        Raises:
            ConfigError: a value is out of range.
        """
        if not self.adapter.strip() or "/" in self.adapter or self.adapter.startswith("."):
            raise ConfigError("train.adapter must be a plain folder name")
        check_ranges(self, TRAIN_RANGES, "train.")
        if self.epochs <= 0 and self.max_steps < 1:
            raise ConfigError("train.epochs must be above 0 (or set train.max_steps)")


#: The range of each numeric `train.*` setting.
TRAIN_RANGES = {
    "epochs": Range(0, 10_000),
    "max_steps": Range(1, 10_000_000, also=((-1, "no limit"),)),
    "lr": Range(0, 10, low_open=True),
    "batch_size": counts(1, 65_536),
    "grad_accum": counts(1, 65_536),
    "max_seq_len": counts(1, 1_048_576),
    "warmup_ratio": FRACTION,
    "max_grad_norm": Range(0, 1_000_000, low_open=True),
    "lora_r": counts(1, 65_536),
    "lora_alpha": counts(1, 65_536),
    "lora_dropout": FRACTION,
    "checkpoint_steps": counts(),
    "seed": SEED,
    "distill_top_k": counts(1, 1_000_000),
    "replay": SHARE,
    "update_epochs": Range(0, 10_000),
    "keep_versions": counts(0),
}


class TrainInputs(Protocol):
    """The settings `train_adapter` reads: `train.*` and the model to tune; a
    `ragtune.config.MemoryConfig` is one."""

    @property
    def train(self) -> TrainConfig:
        """The `train.*` settings."""
        ...

    @property
    def base_model(self) -> str:
        """The spec of the model to tune (`train.base_model`, else `model`)."""
        ...

    def validate(self) -> None:
        """Check every value (raises `ConfigError`)."""
        ...
