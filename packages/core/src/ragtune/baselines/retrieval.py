"""The RAG baseline's index: the workspace's text units embedded and stored in Qdrant.

The index lives in ``WORKSPACE/baselines/<store kind>/``: the store in ``store/`` and an
``index.json`` naming the index format, the embedding model, the vector length, the units' hash
and the point count. Each point's id is derived from its unit id (`stores.point_id`), so the
index follows the workspace's units in place: when they change, `UnitIndex.open` embeds and adds
only the units the store lacks and deletes the points of units that are gone (a memory grows by
ingesting, shrinks by `ragtune forget`, which calls `sync_unit_indexes`).

Before changing a store in place, ``index.json`` is marked ``"syncing"``; a process killed then
leaves that mark, and the next open rebuilds the store from scratch. A store that is missing,
was written with another embedding model or index format (`INDEX_FORMAT`), is marked, or cannot
be opened is rebuilt in a new folder that replaces the old one only when complete.

On a server, the index is a collection named after the workspace's folder and the embedding
model (see `_server_store`), brought in line with the units each time it is opened.
"""

from __future__ import annotations

import json
import logging
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

from ragtune.baselines.embedding import DEFAULT_EMBEDDING_MODEL, Embedder
from ragtune.baselines.stores import VectorStore, open_store
from ragtune.corpus.tables import read_text_units
from ragtune.corpus.types import TextUnit
from ragtune.errors import RagtuneError
from ragtune.fileio import atomic_directory, atomic_write_text, disk_usage
from ragtune.hashing import content_hash
from ragtune.stages import kill_point
from ragtune.workspace import Workspace

logger = logging.getLogger(__name__)

_STATE_FILE = "index.json"

#: The version of the on-disk index. 2: point ids derived from unit ids, so points are deleted
#: and added in place (format 1 numbered points 0, 1, ...). A store of another format is
#: rebuilt once.
INDEX_FORMAT = 2

#: The store kinds kept in the workspace folder (a server's are kept on the server).
LOCAL_STORE_KINDS = ("qdrant-edge", "qdrant-local")


@dataclass(frozen=True)
class Retrieved:
    """A text unit the RAG index returned for a question, with its cosine similarity."""

    unit: TextUnit
    score: float


@dataclass(frozen=True)
class IndexChange:
    """What opening an index did to its store.

    Attributes:
        added: Points embedded and added (every unit's, when rebuilt).
        removed: Points deleted (when rebuilt: the points the replaced store held, as its
            ``index.json`` recorded them; 0 when unknown).
        rebuilt: Whether the store was built from scratch.
        points: The points it holds now.
    """

    added: int = 0
    removed: int = 0
    rebuilt: bool = False
    points: int = 0

    def describe(self, name: str) -> str:
        """A line for a person: what happened to the store `name`."""
        if self.rebuilt:
            return f"{name}: rebuilt, {_points(self.points)} embedded"
        if not self.added and not self.removed:
            return f"{name}: up to date ({_points(self.points)})"
        return f"{name}: {_points(self.added)} added, {self.removed} removed ({self.points} now)"


def _points(count: int) -> str:
    return f"{count} point" if count == 1 else f"{count} points"


class UnitIndex:
    """Text units searchable by meaning, in a Qdrant store.

    Build it with `UnitIndex.open`.

    Args:
        store: The open store holding one point per unit.
        units: The units, by id.
        embedder: The model that embedded them (and embeds questions).
        folder: Where the store lives on disk (None on a server).
        change: What opening the index did to the store.

    Attributes:
        added: Points the last open embedded and added (every unit's when it rebuilt).
        removed: Points the last open deleted.
        rebuilt: Whether the last open built the store from scratch.
    """

    def __init__(
        self,
        store: VectorStore,
        units: dict[str, TextUnit],
        embedder: Embedder,
        folder: Path | None,
        change: IndexChange | None = None,
    ) -> None:
        self.store = store
        self.units = units
        self.embedder = embedder
        self.folder = folder
        self.change = change or IndexChange(points=len(units))
        self.added = self.change.added
        self.removed = self.change.removed
        self.rebuilt = self.change.rebuilt

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
        """The index of `workspace`'s text units in a store of kind `store`: built if missing
        or unusable, else brought in line with the units (only new units are embedded).

        Raises:
            RagtuneError: the workspace has no text units, or the store cannot be opened.
        """
        if not workspace.text_units_path.is_file():
            raise RagtuneError("has no text units; run `ragtune index` first", path=workspace.root)
        units = _units_by_id(read_text_units(workspace.text_units_path))
        if not units:
            raise RagtuneError("has no text units to retrieve", path=workspace.text_units_path)
        embedder = Embedder(embedding_model)
        if store == "qdrant-server":
            opened, change = _server_store(workspace, units, embedder, url, progress)
            return cls(opened, units, embedder, None, change)
        folder = workspace.root / "baselines" / store
        opened, change = _open_local(store, folder, units, embedder, progress)
        return cls(opened, units, embedder, folder, change)

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


