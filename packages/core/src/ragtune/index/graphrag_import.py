"""Adopt a Microsoft GraphRAG output folder as a ragtune workspace's corpus and index.

Instead of chunking and extracting, `adopt_graphrag` reads the parquet tables GraphRAG wrote
(`documents`, `text_units`, `entities`, `relationships`, `communities`, `community_reports`;
GraphRAG 1.x named them `create_final_<table>.parquet`) and writes the workspace's
`documents.parquet`, `text_units.parquet` and the four index tables.

GraphRAG's ids are kept; `human_readable_id` is renumbered as ragtune writes it. Columns that
older GraphRAG versions lack are filled in: an entity's `frequency` (its unit count) and
`degree` (its relationship count), a relationship's `combined_degree`, a community's `parent`
(-1) and `children` (from the other communities' parents), `size`, `period`, and a report's
`full_content_json` (title, summary, rating, rating_explanation and findings, as GraphRAG's
report prompt answers).

Text units get their position in the document (`chunk_index`) and their character span, found
by searching the unit's text in the document text from the previous unit's start. GraphRAG cuts
units by tokens and may prepend metadata to them, so a unit's text is not always a substring of
its document: such a unit gets `start_char` and `end_char` of -1.

Every input is read and checked before anything is written: an error leaves the workspace as it
was.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from ragtune.corpus.tables import write_documents, write_text_units
from ragtune.corpus.types import Document, TextUnit
from ragtune.errors import RagtuneError
from ragtune.hashing import content_hash
from ragtune.index.tables import write_index
from ragtune.index.types import (
    Community,
    CommunityReport,
    Entity,
    Finding,
    MemoryIndex,
    Relationship,
)
from ragtune.parquet import column_names, read_rows
from ragtune.workspace import Workspace

_T = TypeVar("_T")

#: GraphRAG's tables, and the columns ragtune cannot do without.
_REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "documents": ("id", "title", "text"),
    "text_units": ("id", "text", "document_ids"),
    "entities": ("id", "title", "type", "description", "text_unit_ids"),
    "relationships": ("id", "source", "target", "description", "weight", "text_unit_ids"),
    "communities": ("community", "level", "entity_ids"),
    "community_reports": ("community", "level", "title", "summary", "full_content"),
}

#: The prefix GraphRAG 1.x gave its output tables.
_LEGACY_PREFIX = "create_final_"


@dataclass(frozen=True)
class GraphragAdoption:
    """What `adopt_graphrag` wrote into the workspace.

    Attributes:
        documents: How many documents.
        text_units: How many text units.
        index: The adopted index (entities, relationships, communities, reports).
    """

    documents: int
    text_units: int
    index: MemoryIndex


def adopt_graphrag(workspace: Workspace, source: Path) -> GraphragAdoption:
    """Adopt the GraphRAG output in `source` as `workspace`'s corpus and index.

    Reads GraphRAG's parquet outputs (2.x names such as `entities.parquet`, or 1.x names such
    as `create_final_entities.parquet`) and writes the workspace's `documents.parquet`,
    `text_units.parquet`, `entities.parquet`, `relationships.parquet`, `communities.parquet`
    and `community_reports.parquet`. Reports are marked ``generated_by="graphrag"``.

    Args:
        workspace: The workspace to write into.
        source: GraphRAG's output folder, or a GraphRAG project folder holding `output/`.

    Returns:
        The counts of documents and text units, and the adopted index.

    Raises:
        RagtuneError: `source` is not a folder; a table or a required column is missing; a
            value cannot be read; a text unit or relationship refers to a document or entity
            that is not there (the error names the file and its row, counted from 1). Nothing
            is written to the workspace then.
    """
    folder = _output_folder(Path(source).expanduser())
    paths = {table: _table_path(folder, table) for table in _REQUIRED_COLUMNS}
    for table, path in paths.items():
        _check_columns(path, _REQUIRED_COLUMNS[table])
    rows = {
        table: read_rows(path, missing_hint=_missing_hint(table)) for table, path in paths.items()
    }

    documents = _rows(paths["documents"], rows["documents"], _document)
    units = _text_units(paths["text_units"], rows["text_units"], documents)
    relationship_rows = _rows(paths["relationships"], rows["relationships"], _RelationshipRow.of)
    entities = _entities(paths["entities"], rows["entities"], relationship_rows)
    relationships = _relationships(paths["relationships"], relationship_rows, entities)
    communities = _communities(paths["communities"], rows["communities"])
    reports = _rows(
        paths["community_reports"],
        rows["community_reports"],
        _report_maker({c.community: c for c in communities}),
    )
    index = MemoryIndex(entities, relationships, communities, reports)

    write_documents(workspace.documents_path, documents, units)
    write_text_units(workspace.text_units_path, units)
    write_index(workspace, index)
    return GraphragAdoption(documents=len(documents), text_units=len(units), index=index)


# --- locating and checking the tables -------------------------------------------------------


def _output_folder(source: Path) -> Path:
    """`source` if it holds GraphRAG tables, else its `output/` folder if there is one."""
    if not source.is_dir():
        message = "is a file, not a GraphRAG output folder" if source.exists() else "not found"
        raise RagtuneError(message, path=source)
    names = {
        f"{prefix}{table}.parquet" for table in _REQUIRED_COLUMNS for prefix in ("", _LEGACY_PREFIX)
    }
    if any((source / name).is_file() for name in names):
        return source
    output = source / "output"
    return output if output.is_dir() else source


def _table_path(folder: Path, table: str) -> Path:
    """The file of `table` in `folder`: its plain name, else GraphRAG 1.x's name."""
    plain = folder / f"{table}.parquet"
    legacy = folder / f"{_LEGACY_PREFIX}{table}.parquet"
    if plain.is_file():
        return plain
    if legacy.is_file():
        return legacy
    raise RagtuneError(f"not found; {_missing_hint(table)}", path=plain)


