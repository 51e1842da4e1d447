"""The chunking tokenizer: a local model's tokenizer, giving character spans of tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ragtune.errors import ConfigError, ModelNotAvailableError
from ragtune.llm.specs import ModelSpec, local_model_source


class ModelTokenizer:
    """A Hugging Face fast tokenizer as a `ragtune.corpus.SpanTokenizer`.

    Args:
        tokenizer: A `tokenizers.Tokenizer`, or a `PreTrainedTokenizerFast` wrapping one.
    """

    def __init__(self, tokenizer: Any) -> None:
        backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
        if not hasattr(backend, "encode_batch"):
            raise ConfigError("chunking needs a fast (Rust) tokenizer; this model has a slow one")
        self._backend = backend

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """The `(start, end)` character offsets of each token of `text`."""
        spans: list[tuple[int, int]] = self._backend.encode(text, add_special_tokens=False).offsets
        return spans

    def count_tokens(self, texts: list[str]) -> list[int]:
        """How many tokens each of `texts` has."""
        encodings = self._backend.encode_batch(texts, add_special_tokens=False)
        return [len(encoding.ids) for encoding in encodings]


def load_tokenizer(spec: str) -> ModelTokenizer:
    """The tokenizer of the local model named by `spec` (``embedded`` or ``hf:...``).

    Raises:
        ConfigError: `spec` is malformed or names a remote endpoint.
        ModelNotAvailableError: the model's tokenizer cannot be found.
    """
    source = local_model_source(ModelSpec.parse(spec))
    tokenizer_file = Path(source) / "tokenizer.json"
    if tokenizer_file.is_file():
        # The Rust tokenizer alone: the same tokens, without importing transformers and torch.
        from tokenizers import Tokenizer

        return ModelTokenizer(Tokenizer.from_file(str(tokenizer_file)))
    from transformers import AutoTokenizer

    try:
        return ModelTokenizer(AutoTokenizer.from_pretrained(source))
    except (OSError, ValueError):  # transformers 5 raises ValueError for empty folders
        raise ModelNotAvailableError(
            f"cannot load the tokenizer of {spec!r}: no such local folder, and it is not in the "
            "Hugging Face cache"
        ) from None
