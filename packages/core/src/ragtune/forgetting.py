"""`forget`: remove documents from a memory for real — from its tables, index, training data,
caches, RAG index and adapter weights — and check that their text is gone.

The steps, each committed like the stage it redoes (`ragtune.stages`):

1. ingest tables: the documents and their text units are removed; `forgotten.json` records the
   documents' ids and sources (never their text), so ingesting the corpus again leaves them out;
2. index: entities and relationships are merged again from the remaining units' saved
   extractions (mentions that came only from the removed units disappear, descriptions drawn
   from them too), communities and reports follow;
3. synthesis: the records whose sources include a removed unit are retired (`ragtune.synth
   .increments`);
4. caches: teacher responses that mention the removed text are deleted (and the file
   compacted); distillation targets are dropped;
5. the RAG baselines' Qdrant stores drop the removed units' points;
6. adapter: the newest version in the current one's lineage whose weights never saw a removed
   unit (`trained.json`) is continued on the records added after it (`train --update`), or,
   when every version saw them, a new one is trained from the base model; then every version
   that saw them is deleted. The weights that answer afterwards were never trained on the
   removed text — exact forgetting, not an approximation;
7. a scan of every file left in the workspace for the removed text.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragtune.errors import RagtuneError
from ragtune.fileio import atomic_write_text
from ragtune.ingestion import read_forgotten
from ragtune.stages import stage
from ragtune.workspace import Workspace

if TYPE_CHECKING:
    from ragtune.config import MemoryConfig
    from ragtune.corpus.types import Document

#: Lines of removed text shorter than this are not searched for (they are common words).
_SHORTEST_MENTION = 24
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass
class ForgetReport:
    """What `forget` removed.

    Attributes:
        documents: The removed documents' ids.
        text_units: Text units removed.
        records_retired: Training records retired.
        entities: Entities before and after, as ``(before, after)``.
        cache_responses: Teacher responses deleted from the cache.
        rag: One line per RAG store synced.
        adapter: What happened to the adapter, in words.
        adapter_version: The version answering now (None without an adapter).
        removed_versions: Adapter versions deleted (their weights saw the documents).
        teacher_calls: Teacher calls the redone steps made.
        leftovers: Files in which the removed text was still found (empty when all is gone).
        seconds: Wall time.
        train_seconds: The part of it spent training.
    """

    documents: list[str]
    text_units: int = 0
    records_retired: int = 0
    entities: tuple[int, int] = (0, 0)
    cache_responses: int = 0
    rag: list[str] = field(default_factory=list)
    adapter: str = "no adapter"
    adapter_version: int | None = None
    removed_versions: list[int] = field(default_factory=list)
    teacher_calls: int = 0
    leftovers: list[str] = field(default_factory=list)
    seconds: float = 0.0
    train_seconds: float = 0.0

    def summary_lines(self) -> list[str]:
        """What `ragtune forget` prints."""
        lines = [
            f"forgot {len(self.documents)} documents: {self.text_units} text units, "
            f"{self.records_retired} training records retired, entities "
            f"{self.entities[0]} → {self.entities[1]}, {self.cache_responses} cached teacher "
            f"responses deleted; teacher calls {self.teacher_calls}; {self.seconds:.1f} s",
            f"adapter: {self.adapter}",
            *self.rag,
        ]
        if self.removed_versions:
            removed = ", ".join(f"v{n}" for n in self.removed_versions)
            lines.append(f"deleted adapter versions that saw them: {removed}")
        if self.leftovers:
            lines.append("the removed text is still in: " + ", ".join(self.leftovers))
        else:
            lines.append("checked: no file of the workspace holds the removed text")
        return lines


def forget(
    workspace: Workspace,
    config: MemoryConfig,
    *,
    documents: Sequence[str] = (),
    sources: Sequence[str] = (),
    retrain: bool = True,
    progress: bool = True,
) -> ForgetReport:
    """Remove the documents with ids `documents` and those whose source is one of `sources`
    (a file of the corpus: every document read from it) from `workspace` (see the module's
    docstring for the steps).

    Args:
        workspace: The memory's workspace.
        config: Its settings (memory.yaml with overrides).
        documents: Document ids (``doc-…``, as in documents.parquet).
        sources: Sources as documents.parquet names them (``notes/trip.md``,
            ``locomo.json#conv-30/session_3``); a file's name selects every document in it.
        retrain: Bring the adapter up to date (False: leave that to `ragtune train`; the
            versions that saw the documents are deleted only by a retraining).
        progress: Whether to show progress bars.

    Raises:
        RagtuneError: no document is named, or one names no document of the workspace.
    """
    from ragtune.corpus.tables import read_documents, read_text_units

    started = time.perf_counter()
    if not documents and not sources:
        raise RagtuneError("name the documents to forget (--document ID or --source PATH)")
    if not workspace.documents_path.is_file():
        raise RagtuneError("has no documents; nothing to forget", path=workspace.root)
    every = read_documents(workspace.documents_path)
    doomed = _select(every, documents, sources, workspace)
    units = read_text_units(workspace.text_units_path)
    removed_units = [unit for unit in units if unit.document_id in doomed]
    report = ForgetReport(sorted(doomed), text_units=len(removed_units))
    mentions = _mentions(
        [d for d in every if d.id in doomed], [d for d in every if d.id not in doomed]
    )
    mentions += [unit.id for unit in removed_units] + sorted(doomed)

    _remove_documents(workspace, every, units, doomed)
    teacher_calls = _redo_index_and_synthesis(workspace, config, report, progress)
    report.teacher_calls = teacher_calls
    report.cache_responses = _purge_caches(workspace, mentions)
    from ragtune.baselines.retrieval import sync_unit_indexes

    report.rag = sync_unit_indexes(workspace)
    if retrain:
        began = time.perf_counter()
        _retrain(workspace, config, {unit.id for unit in removed_units}, report, progress)
        report.train_seconds = time.perf_counter() - began
    report.leftovers = find_mentions(workspace, mentions)
    report.seconds = time.perf_counter() - started
    return report


def _select(
    every: Sequence[Document], ids: Sequence[str], sources: Sequence[str], workspace: Workspace
) -> set[str]:
    by_id = {d.id: d for d in every}
    chosen = set()
    for wanted in ids:
        if wanted not in by_id:
            raise RagtuneError(
                f"has no document {wanted!r} (ids are in documents.parquet, column id)",
                path=workspace.documents_path,
            )
        chosen.add(wanted)
    for source in sources:
        found = {d.id for d in every if _same_source(d.source, source)}
        if not found:
            raise RagtuneError(
                f"has no document from {source!r} (sources are in documents.parquet, column "
                "source)",
                path=workspace.documents_path,
            )
        chosen |= found
    return chosen


def _same_source(have: str, wanted: str) -> bool:
    """Whether the source `have` is `wanted` or a part of it (``file.json#conv/session_3`` is
    part of ``file.json`` and of ``file.json#conv``)."""
    wanted = wanted.rstrip("/")
    return have == wanted or have.startswith(wanted + "#") or have.startswith(wanted + "/")


def _mentions(documents: Sequence[Document], others: Sequence[Document]) -> list[str]:
    """What identifies the documents' text: each of their lines and sentences long enough not
    to be common, and found in no other document."""
    found = set()
    for document in documents:
        for line in document.text.splitlines():
            for piece in [line, *_SENTENCE_END.split(line)]:
                piece = piece.strip()
                if len(piece) >= _SHORTEST_MENTION:
                    found.add(piece)
    kept = "\n".join(d.text for d in others)
    return sorted(text for text in found if text not in kept)


def _remove_documents(
    workspace: Workspace, every: Sequence[Document], units: Sequence[Any], doomed: set[str]
) -> None:
    """Rewrite the ingest tables without the documents, recording them in `forgotten.json`."""
    from ragtune.corpus.tables import write_documents, write_text_units

    kept_units = [unit for unit in units if unit.document_id not in doomed]
    with stage(workspace, "ingest"):
        write_text_units(workspace.text_units_path, kept_units)
        write_documents(
            workspace.documents_path, [d for d in every if d.id not in doomed], kept_units
        )
        record = read_forgotten(workspace)
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        for document in every:
            if document.id in doomed:
                record[document.id] = {"source": document.source, "forgotten": now}
        atomic_write_text(
            workspace.forgotten_path, json.dumps(record, indent=2, sort_keys=True) + "\n"
        )


def _redo_index_and_synthesis(
    workspace: Workspace, config: MemoryConfig, report: ForgetReport, progress: bool
) -> int:
    """Merge the index again from the remaining units, then synthesize (retiring records);
    returns the teacher calls they made."""
    from ragtune.index.pipeline import build_index
    from ragtune.index.tables import read_index
    from ragtune.synth.pipeline import synthesize

    calls = 0
    if workspace.entities_path.is_file():
        before = len(read_index(workspace).entities)
        indexed = build_index(workspace, config, progress=progress)
        report.entities = (before, indexed.entities)
        calls += indexed.teacher_calls
    if workspace.train_path.is_file():
        card = synthesize(workspace, config, progress=progress)
        report.records_retired = card.changes.get("retired", 0)
        calls += int(card.teacher.get("calls", 0))
    return calls


def _purge_caches(workspace: Workspace, mentions: Sequence[str]) -> int:
    """Delete cached teacher responses mentioning the removed text and the distillation
    targets (computed from the removed passages too); returns the responses deleted."""
    from ragtune.llm.cache import purge_responses

    deleted = purge_responses(workspace.llm_cache_path, mentions)
    cache = workspace.root / "cache"
    if cache.is_dir():
        for targets in cache.glob("distill-*.safetensors"):
            targets.unlink()
    return deleted


def _retrain(
    workspace: Workspace,
    config: MemoryConfig,
    removed: set[str],
    report: ForgetReport,
    progress: bool,
) -> None:
    """Make the adapter one whose weights never saw the `removed` units (see the module's
    docstring), then delete every version that did."""
    from ragtune.adapters import AdapterVersions, Trained
    from ragtune.train.trainer import check_training_data, train_adapter

    versions = AdapterVersions(workspace, config.train.adapter)
    current = versions.current()
    if current is None:
        return
    partial = workspace.adapters_dir / f".{config.train.adapter}.partial"
    shutil.rmtree(partial, ignore_errors=True)  # checkpoints of a run that saw them

    def saw(number: int) -> bool:
        trained = Trained.read(versions.path_of(number))
        return trained is None or bool(trained.units & removed)

    clean = next((v for v in versions.lineage(current) if not saw(v.number)), None)
    if clean is not None and clean.number == current:
        report.adapter = f"v{current} never saw them; kept"
    elif not check_training_data(workspace.train_path):
        report.adapter = "no training records are left; the adapter was not retrained"
        return
    else:
        with stage(workspace, "train"):
            if clean is not None:
                try:
                    trained = train_adapter(
                        workspace, config, update=True, parent=clean.number, progress=progress
                    )
                except RagtuneError as error:
                    if "nothing new to train" not in str(error):
                        raise
                    versions.use(clean.number)
                    report.adapter = (
                        f"v{clean.number} (which never saw them) answers again; nothing was "
                        "added after it"
                    )
                else:
                    report.adapter = (
                        f"v{trained.version}: v{clean.number} (which never saw them) updated "
                        f"with the {trained.new_records} records added after it "
                        f"({trained.replayed_records} replayed) in {trained.seconds:.0f} s"
                    )
            else:
                trained = train_adapter(workspace, config, progress=progress)
                report.adapter = (
                    f"v{trained.version}: trained again from the base model (every version "
                    f"saw them) in {trained.seconds:.0f} s"
                )
    report.removed_versions = versions.remove(n for n in versions.numbers() if saw(n))
    report.adapter_version = versions.current()


def find_mentions(workspace: Workspace, mentions: Sequence[str]) -> list[str]:
    """The files under `workspace` (caches and adapters included) whose bytes contain one of
    `mentions` (UTF-8, and as JSON escapes it), relative to the workspace."""
    needles = set()
    for mention in mentions:
        if len(mention) >= _SHORTEST_MENTION:
            needles.add(mention.encode("utf-8"))
            needles.add(json.dumps(mention)[1:-1].encode("utf-8"))
            needles.add(json.dumps(mention, ensure_ascii=False)[1:-1].encode("utf-8"))
    found = []
    for path in sorted(workspace.root.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        data = path.read_bytes()
        if path.suffix == ".parquet":  # compressed: search its decoded rows
            data += _parquet_text(path)
        if any(needle in data for needle in needles):
            found.append(path.relative_to(workspace.root).as_posix())
    return found


def _parquet_text(path: Path) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(path).to_pylist()
    except (pa.ArrowException, OSError):
        return b""
    return "\n".join(json.dumps(row, ensure_ascii=False, default=str) for row in rows).encode()
