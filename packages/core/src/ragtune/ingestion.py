"""The ingest stage: corpus → `documents.parquet` and `text_units.parquet`."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragtune.config import MemoryConfig, save_config
from ragtune.corpus import chunk_documents, load_corpus, write_documents, write_text_units
from ragtune.corpus.jsonl import SourceText
from ragtune.corpus.reading import check_readable
from ragtune.errors import ConfigError, RagtuneError
from ragtune.stages import runs_as_stage
from ragtune.workspace import Workspace

log = logging.getLogger("ragtune")


@dataclass(frozen=True)
class IngestReport:
    """What an ingest produced."""

    documents: int
    text_units: int
    tokens: int
    seconds: float


@runs_as_stage("ingest")
def ingest(
    workspace: Workspace,
    config: MemoryConfig,
    *,
    progress: bool = True,
    record_settings: bool = True,
) -> IngestReport:
    """Read the corpus named by `config.corpus`, chunk it and write the workspace's tables.

    The tables and `memory.yaml` are published together when the ingest succeeds (a stage,
    `ragtune.stages`), so a failed or interrupted ingest leaves the workspace as it was.

    Args:
        workspace: The workspace.
        config: The settings.
        progress: Whether to show progress bars.
        record_settings: Save all of `config` in `memory.yaml`; when False (a later stage in
            the same command saves the rest when it succeeds), only the corpus and chunking.

    Raises:
        CorpusError: the corpus or one of its files or records is bad.
        ConfigError: no corpus path is set, or a setting is invalid.
        ModelNotAvailableError: the chunking tokenizer's model is not installed.
    """
    from ragtune.llm.tokenizer import load_tokenizer

    started = time.perf_counter()
    config.validate()
    if not config.corpus.path:
        raise ConfigError("no corpus given; pass --corpus PATH (or set corpus.path)")
    given = Path(config.corpus.path).expanduser()
    check_readable(given)  # before resolving it: a symbolic link loop is named, not raised
    corpus = given.resolve()
    documents = load_corpus(corpus, config.corpus.format, progress=progress)
    forgotten = read_forgotten(workspace)
    if forgotten:
        kept = [document for document in documents if document.id not in forgotten]
        if len(kept) < len(documents):
            log.info(
                "left out %d documents `ragtune forget` removed (forgotten.json)",
                len(documents) - len(kept),
            )
        documents = kept
    tokenizer = load_tokenizer(config.chunking_tokenizer)
    units = chunk_documents(
        documents,
        tokenizer,
        size=config.chunking.size,
        overlap=config.chunking.overlap,
        progress=progress,
    )
    write_text_units(workspace.text_units_path, units)
    write_documents(workspace.documents_path, documents, units)
    corpus_config = dataclasses.replace(config.corpus, path=str(corpus))
    saved = config if record_settings else _saved_config(workspace)
    saved = dataclasses.replace(saved, corpus=corpus_config, chunking=config.chunking)
    save_config(saved, workspace.config_path)
    return IngestReport(
        documents=len(documents),
        text_units=len(units),
        tokens=sum(unit.n_tokens for unit in units),
        seconds=time.perf_counter() - started,
    )


def _saved_config(workspace: Workspace) -> MemoryConfig:
    from ragtune.config import load_config

    return load_config(workspace.config_path)


def ingest_texts(
    texts: Iterable[SourceText],
    workspace: str | Path,
    settings: Sequence[str] = (),
    *,
    name: str = "texts",
    progress: bool = False,
) -> Path:
    """Build the workspace `workspace` from texts held in memory (LangChain or LlamaIndex
    documents, nodes): they are written to ``WORKSPACE/corpus/<name>.jsonl`` and ingested with
    the ``KEY=VALUE`` `settings` (over the workspace's memory.yaml, if any). Returns the
    workspace folder.

    Raises:
        CorpusError: no text has content.
        ConfigError: a setting is invalid.
    """
    from ragtune.config import load_config
    from ragtune.corpus.jsonl import write_jsonl_corpus

    folder = Workspace.at(workspace, create=True)
    corpus = folder.root / "corpus" / f"{name}.jsonl"
    write_jsonl_corpus(texts, corpus)
    blank_forgotten_lines(corpus, read_forgotten(folder))  # (`ingest` leaves them out too)
    existing = folder.config_path if folder.config_path.is_file() else None
    config = load_config(existing, [f"corpus.path={corpus}", "corpus.format=jsonl", *settings])
    ingest(folder, config, progress=progress)
    return folder.root


def read_forgotten(workspace: Workspace) -> dict[str, dict[str, Any]]:
    """The documents `forget` removed from `workspace`: id → source, when, and its text units'
    ids.

    Raises:
        RagtuneError: the file is not what ragtune writes.
    """
    path = workspace.forgotten_path
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise RagtuneError(f"is not readable ({error})", path=path) from None
    if not isinstance(data, dict) or not all(isinstance(entry, dict) for entry in data.values()):
        raise RagtuneError("is not a record of forgotten documents", path=path)
    return data


def blank_forgotten_lines(path: Path, ids: Iterable[str]) -> int:
    """Blank the lines of the JSON Lines corpus `path` that hold the documents `ids` (the
    other lines keep their numbers, so the ids of their documents do not change); returns how
    many were blanked. For the corpus `ingest_texts` writes into a workspace: a document
    `ragtune forget` removed does not stay there.

    Raises:
        CorpusError: the file is not a JSON Lines corpus.
    """
    from ragtune.corpus.jsonl import load_jsonl
    from ragtune.corpus.reading import read_text_file
    from ragtune.fileio import atomic_write_text

    wanted = set(ids)
    if not wanted or not path.is_file():
        return 0
    lines = read_text_file(path).splitlines()
    filled = [number for number, line in enumerate(lines) if line.strip()]
    documents = list(load_jsonl(path))
    if len(documents) != len(filled):  # (each non-blank line is one document)
        raise RagtuneError("does not hold one document a line", path=path)
    blanked = 0
    for number, document in zip(filled, documents, strict=True):
        if document.id in wanted:
            lines[number] = ""
            blanked += 1
    if blanked:
        atomic_write_text(path, "".join(line + "\n" for line in lines))
    return blanked