def _missing_hint(table: str) -> str:
    return (
        f"not a GraphRAG output folder (expected {table}.parquet "
        f"or {_LEGACY_PREFIX}{table}.parquet)"
    )


def _check_columns(path: Path, required: Sequence[str]) -> None:
    present = set(column_names(path))
    missing = [name for name in required if name not in present]
    if missing:
        raise RagtuneError(
            f"missing columns: {', '.join(missing)} (GraphRAG output expected)", path=path
        )


def _rows(
    path: Path, rows: Iterable[dict[str, Any]], make: Callable[[dict[str, Any]], _T]
) -> list[_T]:
    """`make` applied to each row; a bad value is reported with the file and row."""
    made: list[_T] = []
    for number, row in enumerate(rows, start=1):
        try:
            made.append(make(row))
        except (TypeError, ValueError, KeyError, AttributeError) as error:
            raise RagtuneError(
                f"unreadable value ({type(error).__name__}: {error})",
                path=path,
                location=f"row {number}",
            ) from None
    return made


# --- value conversions -------------------------------------------------------------------------


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _int(value: Any, default: int) -> int:
    return default if value is None else int(value)


def _strings(value: Any) -> tuple[str, ...]:
    return () if value is None else tuple(str(item) for item in value)


def _ints(value: Any) -> tuple[int, ...]:
    return () if value is None else tuple(int(item) for item in value)