def sync_unit_indexes(workspace: Workspace, *, progress: bool = False) -> list[str]:
    """Bring each RAG index already in `workspace` (``baselines/qdrant-edge``,
    ``baselines/qdrant-local``) in line with its current text units, with the embedding model
    it was built with; stores that do not exist are not created. A workspace without text units
    has its stores removed, as has a store that cannot be synced (its embedding model is gone):
    no point of a removed unit is left behind, and the next `UnitIndex.open` rebuilds it.

    A server's collection is not reached from here (its URL is not kept); it is brought in line
    the next time `UnitIndex.open` opens it.

    Returns:
        One line per store for a person, e.g. ``baselines/qdrant-edge: 12 points added, 5
        removed (40 now)``.
    """
    present = [kind for kind in LOCAL_STORE_KINDS if (workspace.root / "baselines" / kind).is_dir()]
    if not present:
        return []
    path = workspace.text_units_path
    units = _units_by_id(read_text_units(path)) if path.is_file() else {}
    lines = []
    for kind in present:
        folder = workspace.root / "baselines" / kind
        name = f"baselines/{kind}"
        if not units:
            _remove(folder)
            lines.append(f"{name}: removed (no text units left)")
            continue
        state = _read_state(folder) or {}
        model = state.get("embedding_model")
        try:
            embedder = Embedder(model if isinstance(model, str) else DEFAULT_EMBEDDING_MODEL)
            opened, change = _open_local(kind, folder, units, embedder, progress)
        except RagtuneError as error:
            _remove(folder)
            lines.append(
                f"{name}: removed, could not be synced ({error}); the next run rebuilds it"
            )
            continue
        opened.close()
        lines.append(change.describe(name))
    return lines


def _units_by_id(units: Sequence[TextUnit]) -> dict[str, TextUnit]:
    return {unit.id: unit for unit in units}


def _units_hash(units: dict[str, TextUnit]) -> str:
    return content_hash(*sorted(units))


def _state(units: dict[str, TextUnit], embedder: Embedder, dimension: int) -> dict[str, Any]:
    return {
        "format": INDEX_FORMAT,
        "embedding_model": embedder.name,
        "dimension": dimension,
        "units": _units_hash(units),
        "points": len(units),
    }


def _usable(state: dict[str, Any] | None, embedder: Embedder) -> TypeGuard[dict[str, Any]]:
    """Whether `state` describes a complete store of this format and embedding model."""
    return (
        state is not None
        and state.get("format") == INDEX_FORMAT
        and state.get("embedding_model") == embedder.name
        and isinstance(state.get("dimension"), int)
        and not state.get("syncing")
    )


def _open_local(
    kind: str, folder: Path, units: dict[str, TextUnit], embedder: Embedder, progress: bool
) -> tuple[VectorStore, IndexChange]:
    """The store of `kind` in `folder` holding `units`: reused, synced or rebuilt."""
    state = _read_state(folder)
    if _usable(state, embedder) and (folder / "store").is_dir():
        if state.get("units") == _units_hash(units) and state.get("points") == len(units):
            reused = _try_open(kind, folder, state["dimension"])
            if reused is not None:
                return reused, IndexChange(points=len(units))
        else:
            synced = _sync_in_place(kind, folder, state, units, embedder, progress)
            if synced is not None:
                return synced
    return _rebuild(kind, folder, state, units, embedder, progress)


def _try_open(kind: str, folder: Path, dimension: int) -> VectorStore | None:
    """The existing store in `folder`, or None when it cannot be opened (another process has
    it, or it is damaged): the caller then rebuilds it."""
    try:
        return open_store(kind, folder=folder / "store", dimension=dimension)
    except Exception as error:  # the engines raise plain Exception/RuntimeError
        logger.warning("cannot open the RAG index in %s (%s); rebuilding it", folder, error)
        return None


