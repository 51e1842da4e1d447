"""The index's parquet files, with Microsoft GraphRAG's column names and order.

`entities`, `relationships`, `communities` and `community_reports` hold GraphRAG's columns
(see its `data_model/schemas.py`); ragtune adds `generated_by` to reports. `human_readable_id`
is the row number, as GraphRAG writes it (a copy of `community` for communities and reports).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

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
    write_rows(
        workspace.entities_path,
        [
            {**_fields(e), "human_readable_id": n, "text_unit_ids": list(e.text_unit_ids)}
            for n, e in enumerate(index.entities)
        ],
        entities_schema(),
    )
    write_rows(
        workspace.relationships_path,
        [
            {**_fields(r), "human_readable_id": n, "text_unit_ids": list(r.text_unit_ids)}
            for n, r in enumerate(index.relationships)
        ],
        relationships_schema(),
    )
    write_rows(
        workspace.communities_path,
        [_community_row(c) for c in index.communities],
        communities_schema(),
    )
    write_rows(
        workspace.community_reports_path,
        [_report_row(r) for r in index.reports],
        community_reports_schema(),
    )


def read_index(workspace: Workspace) -> MemoryIndex:
    """The index stored in `workspace`.

    Raises:
        RagtuneError: a table is missing or unreadable.
    """
    entities = [
        Entity(
            id=row["id"],
            title=row["title"],
            type=row["type"],
            description=row["description"],
            text_unit_ids=tuple(row["text_unit_ids"]),
            frequency=row["frequency"],
            degree=row["degree"],
        )
        for row in read_rows(workspace.entities_path, missing_hint=_MISSING)
    ]
    relationships = [
        Relationship(
            id=row["id"],
            source=row["source"],
            target=row["target"],
            description=row["description"],
            weight=row["weight"],
            text_unit_ids=tuple(row["text_unit_ids"]),
            combined_degree=row["combined_degree"],
        )
        for row in read_rows(workspace.relationships_path, missing_hint=_MISSING)
    ]
    communities = [
        Community(
            id=row["id"],
            community=row["community"],
            level=row["level"],
            parent=row["parent"],
            children=tuple(row["children"]),
            title=row["title"],
            entity_ids=tuple(row["entity_ids"]),
            relationship_ids=tuple(row["relationship_ids"]),
            text_unit_ids=tuple(row["text_unit_ids"]),
            period=row["period"],
            size=row["size"],
        )
        for row in read_rows(workspace.communities_path, missing_hint=_MISSING)
    ]
    reports = [
        CommunityReport(
            id=row["id"],
            community=row["community"],
            level=row["level"],
            parent=row["parent"],
            children=tuple(row["children"]),
            title=row["title"],
            summary=row["summary"],
            full_content=row["full_content"],
            rank=row["rank"],
            rating_explanation=row["rating_explanation"],
            findings=tuple(Finding(**finding) for finding in row["findings"]),
            full_content_json=row["full_content_json"],
            period=row["period"],
            size=row["size"],
            generated_by=row["generated_by"],
        )
        for row in read_rows(workspace.community_reports_path, missing_hint=_MISSING)
    ]
    return MemoryIndex(entities, relationships, communities, reports)


def _fields(item: Any) -> dict[str, Any]:
    return dict(vars(item))


def _community_row(community: Community) -> dict[str, Any]:
    row = _fields(community)
    row.update(
        human_readable_id=community.community,
        children=list(community.children),
        entity_ids=list(community.entity_ids),
        relationship_ids=list(community.relationship_ids),
        text_unit_ids=list(community.text_unit_ids),
    )
    return row


def _report_row(report: CommunityReport) -> dict[str, Any]:
    row = _fields(report)
    row.update(
        human_readable_id=report.community,
        children=list(report.children),
        findings=[vars(f) for f in report.findings],
    )
    return row


def report_json(report: CommunityReport) -> dict[str, Any]:
    """The parsed `full_content_json` of `report`."""
    value: dict[str, Any] = json.loads(report.full_content_json)
    return value