def _date(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def _jsonable(value: Any) -> Any:
    """`value` with everything JSON cannot hold turned into text."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return str(value)


def _metadata(value: Any) -> dict[str, Any]:
    """A document's metadata as a JSON-serializable dict (a struct, a map, or JSON text)."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return {"metadata": value}
    if isinstance(value, list) and all(
        isinstance(item, tuple | list) and len(item) == 2 for item in value
    ):
        value = dict(value)  # a parquet map reads as (key, value) pairs
    if isinstance(value, dict):
        converted: dict[str, Any] = _jsonable(value)
        return converted
    return {"metadata": _jsonable(value)}


def _get(row: dict[str, Any], column: str) -> Any:
    """The row's value in `column`, or None if the table has no such column."""
    return row.get(column)


# --- corpus ------------------------------------------------------------------------------------


def _document(row: dict[str, Any]) -> Document:
    title = _text(row["title"])
    metadata = row["metadata"] if "metadata" in row else _get(row, "attributes")
    return Document(
        id=_text(row["id"]),
        title=title,
        text=_text(row["text"]),
        source=title,
        timestamp=_date(_get(row, "creation_date")),
        metadata=_metadata(metadata),
    )


def _text_units(
    path: Path, rows: Sequence[dict[str, Any]], documents: Sequence[Document]
) -> list[TextUnit]:
    by_id = {document.id: document for document in documents}
    counts: dict[str, int] = defaultdict(int)
    last_start: dict[str, int] = defaultdict(int)
    units: list[TextUnit] = []
    for number, row in enumerate(rows, start=1):
        where = f"row {number}"
        try:
            unit_id = _text(row["id"])
            text = _text(row["text"])
            document_ids = _strings(row["document_ids"])
            n_tokens = _get(row, "n_tokens")
            tokens = int(n_tokens) if n_tokens is not None else _estimate_tokens(text)
        except (TypeError, ValueError) as error:
            raise RagtuneError(f"unreadable value ({error})", path=path, location=where) from None
        if not document_ids:
            raise RagtuneError(
                f"text unit {unit_id} has no document_ids", path=path, location=where
            )
        document = by_id.get(document_ids[0])
        if document is None:
            raise RagtuneError(
                f"text unit {unit_id} names unknown document {document_ids[0]!r}",
                path=path,
                location=where,
            )
        start = document.text.find(text, last_start[document.id]) if text else -1
        if start >= 0:
            last_start[document.id] = start
        units.append(
            TextUnit(
                id=unit_id,
                document_id=document.id,
                chunk_index=counts[document.id],
                text=text,
                n_tokens=tokens,
                start_char=start,
                end_char=start + len(text) if start >= 0 else -1,
                timestamp=document.timestamp,
            )
        )
        counts[document.id] += 1
    return units


def _estimate_tokens(text: str) -> int:
    """A rough token count (four characters a token) for units GraphRAG gave none."""
    return max(1, round(len(text) / 4)) if text else 0


# --- graph -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _RelationshipRow:
    """A relationships row, read before the entities' degrees are known."""

    id: str
    source: str
    target: str
    description: str
    weight: float
    text_unit_ids: tuple[str, ...]
    combined_degree: int | None

    @classmethod
    def of(cls, row: dict[str, Any]) -> _RelationshipRow:
        weight = row["weight"]
        combined = _get(row, "combined_degree")
        return cls(
            id=_text(row["id"]),
            source=_text(row["source"]),
            target=_text(row["target"]),
            description=_text(row["description"]),
            weight=1.0 if weight is None else float(weight),
            text_unit_ids=_strings(row["text_unit_ids"]),
            combined_degree=None if combined is None else int(combined),
        )


def _entities(
    path: Path, rows: Sequence[dict[str, Any]], relationships: Sequence[_RelationshipRow]
) -> list[Entity]:
    degrees: dict[str, int] = defaultdict(int)
    for relationship in relationships:
        degrees[relationship.source] += 1
        degrees[relationship.target] += 1

    def make(row: dict[str, Any]) -> Entity:
        title = _text(row["title"])
        units = _strings(row["text_unit_ids"])
        return Entity(
            id=_text(row["id"]),
            title=title,
            type=_text(row["type"]),
            description=_text(row["description"]),
            text_unit_ids=units,
            frequency=_int(_get(row, "frequency"), len(units)),
            degree=_int(_get(row, "degree"), degrees[title]),
        )

    return _rows(path, rows, make)


def _relationships(
    path: Path, rows: Sequence[_RelationshipRow], entities: Sequence[Entity]
) -> list[Relationship]:
    degrees = {entity.title: entity.degree for entity in entities}
    relationships: list[Relationship] = []
    for number, row in enumerate(rows, start=1):
        for end in (row.source, row.target):
            if end not in degrees:
                raise RagtuneError(
                    f"relationship {row.id} names unknown entity {end!r} "
                    "(not a title in the entities table)",
                    path=path,
                    location=f"row {number}",
                )
        combined = row.combined_degree
        relationships.append(
            Relationship(
                id=row.id,
                source=row.source,
                target=row.target,
                description=row.description,
                weight=row.weight,
                text_unit_ids=row.text_unit_ids,
                combined_degree=(
                    degrees[row.source] + degrees[row.target] if combined is None else combined
                ),
            )
        )
    return relationships


def _communities(path: Path, rows: Sequence[dict[str, Any]]) -> list[Community]:
    """The communities; without `children`, computed from the parents (-1 without `parent`)."""
    parsed = _rows(path, rows, _community)
    if rows and "children" not in rows[0]:
        children: dict[int, list[int]] = defaultdict(list)
        for community in parsed:
            if community.parent >= 0:
                children[community.parent].append(community.community)
        parsed = [
            replace(community, children=tuple(children.get(community.community, ())))
            for community in parsed
        ]
    return parsed


def _community(row: dict[str, Any]) -> Community:
    number = int(row["community"])
    level = int(row["level"])
    entity_ids = _strings(row["entity_ids"])
    community_id = _get(row, "id")
    return Community(
        id=_text(community_id) if community_id is not None else _community_id(level, number),
        community=number,
        level=level,
        parent=_int(_get(row, "parent"), -1),
        children=_ints(_get(row, "children")),
        title=_text(_get(row, "title")) or f"Community {number}",
        entity_ids=entity_ids,
        relationship_ids=_strings(_get(row, "relationship_ids")),
        text_unit_ids=_strings(_get(row, "text_unit_ids")),
        period=_text(_get(row, "period")),
        size=_int(_get(row, "size"), len(entity_ids)),
    )


def _community_id(level: int, number: int) -> str:
    return "com-" + content_hash("graphrag", str(level), str(number))


def _report_maker(
    communities: dict[int, Community],
) -> Callable[[dict[str, Any]], CommunityReport]:
    """Reads a report row; what it lacks of the hierarchy comes from its community."""

    def make(row: dict[str, Any]) -> CommunityReport:
        number = int(row["community"])
        level = int(row["level"])
        community = communities.get(number) or Community(
            id="",
            community=number,
            level=level,
            parent=-1,
            children=(),
            title="",
            entity_ids=(),
            relationship_ids=(),
            text_unit_ids=(),
            period="",
            size=0,
        )
        title = _text(row["title"])
        summary = _text(row["summary"])
        rank_value = _get(row, "rank")
        rank = 0.0 if rank_value is None else float(rank_value)
        rating_explanation = _text(_get(row, "rating_explanation"))
        findings = _findings(_get(row, "findings"))
        content_json = _get(row, "full_content_json")
        if not content_json:
            content_json = json.dumps(
                {
                    "title": title,
                    "summary": summary,
                    "rating": rank,
                    "rating_explanation": rating_explanation,
                    "findings": [vars(finding) for finding in findings],
                },
                ensure_ascii=False,
            )
        report_id = _get(row, "id")
        parent = _get(row, "parent")
        children = _get(row, "children")
        period = _get(row, "period")
        return CommunityReport(
            id=(
                _text(report_id)
                if report_id is not None
                else "rep-" + content_hash("graphrag", str(number))
            ),
            community=number,
            level=level,
            parent=_int(parent, community.parent),
            children=_ints(children) if children is not None else community.children,
            title=title,
            summary=summary,
            full_content=_text(row["full_content"]),
            rank=rank,
            rating_explanation=rating_explanation,
            findings=findings,
            full_content_json=str(content_json),
            period=_text(period) if period is not None else community.period,
            size=_int(_get(row, "size"), community.size),
            generated_by="graphrag",
        )

    return make


def _findings(value: Any) -> tuple[Finding, ...]:
    """A report's findings: a list of {summary, explanation} (or that list as JSON text)."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = json.loads(value) if value.strip() else []
    return tuple(
        Finding(
            summary=_text(item.get("summary")),
            explanation=_text(item.get("explanation")),
        )
        for item in value
    )
