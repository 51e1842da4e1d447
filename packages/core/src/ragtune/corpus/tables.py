"""`documents.parquet` and `text_units.parquet`: GraphRAG's column names where a concept matches.

GraphRAG columns: documents (`id`, `human_readable_id`, `title`, `text`, `text_unit_ids`) and
text units (`id`, `human_readable_id`, `text`, `n_tokens`, `document_ids`). ragtune adds
`source`, `timestamp`, `metadata` (a JSON string) and `turns` to documents, and `chunk_index`,
`start_char`, `end_char`, `timestamp`, `turn_ids` and `speakers` to text units.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragtune.corpus.types import Document, TextUnit, Turn
from ragtune.parquet import read_rows, write_rows

if TYPE_CHECKING:
    import pyarrow as pa


def _document_schema() -> pa.Schema:
    import pyarrow as pa

    turn = pa.struct(
        [("id", pa.string()), ("speaker", pa.string()), ("start", pa.int64()), ("end", pa.int64())]
    )
    return pa.schema(
        [
            ("id", pa.string()),
            ("human_readable_id", pa.int64()),
            ("title", pa.string()),
            ("text", pa.string()),
            ("text_unit_ids", pa.list_(pa.string())),
            ("source", pa.string()),
            ("timestamp", pa.string()),
            ("metadata", pa.string()),
            ("turns", pa.list_(turn)),
        ]
    )


def _text_unit_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            ("id", pa.string()),
            ("human_readable_id", pa.int64()),
            ("text", pa.string()),
            ("n_tokens", pa.int64()),
            ("document_ids", pa.list_(pa.string())),
            ("chunk_index", pa.int64()),
            ("start_char", pa.int64()),
            ("end_char", pa.int64()),
            ("timestamp", pa.string()),
            ("turn_ids", pa.list_(pa.string())),
            ("speakers", pa.list_(pa.string())),
        ]
    )


def write_documents(path: Path, documents: Sequence[Document], units: Sequence[TextUnit]) -> None:
    """Write `documents` (with the ids of their `units`) to a parquet file, atomically."""
    unit_ids: dict[str, list[str]] = defaultdict(list)
    for unit in units:
        unit_ids[unit.document_id].append(unit.id)
    rows = [
        {
            "id": d.id,
            "human_readable_id": number,
            "title": d.title,
            "text": d.text,
            "text_unit_ids": unit_ids[d.id],
            "source": d.source,
            "timestamp": d.timestamp,
            "metadata": json.dumps(d.metadata, ensure_ascii=False, sort_keys=True),
            "turns": [vars(t) for t in d.turns],
        }
        for number, d in enumerate(documents)
    ]
    write_rows(path, rows, _document_schema())


def write_text_units(path: Path, units: Sequence[TextUnit]) -> None:
    """Write `units` to a parquet file, atomically."""
    rows = [
        {
            "id": u.id,
            "human_readable_id": number,
            "text": u.text,
            "n_tokens": u.n_tokens,
            "document_ids": [u.document_id],
            "chunk_index": u.chunk_index,
            "start_char": u.start_char,
            "end_char": u.end_char,
            "timestamp": u.timestamp,
            "turn_ids": list(u.turn_ids),
            "speakers": list(u.speakers),
        }
        for number, u in enumerate(units)
    ]
    write_rows(path, rows, _text_unit_schema())


def read_documents(path: Path) -> list[Document]:
    """Read the documents written by `write_documents`."""
    return [
        Document(
            id=row["id"],
            title=row["title"],
            text=row["text"],
            source=row["source"],
            timestamp=row["timestamp"],
            metadata=json.loads(row["metadata"]),
            turns=tuple(Turn(**turn) for turn in row["turns"]),
        )
        for row in _read(path)
    ]


def read_text_units(path: Path) -> list[TextUnit]:
    """Read the text units written by `write_text_units`."""
    return [
        TextUnit(
            id=row["id"],
            document_id=row["document_ids"][0],
            chunk_index=row["chunk_index"],
            text=row["text"],
            n_tokens=row["n_tokens"],
            start_char=row["start_char"],
            end_char=row["end_char"],
            timestamp=row["timestamp"],
            turn_ids=tuple(row["turn_ids"]),
            speakers=tuple(row["speakers"]),
        )
        for row in _read(path)
    ]


def _read(path: Path) -> list[dict[str, Any]]:
    return read_rows(path, missing_hint="run `ragtune ingest` first")
