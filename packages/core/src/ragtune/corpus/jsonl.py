"""JSON Lines corpora: one document per line, ``{"text": ..., ...metadata}`` — read, and written
from texts other libraries hold (`SourceText`)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    lines_of_ids: dict[str, int] = {}
    for number, record in json_lines(path, text.splitlines(), error=CorpusError):
        where = f"line {number}"
        if not isinstance(record, dict):
            raise CorpusError(
                f"expected a JSON object, got {type(record).__name__}", path=path, location=where
            )
        record_id = record.get("id")
        if isinstance(record_id, str | int) and not isinstance(record_id, bool):
            earlier = lines_of_ids.setdefault(str(record_id), number)
            if earlier != number:
                raise CorpusError(
                    f'duplicate "id" {record_id!r} (also on line {earlier}); ids name one '
                    "record each",
                    path=path,
                    location=where,
                )
        yield _document(record, path, where, number)


def _document(record: dict[str, object], path: Path, where: str, number: int) -> Document:
    try:
        json.dumps(record, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as error:
        raise CorpusError(
            f"record holds a lone surrogate ({error.object[error.start]!r}): a \\u escape that "
            "is half of a character, not valid Unicode",
            path=path,
            location=where,
        ) from None
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


#: Keys of a JSONL corpus line that a text's metadata cannot take (they are the line's own).
_RESERVED = ("text", "id", "title", "timestamp")


@dataclass(frozen=True)
class SourceText:
    """A text to remember, from wherever it came (a LangChain or LlamaIndex document, a node).

    Attributes:
        text: The text.
        metadata: Its metadata; ``title`` and ``timestamp`` (ISO 8601) strings become the
            document's own.
        id: A stable id, if it has one (the document id is derived from it).
    """

    text: str
    metadata: Mapping[str, Any] = field(default_factory=dict)
    id: str | None = None


def corpus_line(source: SourceText) -> dict[str, Any]:
    """`source` as one line of a JSONL corpus: the text, the id, title and timestamp, and every
    other metadata key (renamed ``metadata_<key>`` when it would clash; values that are not JSON
    become their text)."""
    metadata = dict(source.metadata)
    line: dict[str, Any] = {"text": source.text}
    if source.id is not None:
        line["id"] = str(source.id)
    for key in ("title", "timestamp"):
        if isinstance(metadata.get(key), str):
            line[key] = metadata.pop(key)
    for key, value in metadata.items():
        name = f"metadata_{key}" if key in _RESERVED else key
        line[name] = value if _is_json(value) else str(value)
    return line


def write_jsonl_corpus(sources: Iterable[SourceText], path: Path) -> int:
    """Write the texts of `sources` that are not blank to `path` as a JSONL corpus,
    atomically; the number written.

    Raises:
        CorpusError: none of them has text.
    """
    from ragtune.fileio import atomic_path

    written = 0
    with atomic_path(path) as temporary, temporary.open("w", encoding="utf-8") as out:
        for source in sources:
            if source.text.strip():
                out.write(json.dumps(corpus_line(source), ensure_ascii=False) + "\n")
                written += 1
        if not written:
            raise CorpusError("no documents with text to build a memory from", path=path)
    return written


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True
