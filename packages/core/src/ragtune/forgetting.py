"""`forget`: remove documents from a memory for real — from its tables, index, training data,
caches, RAG index and adapter weights — and check that their text is gone.

The steps, each committed like the stage it redoes (`ragtune.stages`):

1. caches: teacher responses that mention the removed text are deleted (and the file
   compacted); distillation targets are dropped (first: what follows needs only the ids);
2. ingest tables: the documents and their text units are removed; `forgotten.json` records the
   documents' ids, sources and text units (never their text), so ingesting the corpus again
   leaves them out; a JSON Lines corpus that ragtune wrote into the workspace (`ingest_texts`)
   has their lines blanked;
3. index: entities and relationships are merged again from the remaining units' saved
   extractions (mentions that came only from the removed units disappear, descriptions drawn
   from them too), communities and reports follow;
4. synthesis: the records whose sources include a removed unit are retired, and what they
   taught of the remaining units is drawn anew (`ragtune.synth.increments`);
5. the RAG baselines' Qdrant stores drop the removed units' points;
6. adapter: the newest version in the current one's lineage whose weights never saw a removed
   unit (`trained.json`) is continued on the records added after it (`train --update`), or,
   when every version saw them, a new one is trained from the base model; then every version
   that saw them is deleted. The weights that answer afterwards were never trained on the
   removed text — exact forgetting, not an approximation;
7. a scan of every file left in the workspace for the removed text.

A run cut short (killed, or a step failed) is finished by running it again with the same
documents: those already removed are found in `forgotten.json`, and the steps after the removal
are redone (their text is gone by then, so the last scan cannot search for it).
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
from ragtune.ingestion import blank_forgotten_lines, read_forgotten
from ragtune.stages import stage
from ragtune.workspace import Workspace

if TYPE_CHECKING:
    from ragtune.adapters import AdapterVersions
    from ragtune.config import MemoryConfig
    from ragtune.corpus.types import Document, TextUnit

#: Lines of removed text shorter than this are not searched for (they are common words).
_SHORTEST_MENTION = 24
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass
class ForgetReport:
    """What `forget` removed.

    Attributes:
        documents: The removed documents' ids (those an earlier, unfinished run removed too).
        text_units: Text units removed.
        records_retired: Training records retired.
        entities: Entities before and after, as ``(before, after)``.
        cache_responses: Teacher responses deleted from the cache.
        rag: One line per RAG store synced.
        adapter: What happened to the adapter, in words.
        adapter_version: The version answering now (None without an adapter).
        removed_versions: Adapter versions deleted (their weights saw the documents).
        other_adapters: The workspace's other adapters (not `train.adapter`) with versions
            that saw the documents, one line each: left to the user to retrain or delete.
        teacher_calls: Teacher calls the redone steps made.
        leftovers: Files in which the removed text was still found (empty when all is gone).
        checked: Whether the workspace was scanned for the removed text (not when every
            document named was removed by an earlier run: their text is gone).
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
    other_adapters: list[str] = field(default_factory=list)
    teacher_calls: int = 0
    leftovers: list[str] = field(default_factory=list)
    checked: bool = True
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
        lines.extend(self.other_adapters)
        if self.leftovers:
            lines.append("the removed text is still in: " + ", ".join(self.leftovers))
        elif self.checked:
            lines.append("checked: no file of the workspace holds the removed text")
        else:
            lines.append(
                "not checked for their text: an earlier `ragtune forget` removed it already"
            )
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
        retrain: Bring the adapter up to date (False: leave it as it is; forgetting the same
            documents again with `retrain` retrains it and deletes the versions that saw
            them).
        progress: Whether to show progress bars.

    Raises:
        RagtuneError: no document is named, one names no document of the workspace, or
            every document would be removed.
    """
    from ragtune.baselines.retrieval import sync_unit_indexes
    from ragtune.corpus.tables import read_documents, read_text_units

    started = time.perf_counter()
    if not documents and not sources:
        raise RagtuneError("name the documents to forget (--document ID or --source PATH)")
    if not workspace.documents_path.is_file():
        raise RagtuneError("has no documents; nothing to forget", path=workspace.root)
    every = read_documents(workspace.documents_path)
    forgotten = read_forgotten(workspace)
    doomed, finished = _select(every, forgotten, documents, sources, workspace)
    if doomed and len(doomed) == len(every):
        raise RagtuneError(
            f"would have no document left after forgetting all {len(every)}: remove the "
            "workspace folder instead",
            path=workspace.documents_path,
        )
    units = read_text_units(workspace.text_units_path)
    removed_units = [unit for unit in units if unit.document_id in doomed]
    removed = {unit.id for unit in removed_units}
    for earlier in finished:
        removed.update(map(str, forgotten[earlier].get("units", ())))
    report = ForgetReport(sorted(doomed | finished), text_units=len(removed))
    mentions = _mentions(
        [d for d in every if d.id in doomed], [d for d in every if d.id not in doomed]
    )
    mentions += sorted(removed) + sorted(doomed | finished)

    report.cache_responses = _purge_caches(workspace, mentions)
    if doomed:
        _remove_documents(workspace, every, units, doomed)
    _blank_corpus_lines(workspace, config, doomed | finished)
    report.teacher_calls = _redo_index_and_synthesis(workspace, config, report, progress)
    report.rag = sync_unit_indexes(workspace)
    # Every unit ever forgotten: a version that saw one that an earlier `forget --no-retrain`
    # removed must not be the one continued either.
    for entry in read_forgotten(workspace).values():
        removed.update(map(str, entry.get("units", ())))
    if retrain:
        began = time.perf_counter()
        _retrain(workspace, config, removed, report, progress)
        report.train_seconds = time.perf_counter() - began
    else:
        _leave_adapter(workspace, config, removed, report)
    report.other_adapters = _other_adapters(workspace, config.train.adapter, removed)
    report.leftovers = find_mentions(workspace, mentions)
    report.checked = bool(doomed)
    report.seconds = time.perf_counter() - started
    return report


def _select(
    every: Sequence[Document],
    forgotten: dict[str, dict[str, Any]],
    ids: Sequence[str],
    sources: Sequence[str],
    workspace: Workspace,
) -> tuple[set[str], set[str]]:
    """The ids of the documents to remove, and of those named that an earlier run removed
    (in `forgotten.json`)."""
    by_id = {d.id: d for d in every}
    chosen: set[str] = set()
    finished: set[str] = set()
    for wanted in ids:
        if wanted in by_id:
            chosen.add(wanted)
        elif wanted in forgotten:
            finished.add(wanted)
        else:
            raise RagtuneError(
                f"has no document {wanted!r} (ids are in documents.parquet, column id)",
                path=workspace.documents_path,
            )
    for source in sources:
        found = {d.id for d in every if _same_source(d.source, source)}
        earlier = {
            key
            for key, entry in forgotten.items()
            if _same_source(str(entry.get("source", "")), source)
        }
        if not found and not earlier:
            raise RagtuneError(
                f"has no document from {source!r} (sources are in documents.parquet, column "
                "source)",
                path=workspace.documents_path,
            )
        chosen |= found
        finished |= earlier
    return chosen, finished - chosen


def _same_source(have: str, wanted: str) -> bool:
    """Whether the source `have` is `wanted` or a part of it (``file.json#conv/session_3`` is
    part of ``file.json`` and of ``file.json#conv``)."""
    wanted = wanted.rstrip("/")
    return bool(wanted) and (
        have == wanted or have.startswith(wanted + "#") or have.startswith(wanted + "/")
    )


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
    workspace: Workspace, every: Sequence[Document], units: Sequence[TextUnit], doomed: set[str]
) -> None:
    """Rewrite the ingest tables without the documents, recording them (ids, sources and text
    units) in `forgotten.json`."""
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
                record[document.id] = {
                    "source": document.source,
                    "forgotten": now,
                    "units": [unit.id for unit in units if unit.document_id == document.id],
                }
        atomic_write_text(
            workspace.forgotten_path, json.dumps(record, indent=2, sort_keys=True) + "\n"
        )


