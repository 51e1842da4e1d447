"""Language models behind one protocol: `ChatBackend` (chat messages in, text out).

`load_backend(spec)` gives the backend for a model spec: ``embedded`` (the default SmolLM2),
``hf:<repo-or-path>`` or ``openai:<model>@<base_url>``; `CachedChatBackend` adds an on-disk
response cache. Heavy libraries (torch, transformers, httpx) load only when a backend is built.
"""

from ragtune.llm.base import BaseChatBackend, Completion, require_valid
from ragtune.llm.specs import EMBEDDED, ModelSpec, load_backend, local_model_source
from ragtune.llm.types import (
    BackendStats,
    ChatBackend,
    ChatRequest,
    ChatResponse,
    GenerationParams,
    Message,
    TokenUsage,
)

__all__ = [
    "EMBEDDED",
    "BackendStats",
    "BaseChatBackend",
    "ChatBackend",
    "ChatRequest",
    "ChatResponse",
    "Completion",
    "GenerationParams",
    "Message",
    "ModelSpec",
    "TokenUsage",
    "load_backend",
    "local_model_source",
    "require_valid",
]
