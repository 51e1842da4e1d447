"""The index's parquet files, with Microsoft GraphRAG's column names and order.

`entities`, `relationships`, `communities` and `community_reports` hold GraphRAG's columns
(see its `data_model/schemas.py`); ragtune adds `generated_by` to reports. `human_readable_id`
is the row number, as GraphRAG writes it (a copy of `community` for communities and reports).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ragtune.index.types import (
    Community,
    CommunityReport,
    Entity,
    Finding,
    MemoryIndex,
    Relationship,
)
from ragtune.parquet import read_rows, write_rows

if TYPE_CHECKING:
    import pyarrow as pa

    from ragtune.workspace import Workspace

_MISSING = "run `ragtune index` first"
T = TypeVar("T")


def entities_schema() -> pa.Schema:
    """The columns of `entities.parquet`."""
    import pyarrow as pa

    return pa.schema(
        [
            ("id", pa.string()),
            ("human_readable_id", pa.int64()),
            ("title", pa.string()),
            ("type", pa.string()),
            ("description", pa.string()),
            ("text_unit_ids", pa.list_(pa.string())),
            ("frequency", pa.int64()),
            ("degree", pa.int64()),
        ]
    )


def relationships_schema() -> pa.Schema:
    """The columns of `relationships.parquet`."""
    import pyarrow as pa

    return pa.schema(
        [
            ("id", pa.string()),
            ("human_readable_id", pa.int64()),
            ("source", pa.string()),
            ("target", pa.string()),
            ("description", pa.string()),
            ("weight", pa.float64()),
            ("combined_degree", pa.int64()),
            ("text_unit_ids", pa.list_(pa.string())),
        ]
    )


def _hierarchy_fields() -> list[tuple[str, Any]]:
    import pyarrow as pa

    return [
        ("id", pa.string()),
        ("human_readable_id", pa.int64()),
        ("community", pa.int64()),
        ("level", pa.int64()),
        ("parent", pa.int64()),
        ("children", pa.list_(pa.int64())),
        ("title", pa.string()),
    ]


def communities_schema() -> pa.Schema:
    """The columns of `communities.parquet`."""
    import pyarrow as pa

    return pa.schema(
        [
            *_hierarchy_fields(),
            ("entity_ids", pa.list_(pa.string())),
            ("relationship_ids", pa.list_(pa.string())),
            ("text_unit_ids", pa.list_(pa.string())),
            ("period", pa.string()),
            ("size", pa.int64()),
        ]
    )


def community_reports_schema() -> pa.Schema:
    """The columns of `community_reports.parquet`."""
    import pyarrow as pa

    finding = pa.struct([("summary", pa.string()), ("explanation", pa.string())])
    return pa.schema(
        [
            *_hierarchy_fields(),
            ("summary", pa.string()),
            ("full_content", pa.string()),
            ("rank", pa.float64()),
            ("rating_explanation", pa.string()),
            ("findings", pa.list_(finding)),
            ("full_content_json", pa.string()),
            ("period", pa.string()),
            ("size", pa.int64()),
            ("generated_by", pa.string()),
        ]
    )


def write_index(workspace: Workspace, index: MemoryIndex) -> None:
    """Write the four tables of `index` into `workspace`, each atomically."""
    tables = (
        (workspace.entities_path, index.entities, entities_schema()),
        (workspace.relationships_path, index.relationships, relationships_schema()),
        (workspace.communities_path, index.communities, communities_schema()),
        (workspace.community_reports_path, index.reports, community_reports_schema()),
    )
    for path, records, schema in tables:
        write_rows(path, [_row(record, n) for n, record in enumerate(records)], schema)


def read_index(workspace: Workspace) -> MemoryIndex:
    """The index stored in `workspace`.

    Raises:
        RagtuneError: a table is missing or unreadable.
    """
    return MemoryIndex(
        entities=_records(Entity, workspace.entities_path),
        relationships=_records(Relationship, workspace.relationships_path),
        communities=_records(Community, workspace.communities_path),
        reports=_records(CommunityReport, workspace.community_reports_path),
    )


def _row(record: Any, number: int) -> dict[str, Any]:
    """A table row of a record: lists for tuples, dicts for findings, and GraphRAG's
    `human_readable_id` (the row number; a copy of `community` for communities and reports)."""
    row = {
        name: [vars(v) if isinstance(v, Finding) else v for v in value]
        if isinstance(value, tuple)
        else value
        for name, value in vars(record).items()
    }
    row["human_readable_id"] = row.get("community", number)
    return row


def _records(kind: type[T], path: Path) -> list[T]:
    """The records of type `kind` in the table at `path` (the inverse of `_row`)."""
    names = [item.name for item in dataclasses.fields(kind)]  # type: ignore[arg-type]
    return [
        kind(
            **{
                name: tuple(Finding(**v) if isinstance(v, dict) else v for v in row[name])
                if isinstance(row[name], list)
                else row[name]
                for name in names
            }
        )
        for row in read_rows(path, missing_hint=_MISSING)
    ]
