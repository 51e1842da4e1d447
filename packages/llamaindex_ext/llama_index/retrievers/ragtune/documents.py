"""A ragtune workspace from LlamaIndex documents, nodes or any reader, their metadata kept."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from llama_index.core.schema import BaseNode

from ragtune.corpus.jsonl import SourceText


def source_texts(nodes: Iterable[BaseNode]) -> Iterator[SourceText]:
    """LlamaIndex documents or nodes as the texts ragtune ingests (text, metadata, id)."""
    for node in nodes:
        yield SourceText(node.get_content(), dict(node.metadata), node.node_id)


def ingest_documents(
    documents: Sequence[BaseNode] | Any,
    workspace: str | Path,
    settings: Sequence[str] = (),
    *,
    progress: bool = False,
) -> Path:
    """Build the ragtune workspace `workspace` from LlamaIndex documents or nodes, or from a
    reader (anything with `load_data`, e.g. `SimpleDirectoryReader`): they
    are written to ``WORKSPACE/corpus/llamaindex.jsonl`` and ingested with the ``KEY=VALUE``
    `settings`. Returns the workspace folder.

    Raises:
        CorpusError: there are no documents with text.
        ConfigError: a setting is invalid.
    """
    from ragtune.ingestion import ingest_texts

    if hasattr(documents, "load_data"):  # a reader (its default load_data is lazy_load_data's)
        documents = documents.load_data()
    return ingest_texts(
        source_texts(documents), workspace, settings, name="llamaindex", progress=progress
    )
