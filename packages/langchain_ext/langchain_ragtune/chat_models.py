"""`ChatRagTune`: a memory-tuned ragtune model as a LangChain chat model."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Literal

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, model_validator

from langchain_ragtune.messages import to_ragtune_messages
from ragtune.llm.types import Message, TokenUsage
from ragtune.model.shared import check_hybrid, memory_or_shared, require_memory_source
from ragtune.prompts import passage, with_passages


class ChatRagTune(BaseChatModel):
    """A ragtune memory (a base model with its memory adapter) as a LangChain chat model.

    It answers from the memory tuned into its weights, with no retrieval (``mode="native"``),
    or with the documents a `retriever` returns for the last user message in the prompt
    (``mode="hybrid"``). The model loads on first use.

    Example:
        ```python
        from langchain_ragtune import ChatRagTune

        llm = ChatRagTune(workspace=".demo/memory", max_tokens=64)
        print(llm.invoke("Which city did my sister Clara move to?").content)
        ```

    Args:
        workspace: The ragtune workspace whose adapter to load (or pass `memory`).
        memory: An already loaded `ragtune.model.MemoryModel`.
        adapter: The adapter's name in the workspace.
        mode: ``native`` (question only) or ``hybrid`` (retrieved documents in the prompt).
        retriever: The retriever of hybrid mode (any LangChain retriever).
        max_tokens: The longest answer.
        temperature: 0 decodes greedily; above 0 samples.
        stop: Strings that end an answer.
        device: Where the model runs (``auto``, ``cpu``, ``cuda``).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True)

    workspace: str | None = None
    memory: Any = Field(default=None, exclude=True)
    adapter: str = "default"
    mode: Literal["native", "hybrid"] = "native"
    retriever: BaseRetriever | None = Field(default=None, exclude=True)
    max_tokens: int = Field(default=256, ge=1)
    temperature: float = Field(default=0.0, ge=0)
    stop: list[str] | None = Field(default=None, alias="stop_sequences")
    device: str = "auto"
    timeout: float | None = None
    max_retries: int = 0

    @model_validator(mode="after")
    def _check(self) -> ChatRagTune:
        require_memory_source(self.memory, self.workspace)
        check_hybrid(self.mode, self.retriever)
        return self

    @property
    def model(self) -> Any:
        """The `MemoryModel`, loaded on first use (shared with every other user of the same
        workspace adapter in this process)."""
        return memory_or_shared(self.memory, self.workspace, self.adapter, self.device)

    @property
    def model_name(self) -> str:
        """The base model and adapter, ``<base model spec>+<adapter>`` (read from the adapter's
        manifest, so naming the model does not load it)."""
        if self.memory is not None:
            return str(self.memory.model_name)
        return adapter_name(str(self.workspace), self.adapter)

    @property
    def _llm_type(self) -> str:
        return "ragtune"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "workspace": self.workspace,
            "adapter": self.adapter,
            "mode": self.mode,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(
            ls_provider="ragtune",
            ls_model_name=self.model_name,
            ls_model_type="chat",
            ls_temperature=kwargs.get("temperature", self.temperature),
            ls_max_tokens=kwargs.get("max_tokens", self.max_tokens),
        )
        if stops := stop or self.stop:
            params["ls_stop"] = stops
        return params

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        reply = self.model.reply(
            self._prompt(messages),
            max_new_tokens=kwargs.get("max_tokens", self.max_tokens),
            temperature=kwargs.get("temperature", self.temperature),
            stop=self._stops(stop),
        )
        message = AIMessage(
            content=reply.text,
            usage_metadata=usage_metadata(reply.usage),
            response_metadata=self._metadata(reply.version),
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        used: list[TokenUsage] = []
        answered: list[int | None] = []

        def ended(usage: TokenUsage) -> None:
            # (called as generation ends, under the model's lock: the version that answered,
            # before another call can follow a newer one)
            used.append(usage)
            answered.append(self.model.version)

        pieces = self.model.stream(
            self._prompt(messages),
            max_new_tokens=kwargs.get("max_tokens", self.max_tokens),
            temperature=kwargs.get("temperature", self.temperature),
            on_usage=ended,
        )
        for piece in cut_at_stop(pieces, self._stops(stop)):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk
        last = AIMessageChunk(
            content="",
            usage_metadata=usage_metadata(used[0] if used else TokenUsage()),
            response_metadata=self._metadata(answered[0] if answered else self.model.version),
            chunk_position="last",
        )
        yield ChatGenerationChunk(message=last)

    def _prompt(self, messages: Sequence[BaseMessage]) -> list[Message]:
        converted = to_ragtune_messages(messages)
        retriever = self.retriever
        if self.mode != "hybrid" or retriever is None:
            return converted
        return with_passages(
            converted,
            lambda question: [
                passage(d.page_content, d.metadata.get("timestamp"))
                for d in retriever.invoke(question)
            ],
        )

    def _stops(self, stop: list[str] | None) -> list[str]:
        return list(stop if stop is not None else self.stop or [])

    def _metadata(self, version: int | None) -> dict[str, Any]:
        """The response metadata: the model, and the adapter version that answered."""
        return {
            "model_name": self.model_name,
            "model_provider": "ragtune",
            "adapter_version": version,
        }


def usage_metadata(used: TokenUsage) -> UsageMetadata:
    """ragtune's token usage as LangChain's."""
    return UsageMetadata(
        input_tokens=used.prompt_tokens,
        output_tokens=used.completion_tokens,
        total_tokens=used.prompt_tokens + used.completion_tokens,
    )


def adapter_name(workspace: str, adapter: str) -> str:
    """``<base model spec>+<adapter>`` from the adapter's manifest, without loading anything."""
    import json
    from pathlib import Path

    from ragtune.workspace import Workspace

    manifest = Workspace(Path(workspace)).adapter_path(adapter) / "manifest.json"
    try:
        spec = json.loads(manifest.read_text(encoding="utf-8"))["base_model"]["spec"]
    except (OSError, ValueError, KeyError, TypeError):
        spec = f"ragtune:{workspace}"
    return f"{spec}+{adapter}"


def cut_at_stop(pieces: Iterator[str], stops: Sequence[str]) -> Iterator[str]:
    """`pieces` up to (not including) the first of `stops`, holding back only what could be
    the start of one."""
    if not stops:
        yield from pieces
        return
    hold = max(len(s) for s in stops) - 1
    pending = ""
    for piece in pieces:
        pending += piece
        found = [pending.find(s) for s in stops if s in pending]
        if found:
            if head := pending[: min(found)]:
                yield head
            for _ in pieces:  # let the generation finish, so its token count is recorded
                pass
            return
        ready = pending[: len(pending) - hold] if hold else pending
        if ready:
            yield ready
            pending = pending[len(ready) :]
    if pending:
        yield pending
