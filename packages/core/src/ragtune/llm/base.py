"""`BaseChatBackend`: what every backend shares — structured output with repair, and stats.

A backend implements only `_complete` (generate raw answers for a batch); this base class turns
schemas into instructions (unless the backend enforces schemas natively), validates answers,
asks the model to repair invalid ones a bounded number of times, and counts usage.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ragtune.errors import StructuredOutputError
from ragtune.llm.structured import parse_structured, with_repair_turn, with_schema_instruction
from ragtune.llm.types import (
    BackendStats,
    ChatBackend,
    ChatRequest,
    ChatResponse,
    FinishReason,
    GenerationParams,
    Message,
    TokenUsage,
)


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """`text` up to the first of the stop strings `stops` it contains, and whether one was
    found (every backend ends answers at stop strings this way)."""
    found = [text.find(stop) for stop in stops if stop in text]
    return (text[: min(found)], True) if found else (text, False)


def stripped_pieces(pieces: Iterable[str]) -> Iterator[str]:
    """Streamed `pieces` without the whitespace at the start and end of their concatenation (as
    `answer` strips it), passed on as soon as it is known not to be trailing."""
    pending = ""
    started = False
    for piece in pieces:
        text = pending + piece
        if not started:
            text = text.lstrip()
            started = bool(text)
        kept = text.rstrip()
        pending = text[len(kept) :]
        if kept:
            yield kept


def require_valid(response: ChatResponse) -> ChatResponse:
    """`response`, unless it is a structured answer that never matched its schema.

    Raises:
        StructuredOutputError: `response.error` is set.
    """
    if response.error is not None:
        raise StructuredOutputError(
            f"{response.model} did not answer with JSON matching the schema, repairs included: "
            f"{response.error}; last answer: {response.text[:200]!r}"
        )
    return response


def chat_one(
    backend: ChatBackend,
    messages: Sequence[Message],
    params: GenerationParams | None,
    json_schema: Mapping[str, Any] | None,
) -> ChatResponse:
    """`ChatBackend.chat` in terms of `chat_batch`: one request, raising if its structured
    answer never matched the schema."""
    request = ChatRequest(messages, params or GenerationParams(), json_schema)
    return require_valid(backend.chat_batch([request])[0])


@dataclass(frozen=True)
class Completion:
    """One raw answer from a model, before any structured-output handling."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: FinishReason


class BaseChatBackend(ABC):
    """A `ChatBackend` built on one method, `_complete`.

    Args:
        structured_retries: How many times an answer that does not match its JSON schema is sent
            back to the model with the problem, before the request is given up as failed.
    """

    #: Whether `_complete` enforces `ChatRequest.json_schema` itself (e.g. OpenAI's
    #: `response_format`); if not, the schema is added to the prompt as an instruction.
    native_json_schema: ClassVar[bool] = False

    def __init__(self, *, structured_retries: int = 2) -> None:
        self.structured_retries = structured_retries
        self._stats = BackendStats()

    @property
    @abstractmethod
    def model_name(self) -> str:
        """The model's name, as reported in responses."""

    @property
    @abstractmethod
    def fingerprint(self) -> str:
        """Identifies the model and its weights or endpoint, for response cache keys."""

    @property
    def stats(self) -> BackendStats:
        """Requests, model calls and token usage so far."""
        return self._stats

    @abstractmethod
    def _complete(self, requests: Sequence[ChatRequest], *, progress: bool) -> list[Completion]:
        """Generate one raw answer per request, in order."""

    def chat(
        self,
        messages: Sequence[Message],
        *,
        params: GenerationParams | None = None,
        json_schema: Mapping[str, Any] | None = None,
    ) -> ChatResponse:
        """Answer one chat; see `ChatBackend.chat`."""
        return chat_one(self, messages, params, json_schema)

    def chat_batch(
        self, requests: Sequence[ChatRequest], *, progress: bool = False
    ) -> list[ChatResponse]:
        """Answer many chats, in order; see `ChatBackend.chat_batch`."""
        prompts = [self._first_prompt(request) for request in requests]
        usage = [TokenUsage() for _ in requests]
        results: list[ChatResponse | None] = [None] * len(requests)
        pending = list(range(len(requests)))
        attempt = 0
        while pending:
            batch = [
                ChatRequest(
                    prompts[i],
                    requests[i].params,
                    requests[i].json_schema if self.native_json_schema else None,
                )
                for i in pending
            ]
            completions = self._complete(batch, progress=progress and attempt == 0)
            self._stats.model_calls += len(batch)
            retry = []
            for i, completion in zip(pending, completions, strict=True):
                usage[i] += TokenUsage(completion.prompt_tokens, completion.completion_tokens)
                parsed, error = self._parse(requests[i], completion.text)
                if error is not None and attempt < self.structured_retries:
                    prompts[i] = with_repair_turn(prompts[i], completion.text, error)
                    retry.append(i)
                    continue
                results[i] = ChatResponse(
                    text=completion.text,
                    model=self.model_name,
                    usage=usage[i],
                    finish_reason=completion.finish_reason,
                    parsed=parsed,
                    error=error,
                )
            pending = retry
            attempt += 1
        self._stats.requests += len(requests)
        for used in usage:
            self._stats.usage += used
        return [result for result in results if result is not None]

    def _first_prompt(self, request: ChatRequest) -> list[Message]:
        if request.json_schema is None or self.native_json_schema:
            return list(request.messages)
        return with_schema_instruction(request.messages, request.json_schema)

    @staticmethod
    def _parse(request: ChatRequest, text: str) -> tuple[Any, str | None]:
        if request.json_schema is None:
            return None, None
        return parse_structured(text, request.json_schema)
