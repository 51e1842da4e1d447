"""`RagTuneLLM`: a memory-tuned ragtune model as a LlamaIndex LLM."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterator, Sequence
from typing import Any, Literal

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.bridge.pydantic import ConfigDict, Field, model_validator
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.custom import CustomLLM

from ragtune.llm.types import Message
from ragtune.model.shared import check_hybrid, memory_or_shared, require_memory_source
from ragtune.prompts import passage, with_passages

_ROLES = {
    MessageRole.SYSTEM: "system",
    MessageRole.USER: "user",
    MessageRole.ASSISTANT: "assistant",
}


class RagTuneLLM(CustomLLM):
    """A ragtune memory (a base model with its memory adapter) as a LlamaIndex LLM.

    `chat` renders messages with the model's own chat template; `complete` asks the prompt as
    one user turn. ``mode="native"`` answers from the memory in the weights; ``mode="hybrid"``
    puts the nodes a LlamaIndex `retriever` returns for the last user message in the prompt.
    The model loads on first use and is shared with every other user of the same workspace
    adapter in the process.

    Example:
        ```python
        from llama_index.llms.ragtune import RagTuneLLM

        llm = RagTuneLLM(workspace=".demo/memory", max_tokens=64)
        print(llm.complete("Which city did my sister Clara move to?"))
        ```

    Args:
        workspace: The ragtune workspace whose adapter to load (or pass `memory`).
        memory: An already loaded `ragtune.model.MemoryModel`.
        adapter: The adapter's name.
        mode: ``native`` or ``hybrid``.
        retriever: The retriever of hybrid mode (any LlamaIndex retriever).
        max_tokens: The longest answer (`metadata.num_output`).
        temperature: 0 decodes greedily; above 0 samples.
        device: Where the model runs.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    workspace: str | None = None
    memory: Any = Field(default=None, exclude=True)
    adapter: str = "default"
    mode: Literal["native", "hybrid"] = "native"
    retriever: BaseRetriever | None = Field(default=None, exclude=True)
    max_tokens: int = Field(default=256, ge=1)
    temperature: float = Field(default=0.0, ge=0)
    device: str = "auto"

    @model_validator(mode="after")
    def _check(self) -> RagTuneLLM:
        require_memory_source(self.memory, self.workspace)
        check_hybrid(self.mode, self.retriever)
        return self

    @classmethod
    def class_name(cls) -> str:
        return "RagTuneLLM"

    @property
    def model(self) -> Any:
        """The `MemoryModel`, loaded on first use."""
        return memory_or_shared(self.memory, self.workspace, self.adapter, self.device)

    @property
    def metadata(self) -> LLMMetadata:
        model = self.model
        return LLMMetadata(
            context_window=model.backend.context_window or 2048,
            num_output=self.max_tokens,
            model_name=str(model.model_name),
            is_chat_model=True,
        )

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        reply = self._reply([Message(role="user", content=prompt)], kwargs)
        return CompletionResponse(text=reply.text, raw=_raw(reply))

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        def gen() -> CompletionResponseGen:
            text = ""
            for piece in self._stream([Message(role="user", content=prompt)], kwargs):
                text += piece
                yield CompletionResponse(text=text, delta=piece)

        return gen()

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        reply = self._reply(self._prompt(messages), kwargs)
        message = ChatMessage(role=MessageRole.ASSISTANT, content=reply.text)
        return ChatResponse(message=message, raw=_raw(reply))

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        def gen() -> ChatResponseGen:
            text = ""
            for piece in self._stream(self._prompt(messages), kwargs):
                text += piece
                message = ChatMessage(role=MessageRole.ASSISTANT, content=text)
                yield ChatResponse(message=message, delta=piece)

        return gen()

    @llm_completion_callback()
    async def acomplete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponse:
        return await asyncio.to_thread(self.complete, prompt, formatted, **kwargs)

    @llm_completion_callback()
    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        return _in_thread(self.stream_complete(prompt, formatted, **kwargs))

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return await asyncio.to_thread(self.chat, messages, **kwargs)

    @llm_chat_callback()
    async def astream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> ChatResponseAsyncGen:
        return _in_thread(self.stream_chat(messages, **kwargs))

    def _reply(self, messages: list[Message], kwargs: dict[str, Any]) -> Any:
        return self.model.reply(
            messages,
            max_new_tokens=kwargs.get("max_tokens", self.max_tokens),
            temperature=kwargs.get("temperature", self.temperature),
        )

    def _stream(self, messages: list[Message], kwargs: dict[str, Any]) -> Iterator[str]:
        return iter(
            self.model.stream(
                messages,
                max_new_tokens=kwargs.get("max_tokens", self.max_tokens),
                temperature=kwargs.get("temperature", self.temperature),
            )
        )

    def _prompt(self, messages: Sequence[ChatMessage]) -> list[Message]:
        converted = [to_ragtune_message(message) for message in messages]
        retriever = self.retriever
        if self.mode != "hybrid" or retriever is None:
            return converted
        return with_passages(
            converted,
            lambda question: [
                passage(n.node.get_content(), n.node.metadata.get("timestamp"))
                for n in retriever.retrieve(question)
            ],
        )


def to_ragtune_message(message: ChatMessage) -> Message:
    """A LlamaIndex chat message as ragtune's (text only).

    Raises:
        ValueError: the role cannot be passed on (tools, functions).
    """
    role = _ROLES.get(MessageRole(message.role))
    if role is None:
        raise ValueError(f"ragtune cannot pass on a {message.role!s} message")
    return Message(role=role, content=message.content or "")  # type: ignore[typeddict-item]


def _raw(reply: Any) -> dict[str, Any]:
    """A reply's token counts and the adapter version that answered (``adapter_version``)."""
    return {**_usage(reply.usage), "adapter_version": reply.version}


def _usage(used: Any) -> dict[str, int]:
    return {
        "prompt_tokens": used.prompt_tokens,
        "completion_tokens": used.completion_tokens,
        "total_tokens": used.prompt_tokens + used.completion_tokens,
    }


def _in_thread(items: Iterator[Any]) -> AsyncGenerator[Any, None]:
    """An async generator over `items`, each `next` run in a worker thread."""
    done = object()

    async def gen() -> AsyncGenerator[Any, None]:
        while (item := await asyncio.to_thread(next, items, done)) is not done:
            yield item

    return gen()
