"""The RAG baseline's index: the workspace's text units embedded and stored in Qdrant.

The index lives in ``WORKSPACE/baselines/<store kind>/`` (a server keeps it in a collection
named after the units) with an ``index.json`` naming the units' hash, the embedding model and the
point count. It is built once and reused while those match; otherwise it is rebuilt in a new
folder that replaces the old one only when complete.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ragtune.baselines.embedding import DEFAULT_EMBEDDING_MODEL, Embedder
from ragtune.baselines.stores import VectorStore, open_store
from ragtune.corpus.tables import read_text_units
from ragtune.corpus.types import TextUnit
from ragtune.errors import RagtuneError
from ragtune.fileio import atomic_directory, atomic_write_text, disk_usage
from ragtune.hashing import content_hash
from ragtune.workspace import Workspace

_STATE_FILE = "index.json"


@dataclass(frozen=True)
class Retrieved:
    """A text unit the RAG index returned for a question, with its cosine similarity."""

    unit: TextUnit
    score: float


class UnitIndex:
    """Text units searchable by meaning, in a Qdrant store.

    Build it with `UnitIndex.open`.

    Args:
        store: The open store holding one point per unit.
        units: The units, by id.
        embedder: The model that embedded them (and embeds questions).
        folder: Where the store lives on disk (None on a server).
    """

    def __init__(
        self,
        store: VectorStore,
        units: dict[str, TextUnit],
        embedder: Embedder,
        folder: Path | None,
    ) -> None:
        self.store = store
        self.units = units
        self.embedder = embedder
        self.folder = folder

    @classmethod
    def open(
        cls,
        workspace: Workspace,
        *,
        store: str = "qdrant-edge",
        url: str | None = None,
        embedding_model: str = DEFAULT_EMBEDDING_MODEL,
        progress: bool = False,
    ) -> UnitIndex:
        """The index of `workspace`'s text units in a store of kind `store`, built if missing
        or stale.

        Raises:
            RagtuneError: the workspace has no text units, or the store cannot be opened.
        """
        if not workspace.text_units_path.is_file():
            raise RagtuneError("has no text units; run `ragtune index` first", path=workspace.root)
        units = read_text_units(workspace.text_units_path)
        if not units:
            raise RagtuneError("has no text units to retrieve", path=workspace.text_units_path)
        embedder = Embedder(embedding_model)
        state = {
            "units": content_hash(*(unit.id for unit in units)),
            "embedding_model": embedder.name,
            "points": len(units),
        }
        by_id = {unit.id: unit for unit in units}
        if store == "qdrant-server":
            return cls(_server_store(units, embedder, state, url), by_id, embedder, None)
        folder = workspace.root / "baselines" / store
        if _read_state(folder) != state:
            with atomic_directory(folder, replace=True) as building:
                opened = open_store(store, folder=building / "store", dimension=embedder.dimension)
                try:
                    _fill(opened, units, embedder, progress)
                finally:
                    opened.close()
                atomic_write_text(building / _STATE_FILE, json.dumps(state, indent=2) + "\n")
        opened = open_store(store, folder=folder / "store", dimension=embedder.dimension)
        return cls(opened, by_id, embedder, folder)

    def search(self, question: str, k: int = 5) -> list[Retrieved]:
        """The `k` units closest in meaning to `question`, best first."""
        vector = self.embedder.embed([question])[0]
        return [
            Retrieved(self.units[hit.unit_id], hit.score) for hit in self.store.search(vector, k)
        ]

    def size_bytes(self) -> int:
        """The store's files on disk (0 on a server)."""
        return 0 if self.folder is None else disk_usage(self.folder)

    def close(self) -> None:
        """Release the store."""
        self.store.close()


def _fill(
    store: VectorStore, units: Sequence[TextUnit], embedder: Embedder, progress: bool
) -> None:
    vectors = embedder.embed([unit.text for unit in units], progress=progress)
    store.add(vectors, [unit.id for unit in units])


def _read_state(folder: Path) -> dict[str, object] | None:
    try:
        state = json.loads((folder / _STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _server_store(
    units: Sequence[TextUnit], embedder: Embedder, state: dict[str, object], url: str | None
) -> VectorStore:
    """The units' collection on a Qdrant server, named after the units and the embedding
    model (so another memory never shares it), filled when empty or incomplete."""
    from ragtune.baselines.stores import ClientStore

    collection = "ragtune-" + content_hash(str(state["units"]), embedder.name, length=12)
    store = open_store(
        "qdrant-server", folder=Path(), dimension=embedder.dimension, url=url, collection=collection
    )
    if store.count() != len(units):
        if isinstance(store, ClientStore):
            store.drop()
        store.close()
        store = open_store(
            "qdrant-server",
            folder=Path(),
            dimension=embedder.dimension,
            url=url,
            collection=collection,
        )
        _fill(store, units, embedder, progress=False)
    return store
