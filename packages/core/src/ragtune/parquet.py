"""Parquet tables: rows in and out, written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragtune.errors import RagtuneError
from ragtune.fileio import atomic_path

if TYPE_CHECKING:
    import pyarrow as pa


def write_rows(path: Path, rows: list[dict[str, Any]], schema: pa.Schema) -> None:
    """Write `rows` with `schema` to the parquet file `path`, atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows, schema=schema)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_rows(path: Path, *, missing_hint: str) -> list[dict[str, Any]]:
    """The rows of the parquet file `path`.

    Raises:
        RagtuneError: the file is missing (the message ends with `missing_hint`) or unreadable.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not path.is_file():
        raise RagtuneError(f"not found; {missing_hint}", path=path)
    try:
        rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
    except (pa.ArrowException, OSError) as error:
        raise RagtuneError(f"not a readable parquet table ({error})", path=path) from None
    return rows


def column_names(path: Path) -> list[str]:
    """The column names of the parquet file `path` (reads the footer only)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return list(pq.read_schema(path).names)
    except (pa.ArrowException, OSError) as error:
        raise RagtuneError(f"not a readable parquet table ({error})", path=path) from None
