"""Load a corpus of any supported format into documents."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Literal, get_args

from ragtune.corpus.jsonl import load_jsonl
from ragtune.corpus.locomo import load_locomo, looks_like_locomo
from ragtune.corpus.reading import check_readable, read_text_file
from ragtune.corpus.text_files import TEXT_SUFFIXES, list_text_files, load_text_files
from ragtune.corpus.types import Document
from ragtune.errors import CorpusError
from ragtune.progress import progress_bar

CorpusFormat = Literal["auto", "text", "jsonl", "locomo"]
CORPUS_FORMATS: tuple[str, ...] = get_args(CorpusFormat)


def detect_format(path: Path) -> CorpusFormat:
    """Tell the format of `path`: a folder or `.txt`/`.md` file is text, `.jsonl` is JSONL,
    a `.json` file with LoCoMo's shape is LoCoMo.

    Raises:
        CorpusError: the format cannot be told from the path and its content.
    """
    if path.is_dir():
        return "text"
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        return "text"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".json":
        try:
            data = json.loads(read_text_file(path))
        except json.JSONDecodeError as error:
            raise CorpusError(
                f"invalid JSON ({error.msg} at line {error.lineno}, column {error.colno})",
                path=path,
            ) from None
        if looks_like_locomo(data):
            return "locomo"
        raise CorpusError(
            'JSON file is not a LoCoMo conversation list; use JSONL (one {"text": ...} per '
            "line) for other records",
            path=path,
        )
    raise CorpusError(
        f"cannot tell the corpus format from {suffix or 'a file without suffix'!r}; "
        "pass --format text|jsonl|locomo",
        path=path,
    )


def load_corpus(
    path: str | Path, corpus_format: CorpusFormat = "auto", *, progress: bool = False
) -> list[Document]:
    """Load every document of the corpus at `path`.

    Args:
        path: A folder of `.txt`/`.md` files, a text file, a JSONL file or a LoCoMo JSON file.
        corpus_format: One of `CORPUS_FORMATS`; ``"auto"`` detects it from `path`.
        progress: Show a progress bar.

    Raises:
        CorpusError: the path is missing, a file or record is bad, or there are no documents.
    """
    path = Path(path)
    check_readable(path)
    if corpus_format not in CORPUS_FORMATS:
        raise CorpusError(f"unknown corpus format {corpus_format!r}; use one of {CORPUS_FORMATS}")
    chosen = detect_format(path) if corpus_format == "auto" else corpus_format
    documents: Iterator[Document]
    total = None
    if chosen == "text":
        files = list_text_files(path)
        if not files:
            raise CorpusError(f"empty corpus: no {', '.join(TEXT_SUFFIXES)} files found", path=path)
        total = len(files)
        documents = load_text_files(path, files)
    elif path.is_dir():
        raise CorpusError(f"the {chosen} format needs a file, not a folder", path=path)
    elif chosen == "jsonl":
        documents = load_jsonl(path)
    else:
        documents = load_locomo(path)
    loaded = list(
        progress_bar(documents, desc="reading", total=total, unit="doc", enabled=progress)
    )
    if not loaded:
        raise CorpusError("empty corpus: no documents with text", path=path)
    return _unique(loaded, path)


def _unique(documents: list[Document], path: Path) -> list[Document]:
    seen: dict[str, Document] = {}
    for document in documents:
        earlier = seen.get(document.id)
        if earlier is not None:
            raise CorpusError(
                f"two records are the same document ({earlier.source!r} and {document.source!r})",
                path=path,
            )
        seen[document.id] = document
    return documents
