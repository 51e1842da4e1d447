"""The `ChatBackend` protocol: chat messages in, text out — and the types around it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypedDict, runtime_checkable

Role = Literal["system", "user", "assistant"]
FinishReason = Literal["stop", "length"]


class Message(TypedDict):
    """One chat message, as in OpenAI's and Hugging Face's chat formats."""

    role: Role
    content: str


@dataclass(frozen=True)
class GenerationParams:
    """How to decode.

    Attributes:
        max_tokens: The most tokens to generate.
        temperature: 0 decodes greedily; above 0 samples.
        top_p: Nucleus sampling mass (sampling only).
        stop: Strings that end the answer; the answer excludes them.
        seed: Seed for sampling, for repeatable samples.
    """

    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {self.max_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be 0 or more, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")


@dataclass(frozen=True)
class ChatRequest:
    """One chat to answer.

    Attributes:
        messages: The conversation so far; the model writes the next assistant turn.
        params: Decoding parameters.
        json_schema: If given, the answer must be a JSON value matching this JSON schema; the
            parsed value is returned in `ChatResponse.parsed`.
    """

    messages: Sequence[Message]
    params: GenerationParams = field(default_factory=GenerationParams)
    json_schema: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class TokenUsage:
    """Tokens read and written by a model."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )


@dataclass(frozen=True)
class ChatResponse:
    """A model's answer to one `ChatRequest`.

    Attributes:
        text: The answer text (for structured requests, the JSON text).
        model: The model that answered.
        usage: Tokens used, repair attempts included.
        finish_reason: ``"stop"`` (natural end or stop string) or ``"length"`` (max tokens).
        parsed: For structured requests, the parsed JSON value; else None.
        error: For structured requests whose answer never matched the schema, why; else None.
        cached: Whether the answer came from a response cache instead of the model.
    """

    text: str
    model: str
    usage: TokenUsage = field(default_factory=TokenUsage)
    finish_reason: FinishReason = "stop"
    parsed: Any = None
    error: str | None = None
    cached: bool = False


@dataclass
class BackendStats:
    """What a backend has done so far.

    Attributes:
        requests: Requests answered (a batch of n counts n).
        model_calls: Completions the model generated, repair attempts included.
        usage: Tokens used in all of them.
    """

    requests: int = 0
    model_calls: int = 0
    usage: TokenUsage = field(default_factory=TokenUsage)


@runtime_checkable
class ChatBackend(Protocol):
    """A language model that answers chats: the one interface every ragtune stage uses."""

    @property
    def model_name(self) -> str:
        """The model's name, as reported in responses."""
        ...

    @property
    def fingerprint(self) -> str:
        """Identifies the model and its weights or endpoint, for response cache keys."""
        ...

    @property
    def stats(self) -> BackendStats:
        """Requests, model calls and token usage so far."""
        ...

    def chat(
        self,
        messages: Sequence[Message],
        *,
        params: GenerationParams | None = None,
        json_schema: Mapping[str, Any] | None = None,
    ) -> ChatResponse:
        """Answer one chat.

        Raises:
            StructuredOutputError: `json_schema` was given and no answer matched it.
            BackendError: the model could not answer.
        """
        ...

    def chat_batch(
        self, requests: Sequence[ChatRequest], *, progress: bool = False
    ) -> list[ChatResponse]:
        """Answer many chats, in order. A structured answer that never matched its schema is
        returned with `error` set rather than raised, so one bad answer does not lose the rest."""
        ...
