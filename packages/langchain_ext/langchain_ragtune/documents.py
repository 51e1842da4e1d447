"""A ragtune workspace from LangChain documents (a list, or any `BaseLoader`), their metadata
kept."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document

from ragtune.corpus.jsonl import SourceText


def source_texts(documents: Iterable[Document]) -> Iterator[SourceText]:
    """LangChain documents as the texts ragtune ingests (text, metadata, id)."""
    for document in documents:
        yield SourceText(document.page_content, document.metadata, document.id)


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
        CorpusError: there are no documents with text.
        ConfigError: a setting is invalid.
    """
    from ragtune.ingestion import ingest_texts

    loaded = documents.lazy_load() if isinstance(documents, BaseLoader) else documents
    return ingest_texts(
        source_texts(loaded), workspace, settings, name="langchain", progress=progress
    )
