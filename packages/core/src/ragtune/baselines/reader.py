"""The reader: the one model every system answers with — the workspace's base model, with its
memory adapter switched on for the tuned systems and off for the others, so the comparison is
between memories and never between models."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ragtune.config import load_config
from ragtune.fileio import disk_usage
from ragtune.llm.types import GenerationParams, Message
from ragtune.prompts import memory_messages
from ragtune.workspace import Workspace


@dataclass(frozen=True)
class Reading:
    """What the reader wrote, and the tokens it read and wrote."""

    text: str
    prompt_tokens: int
    completion_tokens: int


class Reader:
    """The base model, with or without the memory adapter.

    Build it with `Reader.from_workspace`.

    Args:
        backend: A `TransformersBackend` (its model a PEFT model when `has_adapter`).
        has_adapter: Whether the memory adapter is loaded.
        adapter_bytes: The adapter's weights on disk (0 without one).
    """

    def __init__(self, backend: Any, *, has_adapter: bool, adapter_bytes: int = 0) -> None:
        self.backend = backend
        self.has_adapter = has_adapter
        self.adapter_bytes = adapter_bytes

    @classmethod
    def from_workspace(
        cls,
        workspace: Workspace,
        *,
        adapter: str | None = "default",
        device: str = "auto",
        dtype: str = "auto",
    ) -> Reader:
        """The workspace's base model with its adapter `adapter` (checked against the base
        weights like `MemoryModel` does), or without an adapter when `adapter` is None.

        Raises:
            RagtuneError: the adapter is missing or was trained on other base weights.
            ModelNotAvailableError: the base model cannot be loaded.
        """
        if adapter is not None:
            from ragtune.model import MemoryModel

            model = MemoryModel.from_workspace(workspace.root, adapter, device=device, dtype=dtype)
            weights = disk_usage(workspace.adapter_path(adapter), "*.safetensors")
            return cls(model.backend, has_adapter=True, adapter_bytes=weights)
        from ragtune.llm.transformers_backend import TransformersBackend
        from ragtune.llm.weights import model_weights

        spec = load_config(workspace.config_path).base_model
        source, _ = model_weights(spec)
        return cls(TransformersBackend(source, device=device, dtype=dtype), has_adapter=False)

    @property
    def model_name(self) -> str:
        """The base model's name (with ``+adapter`` when one is loaded)."""
        return str(self.backend.model_name)

    @property
    def base_name(self) -> str:
        """The base model's name alone."""
        name = self.model_name
        return name.rsplit("+", 1)[0] if self.has_adapter else name

    @property
    def context_window(self) -> int | None:
        """The most tokens (prompt plus answer) the model attends to."""
        window = self.backend.context_window
        return int(window) if window else None

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """The prompt length of `messages` in tokens, chat template applied."""
        prompt = self.backend.render_prompt(messages)
        return len(self.backend.tokenizer(prompt, add_special_tokens=False)["input_ids"])

    def count_text_tokens(self, text: str) -> int:
        """The length of `text` in tokens."""
        return len(self.backend.tokenizer(text, add_special_tokens=False)["input_ids"])

    def read(
        self, messages: Sequence[Message], *, tuned: bool, max_new_tokens: int = 48
    ) -> Reading:
        """Answer `messages` greedily, with the memory adapter on (`tuned`, and the chat opening
        with the memory's system message as in training: `memory_messages`) or off.

        Raises:
            RagtuneError: `tuned` but no adapter is loaded.
            BackendError: the prompt does not fit the context window.
        """
        from ragtune.errors import RagtuneError

        if tuned and not self.has_adapter:
            raise RagtuneError("the tuned systems need the memory adapter; run `ragtune train`")
        switch = (
            self.backend.model.disable_adapter()
            if self.has_adapter and not tuned
            else contextlib.nullcontext()
        )
        with switch:
            response = self.backend.chat(
                memory_messages(messages) if tuned else messages,
                params=GenerationParams(max_tokens=max_new_tokens),
            )
        return Reading(
            response.text, response.usage.prompt_tokens, response.usage.completion_tokens
        )
