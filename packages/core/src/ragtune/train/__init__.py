"""Tuning the memory into the model: LoRA / QLoRA on the synthesized data with TRL and PEFT."""

from __future__ import annotations

from ragtune.train.settings import TrainConfig

__all__ = ["TrainConfig"]
