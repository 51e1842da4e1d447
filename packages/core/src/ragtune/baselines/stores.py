"""Where the RAG baseline keeps its vectors: one small interface over three Qdrant stores.

- ``qdrant-edge`` (default): the real Qdrant engine (Rust, HNSW) in-process, in a folder.
- ``qdrant-local``: qdrant-client's local mode in a folder — a pure-Python exact search, what
  `langchain-qdrant` and `llama-index-vector-stores-qdrant` accept without a server.
- a server (or cluster) by URL (``--qdrant-url``): the ordinary qdrant-client.

Vectors are compared by cosine similarity. Each point carries its text unit id as payload.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ragtune.errors import RagtuneError

#: The store kinds, in the order the bench prefers them.
STORE_KINDS = ("qdrant-edge", "qdrant-local", "qdrant-server")


@dataclass(frozen=True)
class Hit:
    """A stored point close to a query: its text unit id and cosine similarity."""

    unit_id: str
    score: float


class VectorStore(Protocol):
    """What the RAG baseline needs of a vector store."""

    kind: str

    def add(self, vectors: Sequence[Sequence[float]], unit_ids: Sequence[str]) -> None:
        """Store `vectors`, point i carrying `unit_ids[i]` (ids 0, 1, ... in order)."""

    def search(self, vector: Sequence[float], k: int) -> list[Hit]:
        """The `k` stored points most similar to `vector`, best first."""

    def count(self) -> int:
        """How many points are stored."""

    def close(self) -> None:
        """Release the store (files stay)."""


class EdgeStore:
    """The Qdrant engine in-process (`qdrant-edge-py`), its shard in `folder`.

    Args:
        folder: The shard folder; created with `dimension` if it holds no shard yet.
        dimension: The vector length (for a new shard).
    """

    kind = "qdrant-edge"

    def __init__(self, folder: Path, dimension: int) -> None:
        import qdrant_edge as edge

        self._edge = edge
        if (folder / "edge_config.json").exists() or _has_segments(folder):
            self._shard = edge.EdgeShard.load(str(folder))
        else:
            config = edge.EdgeConfig(
                vectors=edge.EdgeVectorParams(size=dimension, distance=edge.Distance.Cosine)
            )
            self._shard = edge.EdgeShard.create(str(folder), config)

    def add(self, vectors: Sequence[Sequence[float]], unit_ids: Sequence[str]) -> None:
        edge = self._edge
        start = self.count()
        points = [
            edge.Point(start + i, list(vector), {"unit_id": unit_id})
            for i, (vector, unit_id) in enumerate(zip(vectors, unit_ids, strict=True))
        ]
        self._shard.update(edge.UpdateOperation.upsert_points(points))
        self._shard.flush()

    def search(self, vector: Sequence[float], k: int) -> list[Hit]:
        edge = self._edge
        request = edge.QueryRequest(
            limit=k, query=edge.Query.Nearest(list(vector)), with_payload=True
        )
        return [_hit(point.payload, point.score) for point in self._shard.query(request)]

    def count(self) -> int:
        return int(self._shard.info().points_count)

    def close(self) -> None:
        self._shard.close()


class ClientStore:
    """A qdrant-client collection: local mode in a folder, or on a server.

    Args:
        client: A `qdrant_client.QdrantClient`.
        collection: The collection name; created with `dimension` if missing.
        dimension: The vector length (for a new collection).
        kind: ``qdrant-local`` or ``qdrant-server`` (for reports).
    """

    def __init__(self, client: Any, collection: str, dimension: int, kind: str) -> None:
        from qdrant_client import models

        self._client = client
        self._models = models
        self.collection = collection
        self.kind = kind
        if not client.collection_exists(collection):
            client.create_collection(
                collection,
                vectors_config=models.VectorParams(size=dimension, distance=models.Distance.COSINE),
            )

    def add(self, vectors: Sequence[Sequence[float]], unit_ids: Sequence[str]) -> None:
        start = self.count()
        points = [
            self._models.PointStruct(id=start + i, vector=list(vector), payload={"unit_id": uid})
            for i, (vector, uid) in enumerate(zip(vectors, unit_ids, strict=True))
        ]
        self._client.upsert(self.collection, points=points, wait=True)

    def search(self, vector: Sequence[float], k: int) -> list[Hit]:
        response = self._client.query_points(
            self.collection, query=list(vector), limit=k, with_payload=True
        )
        return [_hit(point.payload, point.score) for point in response.points]

    def count(self) -> int:
        return int(self._client.count(self.collection, exact=True).count)

    def drop(self) -> None:
        """Delete the collection."""
        self._client.delete_collection(self.collection)

    def close(self) -> None:
        self._client.close()


def open_store(
    kind: str, *, folder: Path, dimension: int, url: str | None = None, collection: str = ""
) -> VectorStore:
    """Open (creating if needed) a store of `kind` in `folder`, or on the server at `url`.

    Raises:
        RagtuneError: `kind` is unknown, or a server store has no `url`.
    """
    if kind == "qdrant-edge":
        folder.mkdir(parents=True, exist_ok=True)
        return EdgeStore(folder, dimension)
    if kind in ("qdrant-local", "qdrant-server"):
        from qdrant_client import QdrantClient

        if kind == "qdrant-server":
            if not url:
                raise RagtuneError("a qdrant-server store needs a URL (--qdrant-url)")
            client = QdrantClient(url=url)
        else:
            folder.mkdir(parents=True, exist_ok=True)
            client = QdrantClient(path=str(folder))
        return ClientStore(client, collection or "ragtune", dimension, kind)
    raise RagtuneError(f"unknown vector store {kind!r}; use one of {', '.join(STORE_KINDS)}")


def _has_segments(folder: Path) -> bool:
    return (folder / "segments").is_dir() and any((folder / "segments").iterdir())


def _hit(payload: Any, score: float) -> Hit:
    unit_id = (payload or {}).get("unit_id")
    if not isinstance(unit_id, str):
        raise RagtuneError("a stored point has no unit_id payload; rebuild the RAG index")
    return Hit(unit_id, float(score))
