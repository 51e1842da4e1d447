"""Where the RAG baseline keeps its vectors: one small interface over three Qdrant stores.

- ``qdrant-edge`` (default): the real Qdrant engine (Rust, HNSW) in-process, in a folder.
- ``qdrant-local``: qdrant-client's local mode in a folder — a pure-Python exact search, what
  `langchain-qdrant` and `llama-index-vector-stores-qdrant` accept without a server.
- a server (or cluster) by URL (``--qdrant-url``): the ordinary qdrant-client.

Vectors are compared by cosine similarity. Each point carries its text unit id as payload, and
its point id is derived from that unit id (`point_id`), so a unit's point can be found, replaced
and deleted without reading the store: the index follows the workspace's units in place.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ragtune.errors import RagtuneError

#: The store kinds, in the order the bench prefers them.
STORE_KINDS = ("qdrant-edge", "qdrant-local", "qdrant-server")

#: The namespace of the point ids (`point_id`); changing it changes every id.
_POINT_NAMESPACE = uuid.UUID("6f3c1d2e-5b8a-4e47-9a0c-2d7e4b1f9c35")

#: Points written, deleted or read in one request (a server refuses requests past 32 MiB).
_BATCH = 256


def point_id(unit_id: str) -> str:
    """The id of the point of the text unit `unit_id` in every store: a name-based UUID (UUIDv5)
    of the unit id, as a string (both Qdrant engines accept UUID strings as point ids)."""
    return str(uuid.uuid5(_POINT_NAMESPACE, unit_id))


@dataclass(frozen=True)
class Hit:
    """A stored point close to a query: its text unit id and cosine similarity."""

    unit_id: str
    score: float


class VectorStore(Protocol):
    """What the RAG baseline needs of a vector store."""

    kind: str

    def add(self, vectors: Sequence[Sequence[float]], unit_ids: Sequence[str]) -> None:
        """Store `vectors`, point i carrying `unit_ids[i]` under the id `point_id(unit_ids[i])`
        (a unit already stored has its point replaced)."""

    def delete(self, unit_ids: Sequence[str]) -> None:
        """Delete the points of `unit_ids` (ids not stored are ignored)."""

    def unit_ids(self) -> set[str]:
        """The unit ids of every stored point."""

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
        pairs = list(zip(vectors, unit_ids, strict=True))
        for batch in _batches(pairs):
            points = [
                edge.Point(point_id(unit_id), list(vector), {"unit_id": unit_id})
                for vector, unit_id in batch
            ]
            self._shard.update(edge.UpdateOperation.upsert_points(points))
        self._shard.flush()

    def delete(self, unit_ids: Sequence[str]) -> None:
        edge = self._edge
        for batch in _batches(list(unit_ids)):
            self._shard.update(edge.UpdateOperation.delete_points([point_id(u) for u in batch]))
        self._shard.flush()

    def unit_ids(self) -> set[str]:
        edge = self._edge
        found: set[str] = set()
        offset: Any = None
        while True:
            request = edge.ScrollRequest(
                offset=offset, limit=_BATCH, with_payload=["unit_id"], with_vector=False
            )
            records, offset = self._shard.scroll(request)
            found.update(_hit(record.payload, 0.0).unit_id for record in records)
            if offset is None:
                return found

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
        models = self._models
        for batch in _batches(list(zip(vectors, unit_ids, strict=True))):
            points = [
                models.PointStruct(id=point_id(uid), vector=list(vector), payload={"unit_id": uid})
                for vector, uid in batch
            ]
            self._client.upsert(self.collection, points=points, wait=True)

    def delete(self, unit_ids: Sequence[str]) -> None:
        for batch in _batches(list(unit_ids)):
            selector = self._models.PointIdsList(points=[point_id(uid) for uid in batch])
            self._client.delete(self.collection, points_selector=selector, wait=True)

    def unit_ids(self) -> set[str]:
        found: set[str] = set()
        offset: Any = None
        while True:
            records, offset = self._client.scroll(
                self.collection,
                limit=_BATCH,
                offset=offset,
                with_payload=["unit_id"],
                with_vectors=False,
            )
            found.update(_hit(record.payload, 0.0).unit_id for record in records)
            if offset is None:
                return found

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


def _batches(items: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(items), _BATCH):
        yield items[start : start + _BATCH]


def _has_segments(folder: Path) -> bool:
    return (folder / "segments").is_dir() and any((folder / "segments").iterdir())


def _hit(payload: Any, score: float) -> Hit:
    unit_id = (payload or {}).get("unit_id")
    if not isinstance(unit_id, str):
        raise RagtuneError("a stored point has no unit_id payload; rebuild the RAG index")
    return Hit(unit_id, float(score))
