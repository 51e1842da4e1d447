"""`LlamaIndexTeacher`: any LlamaIndex LLM (OpenAI, Ollama, HuggingFaceLLM, MockLLM, …) as the
teacher ragtune's stages take (a `ragtune.llm.ChatBackend`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.llms import LLM

from ragtune.hashing import content_hash
from ragtune.llm.base import BaseChatBackend, Completion, cut_at_stop
from ragtune.llm.types import ChatRequest, GenerationParams

_ROLES = {
    "system": MessageRole.SYSTEM,
    "user": MessageRole.USER,
    "assistant": MessageRole.ASSISTANT,
}
#: Fields LlamaIndex LLMs name the answer length with.
_LENGTH_FIELDS = ("max_tokens", "max_new_tokens", "num_output")


class LlamaIndexTeacher(BaseChatBackend):
    """A LlamaIndex LLM behind ragtune's `ChatBackend` protocol.

    Each request is one `llm.chat` call (`max_concurrency` at a time); the answer length and
    temperature are set on a copy of the LLM where it has such fields. Structured requests
    (entity extraction, reports) get ragtune's schema instruction and are validated and repaired
    like any other backend's, so they work with every LLM.

    Args:
        llm: The LlamaIndex LLM.
        max_concurrency: Requests in flight together.
        structured_retries: Repair turns for an invalid structured answer.
    """

    def __init__(self, llm: LLM, *, max_concurrency: int = 4, structured_retries: int = 2) -> None:
        super().__init__(structured_retries=structured_retries)
        self.llm = llm
        self.max_concurrency = max_concurrency

    @property
    def model_name(self) -> str:
        """The LLM's model name, from its metadata."""
        return str(self.llm.metadata.model_name)

    @property
    def fingerprint(self) -> str:
        """The LLM's class and settings, for response cache keys."""
        settings = json.dumps(self.llm.to_dict(), sort_keys=True, default=str)
        return f"llamaindex:{self.llm.class_name()}:{content_hash(settings)}"

    def _complete(self, requests: Sequence[ChatRequest], *, progress: bool) -> list[Completion]:
        with ThreadPoolExecutor(max_workers=self.max_concurrency) as pool:
            return list(pool.map(self._answer, requests))

    def _answer(self, request: ChatRequest) -> Completion:
        messages = [
            ChatMessage(role=_ROLES[m["role"]], content=m["content"]) for m in request.messages
        ]
        response = self._configured(request.params).chat(messages)
        text, _ = cut_at_stop(response.message.content or "", request.params.stop)
        usage = _usage(response.raw) or _usage(response.additional_kwargs)
        return Completion(
            text=text.strip(),
            prompt_tokens=usage.get("prompt_tokens", 0),
            completion_tokens=usage.get("completion_tokens", 0),
            finish_reason="stop",
        )

    def _configured(self, params: GenerationParams) -> Any:
        fields = type(self.llm).model_fields
        update: dict[str, Any] = {
            name: params.max_tokens for name in _LENGTH_FIELDS if name in fields
        }
        if "temperature" in fields:
            update["temperature"] = params.temperature
        return self.llm.model_copy(update=update) if update else self.llm


def _usage(raw: Any) -> dict[str, int]:
    """Token counts from an LLM's raw reply, where it reports them (OpenAI-style ``usage``)."""
    if not isinstance(raw, dict):
        raw = getattr(raw, "__dict__", {}) if raw is not None else {}
    usage = raw.get("usage", raw)
    if not isinstance(usage, dict):
        usage = getattr(usage, "__dict__", {})
    found = {k: usage.get(k) for k in ("prompt_tokens", "completion_tokens")}
    return {k: int(v) for k, v in found.items() if isinstance(v, int)}