def _blank_corpus_lines(workspace: Workspace, config: MemoryConfig, ids: set[str]) -> None:
    """Blank the lines of the documents `ids` in the corpus when it is a JSON Lines file that
    ragtune wrote into the workspace (`ragtune.ingestion.ingest_texts`)."""
    if not ids or not config.corpus.path:
        return
    path = Path(config.corpus.path).expanduser().resolve()
    if path.is_relative_to((workspace.root / "corpus").resolve()) and path.suffix == ".jsonl":
        blank_forgotten_lines(path, ids)


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
    docstring), then delete every version that did; with no training record left and no such
    version, the adapter is deleted."""
    from ragtune.adapters import AdapterVersions
    from ragtune.train.trainer import check_training_data, train_adapter

    versions = AdapterVersions(workspace, config.train.adapter)
    if not versions.numbers():
        return
    with stage(workspace, "train"):
        versions.repair(locked=True)  # a switch a killed run cut short: finish it first
        partial = workspace.adapters_dir / f".{config.train.adapter}.partial"
        shutil.rmtree(partial, ignore_errors=True)  # checkpoints of a run that saw them
        saw = {number: _saw(versions, number, removed) for number in versions.numbers()}
        current = versions.current()
        lineage = versions.lineage(current) if current is not None else []
        clean = next((v.number for v in lineage if not saw[v.number]), None)
        if clean is not None and clean == current:
            report.adapter = f"v{current} never saw them; kept"
        elif clean is not None and not _trains_on_more(workspace, versions.path_of(clean)):
            versions.use(clean)
            report.adapter = (
                f"v{clean} (which never saw them) answers again; nothing was added after it"
            )
        elif clean is not None:
            trained = train_adapter(workspace, config, update=True, parent=clean, progress=progress)
            report.adapter = (
                f"v{trained.version}: v{clean} (which never saw them) updated with the "
                f"{trained.new_records} records added after it ({trained.replayed_records} "
                f"replayed) in {trained.seconds:.0f} s"
            )
        elif check_training_data(workspace.train_path):
            trained = train_adapter(workspace, config, progress=progress)
            report.adapter = (
                f"v{trained.version}: trained again from the base model (every version saw "
                f"them) in {trained.seconds:.0f} s"
            )
        else:
            report.removed_versions = _delete_adapter(versions)
            report.adapter = (
                "deleted: every version saw them and no training records are left to train another"
            )
            return
        report.removed_versions = versions.remove(n for n, seen in saw.items() if seen)
        report.adapter_version = versions.current()


def _saw(versions: AdapterVersions, number: int, removed: set[str]) -> bool:
    """Whether version `number`'s weights saw one of the `removed` units (yes when it does not
    say what it was trained on)."""
    from ragtune.adapters import Trained

    trained = Trained.read(versions.path_of(number))
    return trained is None or bool(trained.units & removed)


def _trains_on_more(workspace: Workspace, folder: Path) -> bool:
    """Whether `synth/train.jsonl` holds a record the version in `folder` was not trained on
    (what `train --update` would train it on)."""
    from ragtune.adapters import Trained, record_hash
    from ragtune.fileio import json_lines

    trained = Trained.read(folder)
    if trained is None:
        return True
    path = workspace.train_path
    if not path.is_file():
        return False
    lines = path.read_text(encoding="utf-8").splitlines()
    return any(record_hash(record) not in trained.records for _, record in json_lines(path, lines))


def _delete_adapter(versions: AdapterVersions) -> list[int]:
    """Delete the adapter: its name and every version; returns the versions deleted."""
    if versions.link.is_symlink():
        versions.link.unlink()
    elif versions.link.is_dir():  # written before versions existed
        shutil.rmtree(versions.link)
    removed = versions.remove(versions.numbers())
    shutil.rmtree(versions.root, ignore_errors=True)
    return removed


def _other_adapters(workspace: Workspace, name: str, removed: set[str]) -> list[str]:
    """A line for each adapter of the workspace other than `name` that has versions whose
    weights saw the `removed` units (`forget` retrains only the configured one)."""
    from ragtune.adapters import VERSIONS, AdapterVersions

    root = workspace.adapters_dir / VERSIONS
    names = {path.name for path in root.iterdir() if path.is_dir()} if root.is_dir() else set()
    lines = []
    for other in sorted(names - {name}):
        versions = AdapterVersions(workspace, other)
        seen = [n for n in versions.numbers() if _saw(versions, n, removed)]
        if seen:
            listed = ", ".join(f"v{n}" for n in seen)
            lines.append(
                f"adapter {other!r} (not retrained here) has versions that saw them: {listed}; "
                f"retrain it (`ragtune train {workspace.root} train.adapter={other}`) or delete "
                "them"
            )
    return lines


def _leave_adapter(
    workspace: Workspace, config: MemoryConfig, removed: set[str], report: ForgetReport
) -> None:
    """Describe the adapter left as it is (`retrain=False`)."""
    from ragtune.adapters import AdapterVersions

    versions = AdapterVersions(workspace, config.train.adapter)
    current = versions.current()
    if current is None:
        return
    report.adapter_version = current
    seen = [n for n in versions.numbers() if _saw(versions, n, removed)]
    if current in seen:
        report.adapter = (
            f"v{current} left as it is, and its weights saw them: forget them again without "
            "--no-retrain to retrain it"
        )
    else:
        report.adapter = f"v{current} left as it is (it never saw them)"
    if seen:
        listed = ", ".join(f"v{n}" for n in seen)
        report.adapter += f"; versions that saw them are kept until then: {listed}"


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
