"""A ragtune workspace from LangChain documents (a list, or any `BaseLoader`), their metadata
kept."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document

#: Where the documents are written in the workspace, as a JSON Lines corpus.
CORPUS_FILE = "corpus/langchain.jsonl"
#: Corpus keys a document's metadata cannot take (they would be read as the document's own).
_RESERVED = ("text", "id", "title", "timestamp")


def corpus_record(document: Document) -> dict[str, Any]:
    """One line of a ragtune JSONL corpus: the text, the id, title and timestamp when the
    metadata has them, and every other metadata key (values that are not JSON become text)."""
    metadata = dict(document.metadata)
    record: dict[str, Any] = {"text": document.page_content}
    if document.id is not None:
        record["id"] = str(document.id)
    for key in ("title", "timestamp"):
        if isinstance(metadata.get(key), str):
            record[key] = metadata.pop(key)
    for key, value in metadata.items():
        name = f"metadata_{key}" if key in _RESERVED else key
        record[name] = value if _is_json(value) else str(value)
    return record


def write_corpus(documents: Iterable[Document], path: Path) -> int:
    """Write `documents` to `path` as a ragtune JSONL corpus (atomically); the count written.

    Raises:
        ValueError: there are no documents with text.
    """
    from ragtune.fileio import atomic_path

    written = 0
    with atomic_path(path) as temporary, temporary.open("w", encoding="utf-8") as out:
        for document in documents:
            if not document.page_content.strip():
                continue
            out.write(json.dumps(corpus_record(document), ensure_ascii=False) + "\n")
            written += 1
        if not written:
            raise ValueError("no documents with text to build a memory from")
    return written


def ingest_documents(
    documents: Sequence[Document] | BaseLoader,
    workspace: str | Path,
    settings: Sequence[str] = (),
    *,
    progress: bool = False,
) -> Path:
    """Build the ragtune workspace `workspace` from LangChain documents (or a loader's): they
    are written to ``WORKSPACE/corpus/langchain.jsonl`` and ingested (documents, text units,
    memory.yaml) with the ``KEY=VALUE`` `settings`. Returns the workspace folder.

    Raises:
        ValueError: there are no documents with text.
        RagtuneError: a setting is invalid.
    """
    from ragtune.config import load_config
    from ragtune.ingest import ingest
    from ragtune.workspace import Workspace

    folder = Workspace.at(workspace, create=True)
    corpus = folder.root / CORPUS_FILE
    loaded = documents.lazy_load() if isinstance(documents, BaseLoader) else documents
    write_corpus(loaded, corpus)
    existing = folder.config_path if folder.config_path.is_file() else None
    config = load_config(existing, [f"corpus.path={corpus}", "corpus.format=jsonl", *settings])
    ingest(folder, config, progress=progress)
    return folder.root


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True
