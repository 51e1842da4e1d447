"""JSON Lines corpora: one document per line, ``{"text": ..., ...metadata}``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ragtune.corpus.reading import normalize_timestamp, read_text_file
from ragtune.corpus.types import Document
from ragtune.errors import CorpusError
from ragtune.fileio import json_lines


def load_jsonl(path: Path) -> Iterator[Document]:
    """Yield one `Document` per non-blank line of a JSONL file.

    Each line is a JSON object with a non-empty string `text`; optional `id` (string or
    integer, used for the stable document id), `title` and `timestamp` (ISO 8601); every other
    key is kept as metadata. Blank lines are skipped.
    """
    text = read_text_file(path)
    for number, record in json_lines(path, text.splitlines(), error=CorpusError):
        where = f"line {number}"
        if not isinstance(record, dict):
            raise CorpusError(
                f"expected a JSON object, got {type(record).__name__}", path=path, location=where
            )
        yield _document(record, path, where, number)


def _document(record: dict[str, object], path: Path, where: str, number: int) -> Document:
    body = record.pop("text", None)
    if not isinstance(body, str):
        problem = 'has no "text" field' if body is None else 'has a non-string "text" field'
        raise CorpusError(f"record {problem}", path=path, location=where)
    if not body.strip():
        raise CorpusError('record has an empty "text"', path=path, location=where)
    record_id = record.pop("id", None)
    if record_id is not None and not isinstance(record_id, str | int):
        raise CorpusError('"id" must be a string or an integer', path=path, location=where)
    title = record.pop("title", None)
    if title is not None and not isinstance(title, str):
        raise CorpusError('"title" must be a string', path=path, location=where)
    timestamp = None
    raw_timestamp = record.pop("timestamp", None)
    if raw_timestamp is not None:
        try:
            timestamp = normalize_timestamp(raw_timestamp)
        except ValueError as error:
            raise CorpusError(f'"timestamp": {error}', path=path, location=where) from None
    key = str(record_id) if record_id is not None else f"line-{number}"
    source = f"{path.name}#{key}"
    text = body.strip()
    return Document(
        id=Document.make_id(source, text),
        title=title or (str(record_id) if record_id is not None else f"{path.stem} {number}"),
        text=text,
        source=source,
        timestamp=timestamp,
        metadata=dict(record),
    )
