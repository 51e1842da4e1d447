"""`LangChainTeacher`: any LangChain chat model (ChatOpenAI, ChatOllama, ChatHuggingFace, …) as
the teacher ragtune's stages take (a `ragtune.llm.ChatBackend`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from ragtune.hashing import content_hash
from ragtune.llm.base import BaseChatBackend, Completion, cut_at_stop
from ragtune.llm.types import ChatRequest, GenerationParams, Message


class LangChainTeacher(BaseChatBackend):
    """A LangChain chat model behind ragtune's `ChatBackend` protocol.

    Requests go through `model.batch` (`max_concurrency` at a time). The answer length,
    temperature and stop strings of each request are set on a copy of the model where it has
    those fields (`max_tokens`, `temperature`, `stop`). Structured requests (entity extraction,
    reports) get ragtune's schema instruction and are validated and repaired like any other
    backend's, so they work with every chat model.

    Example:
        ```python
        from langchain_ollama import ChatOllama
        from langchain_ragtune import LangChainTeacher
        from ragtune.index.pipeline import build_index

        teacher = LangChainTeacher(ChatOllama(model="llama3.1:8b"))
        build_index(workspace, config, teacher=teacher)
        ```

    Args:
        model: The chat model.
        max_concurrency: Requests in flight together.
        structured_retries: Repair turns for an invalid structured answer.
    """

    def __init__(
        self, model: BaseChatModel, *, max_concurrency: int = 4, structured_retries: int = 2
    ) -> None:
        super().__init__(structured_retries=structured_retries)
        self.model = model
        self.max_concurrency = max_concurrency

    @property
    def model_name(self) -> str:
        """The model's name (`model_name` or `model`), else its LangChain type."""
        for field in ("model_name", "model", "model_id"):
            value = getattr(self.model, field, None)
            if isinstance(value, str) and value:
                return value
        return str(self.model._llm_type)

    @property
    def fingerprint(self) -> str:
        """The model's type and identifying parameters, for response cache keys."""
        identity = json.dumps(self.model._identifying_params, sort_keys=True, default=str)
        return f"langchain:{self.model._llm_type}:{content_hash(identity)}"

    def _complete(self, requests: Sequence[ChatRequest], *, progress: bool) -> list[Completion]:
        groups: dict[GenerationParams, list[int]] = {}
        for index, request in enumerate(requests):
            groups.setdefault(request.params, []).append(index)
        answers: list[BaseMessage | None] = [None] * len(requests)
        for params, indices in groups.items():
            batch = [to_langchain_messages(requests[i].messages) for i in indices]
            replies = self._configured(params).batch(
                batch, config={"max_concurrency": self.max_concurrency}
            )
            for index, reply in zip(indices, replies, strict=True):
                answers[index] = reply
        return [
            _completion(answer, request.params)
            for answer, request in zip(answers, requests, strict=True)
        ]

    def _configured(self, params: GenerationParams) -> Any:
        fields = type(self.model).model_fields
        update: dict[str, Any] = {}
        if "max_tokens" in fields:
            update["max_tokens"] = params.max_tokens
        if "temperature" in fields:
            update["temperature"] = params.temperature
        model = self.model.model_copy(update=update) if update else self.model
        return model.bind(stop=list(params.stop)) if params.stop else model


def to_langchain_messages(messages: Sequence[Message]) -> list[BaseMessage]:
    """ragtune's role/content messages as LangChain messages."""
    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    return [kinds[m["role"]](content=m["content"]) for m in messages]


def _completion(answer: BaseMessage | None, params: GenerationParams) -> Completion:
    from langchain_ragtune.messages import text_of

    text = text_of(answer.content) if answer is not None else ""
    usage = getattr(answer, "usage_metadata", None) or {}
    text, _ = cut_at_stop(text, params.stop)
    metadata = getattr(answer, "response_metadata", None) or {}
    finish = metadata.get("finish_reason") or metadata.get("stop_reason")
    return Completion(
        text=text.strip(),
        prompt_tokens=int(usage.get("input_tokens", 0)),
        completion_tokens=int(usage.get("output_tokens", 0)),
        finish_reason="length" if finish in ("length", "max_tokens") else "stop",
    )