def _sync_in_place(
    kind: str,
    folder: Path,
    state: dict[str, Any],
    units: dict[str, TextUnit],
    embedder: Embedder,
    progress: bool,
) -> tuple[VectorStore, IndexChange] | None:
    """Add the missing units' points to the store in `folder` and delete those of units that
    are gone; None (the caller rebuilds) when the store cannot be opened or ends up with the
    wrong number of points. The state is marked ``syncing`` until the store is complete."""
    store = _try_open(kind, folder, state["dimension"])
    if store is None:
        return None
    try:
        atomic_write_text(folder / _STATE_FILE, _json({**state, "syncing": True}))
        added, removed = _apply(store, units, embedder, progress)
        if store.count() != len(units):
            logger.warning("the RAG index in %s has the wrong points; rebuilding it", folder)
            store.close()
            return None
        atomic_write_text(folder / _STATE_FILE, _json(_state(units, embedder, state["dimension"])))
    except BaseException:
        store.close()
        raise
    return store, IndexChange(added, removed, False, len(units))


def _apply(
    store: VectorStore, units: dict[str, TextUnit], embedder: Embedder, progress: bool
) -> tuple[int, int]:
    """Delete the points of units not in `units`, then embed and add those missing.

    Returns:
        How many points were added and deleted.
    """
    held = store.unit_ids()
    gone = sorted(held - units.keys())
    new = [unit for unit_id, unit in units.items() if unit_id not in held]
    if gone:
        store.delete(gone)
    kill_point("rag-index:sync")
    if new:
        _fill(store, new, embedder, progress)
    return len(new), len(gone)


def _rebuild(
    kind: str,
    folder: Path,
    state: dict[str, Any] | None,
    units: dict[str, TextUnit],
    embedder: Embedder,
    progress: bool,
) -> tuple[VectorStore, IndexChange]:
    """Build the store of `units` in a new folder that replaces `folder` when complete."""
    previous = (state or {}).get("points")
    dimension = embedder.dimension
    with atomic_directory(folder, replace=True) as building:
        opened = open_store(kind, folder=building / "store", dimension=dimension)
        try:
            _fill(opened, list(units.values()), embedder, progress)
        finally:
            opened.close()
        atomic_write_text(building / _STATE_FILE, _json(_state(units, embedder, dimension)))
    opened = open_store(kind, folder=folder / "store", dimension=dimension)
    removed = previous if isinstance(previous, int) else 0
    return opened, IndexChange(len(units), removed, True, len(units))


def _fill(
    store: VectorStore, units: Sequence[TextUnit], embedder: Embedder, progress: bool
) -> None:
    vectors = embedder.embed([unit.text for unit in units], progress=progress)
    store.add(vectors, [unit.id for unit in units])


def _json(state: dict[str, Any]) -> str:
    return json.dumps(state, indent=2) + "\n"


def _read_state(folder: Path) -> dict[str, Any] | None:
    try:
        state = json.loads((folder / _STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _remove(folder: Path) -> None:
    """Remove the store folder: renamed aside first, so a kill leaves no half-removed index."""
    aside = folder.with_name(f".{folder.name}.{uuid.uuid4().hex}.removed")
    folder.rename(aside)
    shutil.rmtree(aside, ignore_errors=True)


def _server_store(
    workspace: Workspace,
    units: dict[str, TextUnit],
    embedder: Embedder,
    url: str | None,
    progress: bool,
) -> tuple[VectorStore, IndexChange]:
    """The workspace's collection on a Qdrant server, brought in line with `units`.

    The collection is named after the workspace's resolved folder, the embedding model and
    `INDEX_FORMAT`, so one memory keeps one collection as its units change (it is synced like a
    local store: missing units added, gone ones deleted) and no other memory, model or format
    shares it. Moving the workspace folder starts a new collection; the old one stays on the
    server until deleted there. A server keeps no ``index.json``: the collection is compared
    with the units on each open, which also repairs one left half-synced by a killed process
    (point ids follow from unit ids, and a unit's vector from its text and the model).

    Tested here only up to the URL check (no server is reachable offline); the sync itself is
    the code the ``qdrant-local`` store runs, on the same qdrant-client API.
    """
    collection = "ragtune-" + content_hash(
        str(workspace.root.resolve()), embedder.name, f"format-{INDEX_FORMAT}", length=12
    )
    store = open_store(
        "qdrant-server", folder=Path(), dimension=embedder.dimension, url=url, collection=collection
    )
    try:
        added, removed = _apply(store, units, embedder, progress)
    except BaseException:
        store.close()
        raise
    return store, IndexChange(added, removed, False, len(units))
