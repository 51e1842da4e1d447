"""Adopting a Microsoft GraphRAG output folder (2.x and 1.x layouts) into a workspace."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ragtune.corpus import read_documents, read_text_units
from ragtune.errors import RagtuneError
from ragtune.index.graphrag_import import GraphragAdoption, adopt_graphrag
from ragtune.index.tables import read_index
from ragtune.index.types import Finding
from ragtune.workspace import Workspace

TABLES = (
    "documents",
    "text_units",
    "entities",
    "relationships",
    "communities",
    "community_reports",
)
WORKSPACE_FILES = sorted(f"{table}.parquet" for table in TABLES)


def uid(name: str) -> str:
    """A GraphRAG-style uuid id, stable per name."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


DOC_TRIP = "Alice founded Acme in Paris. Bob joined Acme later. Acme grew fast."
DOC_NOTE = "Carol met Alice in Rome."

#: (id name, document name, text); file order interleaves the two documents.
UNITS = [
    ("u1", "trip", "Alice founded Acme in Paris."),
    ("u3", "note", "Carol met Alice in Rome."),
    ("u2", "trip", "Paris. Bob joined Acme later. Acme grew fast."),  # overlaps u1
    ("u4", "note", "title: note.txt\nCarol met Alice in Rome."),  # metadata prepended
]

#: (title, type, description, unit names).
ENTITIES = [
    ("ALICE", "person", "Alice founded Acme.", ["u1", "u3"]),
    ("ACME", "organization", "A company founded by Alice.", ["u1", "u2"]),
    ("PARIS", "geo", "Where Acme was founded.", ["u1", "u2"]),
    ("BOB", "person", "Bob joined Acme.", ["u2"]),
    ("CAROL", "person", "Carol met Alice.", ["u3", "u4"]),
]

#: (source, target, description, weight, unit names).
RELATIONSHIPS = [
    ("ALICE", "ACME", "Alice founded Acme.", 2.0, ["u1"]),
    ("ACME", "PARIS", "Acme was founded in Paris.", 1.0, ["u1", "u2"]),
    ("BOB", "ACME", "Bob joined Acme.", 3.5, ["u2"]),
    ("CAROL", "ALICE", "Carol met Alice.", 1.5, ["u3", "u4"]),
]

#: (community, level, parent, children, member titles).
COMMUNITIES = [
    (0, 0, -1, [2, 3], ["ALICE", "ACME", "PARIS", "BOB"]),
    (1, 0, -1, [], ["CAROL"]),
    (2, 1, 0, [], ["ALICE", "ACME"]),
    (3, 1, 0, [], ["PARIS", "BOB"]),
]

FINDING = pa.struct([("summary", pa.string()), ("explanation", pa.string())])


def write_table(path: Path, columns: dict[str, tuple[pa.DataType, list[Any]]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    schema = pa.schema([(name, kind) for name, (kind, _) in columns.items()])
    table = pa.table({name: values for name, (_, values) in columns.items()}, schema=schema)
    pq.write_table(table, path)


def strings(values: list[Any]) -> tuple[pa.DataType, list[Any]]:
    return pa.string(), values


def string_lists(values: list[Any]) -> tuple[pa.DataType, list[Any]]:
    return pa.list_(pa.string()), values


def ints(values: list[Any]) -> tuple[pa.DataType, list[Any]]:
    return pa.int64(), values


def findings_of(community: int) -> list[dict[str, str]]:
    return [
        {"summary": f"Finding {community}a", "explanation": f"Why {community}a."},
        {"summary": f"Finding {community}b", "explanation": f"Why {community}b."},
    ]


def entity_units() -> dict[str, list[str]]:
    return {title: [uid(u) for u in units] for title, _, _, units in ENTITIES}


def member_relationships(members: list[str]) -> list[str]:
    return [uid(f"{s}->{t}") for s, t, *_ in RELATIONSHIPS if s in members and t in members]


def member_units(members: list[str]) -> list[str]:
    units = entity_units()
    return sorted({u for title in members for u in units[title]})


def write_graphrag_2x(folder: Path) -> Path:
    """GraphRAG 2.x's output tables, with its documented columns, in `folder`."""
    metadata_type = pa.struct([("author", pa.string()), ("pages", pa.int64())])
    write_table(
        folder / "documents.parquet",
        {
            "id": strings([uid("trip"), uid("note")]),
            "human_readable_id": ints([1, 2]),
            "title": strings(["trip.txt", "note.txt"]),
            "text": strings([DOC_TRIP, DOC_NOTE]),
            "text_unit_ids": string_lists(
                [[uid("u1"), uid("u2")], [uid("u3"), uid("u4")]],
            ),
            "creation_date": strings(["2024-03-01 10:00:00 +0000", "2024-03-02 11:30:00 +0000"]),
            "metadata": (metadata_type, [{"author": "ann", "pages": 2}, None]),
        },
    )
    write_table(
        folder / "text_units.parquet",
        {
            "id": strings([uid(u) for u, _, _ in UNITS]),
            "human_readable_id": ints(list(range(1, len(UNITS) + 1))),
            "text": strings([text for _, _, text in UNITS]),
            "n_tokens": ints([7, 6, 11, 10]),
            "document_ids": string_lists([[uid(doc)] for _, doc, _ in UNITS]),
            "entity_ids": string_lists([[] for _ in UNITS]),
            "relationship_ids": string_lists([[] for _ in UNITS]),
            "covariate_ids": string_lists([[] for _ in UNITS]),
        },
    )
    write_table(
        folder / "entities.parquet",
        {
            "id": strings([uid(title) for title, *_ in ENTITIES]),
            "human_readable_id": ints(list(range(len(ENTITIES)))),
            "title": strings([title for title, *_ in ENTITIES]),
            "type": strings([kind for _, kind, *_ in ENTITIES]),
            "description": strings([text for _, _, text, _ in ENTITIES]),
            "text_unit_ids": string_lists(list(entity_units().values())),
            "frequency": ints([7, 6, 5, 4, 3]),
            "degree": ints([20, 30, 10, 10, 10]),
        },
    )
    write_table(
        folder / "relationships.parquet",
        {
            "id": strings([uid(f"{s}->{t}") for s, t, *_ in RELATIONSHIPS]),
            "human_readable_id": ints(list(range(len(RELATIONSHIPS)))),
            "source": strings([s for s, *_ in RELATIONSHIPS]),
            "target": strings([t for _, t, *_ in RELATIONSHIPS]),
            "description": strings([d for _, _, d, _, _ in RELATIONSHIPS]),
            "weight": (pa.float64(), [w for *_, w, _ in RELATIONSHIPS]),
            "combined_degree": ints([50, 40, 40, 30]),
            "text_unit_ids": string_lists([[uid(u) for u in units] for *_, units in RELATIONSHIPS]),
        },
    )
    hierarchy = {
        "id": strings([uid(f"community {c}") for c, *_ in COMMUNITIES]),
        "human_readable_id": ints([c for c, *_ in COMMUNITIES]),
        "community": ints([c for c, *_ in COMMUNITIES]),
        "level": ints([level for _, level, *_ in COMMUNITIES]),
        "parent": ints([parent for _, _, parent, _, _ in COMMUNITIES]),
        "children": (pa.list_(pa.int64()), [children for *_, children, _ in COMMUNITIES]),
    }
    write_table(
        folder / "communities.parquet",
        {
            **hierarchy,
            "title": strings([f"Community {c}" for c, *_ in COMMUNITIES]),
            "entity_ids": string_lists(
                [[uid(title) for title in members] for *_, members in COMMUNITIES]
            ),
            "relationship_ids": string_lists(
                [member_relationships(members) for *_, members in COMMUNITIES]
            ),
            "text_unit_ids": string_lists([member_units(members) for *_, members in COMMUNITIES]),
            "period": strings(["2024-03-05"] * len(COMMUNITIES)),
            "size": ints([len(members) for *_, members in COMMUNITIES]),
        },
    )
    write_table(
        folder / "community_reports.parquet",
        {
            **hierarchy,
            "id": strings([uid(f"report {c}") for c, *_ in COMMUNITIES]),
            "title": strings([f"Report {c}" for c, *_ in COMMUNITIES]),
            "summary": strings([f"Summary of {c}." for c, *_ in COMMUNITIES]),
            "full_content": strings([f"# Report {c}\n\nSummary of {c}." for c, *_ in COMMUNITIES]),
            "rank": (pa.float64(), [8.5, 3.0, 6.0, 4.5]),
            "rating_explanation": strings([f"Rated {c}." for c, *_ in COMMUNITIES]),
            "findings": (pa.list_(FINDING), [findings_of(c) for c, *_ in COMMUNITIES]),
            "full_content_json": strings(
                [json.dumps({"title": f"Report {c}", "rating": 1.0}) for c, *_ in COMMUNITIES]
            ),
            "period": strings(["2024-03-05"] * len(COMMUNITIES)),
            "size": ints([len(members) for *_, members in COMMUNITIES]),
        },
    )
    return folder


def write_graphrag_1x(folder: Path, *, parents: bool = False) -> Path:
    """GraphRAG 1.x's `create_final_*` tables: fewer columns, `community` as text.

    With `parents`, communities have a `parent` column (text) but no `children`.
    """
    write_table(
        folder / "create_final_documents.parquet",
        {
            "id": strings([uid("trip"), uid("note")]),
            "human_readable_id": ints([1, 2]),
            "title": strings(["trip.txt", "note.txt"]),
            "text": strings([DOC_TRIP, DOC_NOTE]),
            "text_unit_ids": string_lists([[uid("u1"), uid("u2")], [uid("u3"), uid("u4")]]),
        },
    )
    write_table(
        folder / "create_final_text_units.parquet",
        {
            "id": strings([uid(u) for u, _, _ in UNITS]),
            "text": strings([text for _, _, text in UNITS]),
            "n_tokens": ints([7, 6, 11, 10]),
            "document_ids": string_lists([[uid(doc)] for _, doc, _ in UNITS]),
        },
    )
    write_table(
        folder / "create_final_entities.parquet",
        {
            "id": strings([uid(title) for title, *_ in ENTITIES]),
            "title": strings([title for title, *_ in ENTITIES]),
            "type": strings([kind for _, kind, *_ in ENTITIES]),
            "description": strings([text for _, _, text, _ in ENTITIES]),
            "text_unit_ids": string_lists(list(entity_units().values())),
        },
    )
    write_table(
        folder / "create_final_relationships.parquet",
        {
            "id": strings([uid(f"{s}->{t}") for s, t, *_ in RELATIONSHIPS]),
            "source": strings([s for s, *_ in RELATIONSHIPS]),
            "target": strings([t for _, t, *_ in RELATIONSHIPS]),
            "description": strings([d for _, _, d, _, _ in RELATIONSHIPS]),
            "weight": (pa.float64(), [w for *_, w, _ in RELATIONSHIPS]),
            "text_unit_ids": string_lists([[uid(u) for u in units] for *_, units in RELATIONSHIPS]),
        },
    )
    communities: dict[str, tuple[pa.DataType, list[Any]]] = {
        "id": strings([uid(f"community {c}") for c, *_ in COMMUNITIES]),
        "community": strings([str(c) for c, *_ in COMMUNITIES]),
        "level": ints([level for _, level, *_ in COMMUNITIES]),
        "title": strings([f"Community {c}" for c, *_ in COMMUNITIES]),
        "entity_ids": string_lists(
            [[uid(title) for title in members] for *_, members in COMMUNITIES]
        ),
    }
    if parents:
        communities["parent"] = strings([str(parent) for _, _, parent, _, _ in COMMUNITIES])
    write_table(folder / "create_final_communities.parquet", communities)
    write_table(
        folder / "create_final_community_reports.parquet",
        {
            "id": strings([uid(f"report {c}") for c, *_ in COMMUNITIES]),
            "community": strings([str(c) for c, *_ in COMMUNITIES]),
            "level": ints([level for _, level, *_ in COMMUNITIES]),
            "title": strings([f"Report {c}" for c, *_ in COMMUNITIES]),
            "summary": strings([f"Summary of {c}." for c, *_ in COMMUNITIES]),
            "full_content": strings([f"# Report {c}" for c, *_ in COMMUNITIES]),
            "rank": (pa.float64(), [8.5, 3.0, 6.0, 4.5]),
            "findings": (pa.list_(FINDING), [findings_of(c) for c, *_ in COMMUNITIES]),
        },
    )
    return folder


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace.at(tmp_path / "memory", create=True)


def workspace_files(workspace: Workspace) -> list[str]:
    return sorted(path.name for path in workspace.root.iterdir())


def test_adopts_graphrag_2x_output_into_all_six_tables(
    tmp_path: Path, workspace: Workspace
) -> None:
    adoption = adopt_graphrag(workspace, write_graphrag_2x(tmp_path / "output"))

    assert isinstance(adoption, GraphragAdoption)
    assert (adoption.documents, adoption.text_units) == (2, 4)
    assert workspace_files(workspace) == WORKSPACE_FILES
    index = read_index(workspace)
    assert index == adoption.index

    assert [(e.id, e.title, e.type, e.description) for e in index.entities] == [
        (uid(title), title, kind, description) for title, kind, description, _ in ENTITIES
    ]
    assert [e.text_unit_ids for e in index.entities] == [
        tuple(uid(u) for u in units) for *_, units in ENTITIES
    ]
    # GraphRAG's own frequency, degree and combined_degree are kept, not recomputed.
    assert [(e.frequency, e.degree) for e in index.entities] == [
        (7, 20),
        (6, 30),
        (5, 10),
        (4, 10),
        (3, 10),
    ]
    assert [(r.source, r.target, r.description, r.weight) for r in index.relationships] == [
        (s, t, d, w) for s, t, d, w, _ in RELATIONSHIPS
    ]
    assert [r.text_unit_ids for r in index.relationships] == [
        tuple(uid(u) for u in units) for *_, units in RELATIONSHIPS
    ]
    assert [r.combined_degree for r in index.relationships] == [50, 40, 40, 30]

    assert [(c.community, c.level, c.parent, c.children) for c in index.communities] == [
        (c, level, parent, tuple(children)) for c, level, parent, children, _ in COMMUNITIES
    ]
    assert index.communities_per_level() == {0: 2, 1: 2}
    top = index.communities[0]
    assert top.id == uid("community 0")
    assert top.entity_ids == tuple(uid(t) for t in ["ALICE", "ACME", "PARIS", "BOB"])
    assert top.relationship_ids == tuple(member_relationships(["ALICE", "ACME", "PARIS", "BOB"]))
    assert (top.title, top.period, top.size) == ("Community 0", "2024-03-05", 4)

    assert [(r.community, r.level, r.parent, r.children) for r in index.reports] == [
        (c, level, parent, tuple(children)) for c, level, parent, children, _ in COMMUNITIES
    ]
    report = index.reports[2]
    assert report.id == uid("report 2")
    assert (report.title, report.summary, report.rank) == ("Report 2", "Summary of 2.", 6.0)
    assert report.full_content == "# Report 2\n\nSummary of 2."
    assert report.rating_explanation == "Rated 2."
    assert report.findings == (
        Finding("Finding 2a", "Why 2a."),
        Finding("Finding 2b", "Why 2b."),
    )
    assert json.loads(report.full_content_json) == {"title": "Report 2", "rating": 1.0}
    assert {r.generated_by for r in index.reports} == {"graphrag"}


def test_documents_keep_ids_titles_dates_and_metadata(tmp_path: Path, workspace: Workspace) -> None:
    adopt_graphrag(workspace, write_graphrag_2x(tmp_path / "output"))

    trip, note = read_documents(workspace.documents_path)
    assert (trip.id, trip.title, trip.source, trip.text) == (
        uid("trip"),
        "trip.txt",
        "trip.txt",
        DOC_TRIP,
    )
    assert trip.timestamp == "2024-03-01 10:00:00 +0000"
    assert trip.metadata == {"author": "ann", "pages": 2}
    assert trip.turns == ()
    assert (note.id, note.metadata, note.timestamp) == (
        uid("note"),
        {},
        "2024-03-02 11:30:00 +0000",
    )
    assert pq.read_table(workspace.documents_path).column("text_unit_ids").to_pylist() == [
        [uid("u1"), uid("u2")],
        [uid("u3"), uid("u4")],
    ]


def test_text_units_get_chunk_index_and_offsets(tmp_path: Path, workspace: Workspace) -> None:
    adopt_graphrag(workspace, write_graphrag_2x(tmp_path / "output"))

    units = {unit.id: unit for unit in read_text_units(workspace.text_units_path)}
    u1, u2, u3, u4 = (units[uid(name)] for name in ("u1", "u2", "u3", "u4"))
    assert [(u.document_id, u.chunk_index) for u in (u1, u2, u3, u4)] == [
        (uid("trip"), 0),
        (uid("trip"), 1),
        (uid("note"), 0),
        (uid("note"), 1),
    ]
    for unit, document in ((u1, DOC_TRIP), (u2, DOC_TRIP), (u3, DOC_NOTE)):
        assert document[unit.start_char : unit.end_char] == unit.text
    assert (u1.start_char, u2.start_char) == (0, DOC_TRIP.index("Paris."))
    # Metadata was prepended to u4's text, so it is not found in the document.
    assert (u4.start_char, u4.end_char) == (-1, -1)
    assert (u1.n_tokens, u2.n_tokens) == (7, 11)
    assert u1.timestamp == "2024-03-01 10:00:00 +0000"
    assert (u1.turn_ids, u1.speakers) == ((), ())


def test_project_folder_holding_output_is_accepted(tmp_path: Path, workspace: Workspace) -> None:
    project = tmp_path / "project"
    write_graphrag_2x(project / "output")
    (project / "settings.yaml").write_text("models: {}\n", encoding="utf-8")

    adoption = adopt_graphrag(workspace, project)

    assert len(adoption.index.entities) == len(ENTITIES)
    assert workspace_files(workspace) == WORKSPACE_FILES


def test_adopts_graphrag_1x_output_filling_missing_columns(
    tmp_path: Path, workspace: Workspace
) -> None:
    adoption = adopt_graphrag(workspace, write_graphrag_1x(tmp_path / "output"))

    assert workspace_files(workspace) == WORKSPACE_FILES
    index = read_index(workspace)
    assert index == adoption.index
    entities = {e.title: e for e in index.entities}
    # frequency = unit count; degree = relationships the entity takes part in.
    assert {t: (e.frequency, e.degree) for t, e in entities.items()} == {
        "ALICE": (2, 2),
        "ACME": (2, 3),
        "PARIS": (2, 1),
        "BOB": (1, 1),
        "CAROL": (2, 1),
    }
    assert [r.combined_degree for r in index.relationships] == [5, 4, 4, 3]
    assert [(c.community, c.level, c.parent, c.children) for c in index.communities] == [
        (c, level, -1, ()) for c, level, *_ in COMMUNITIES
    ]
    assert [(c.size, c.period, c.relationship_ids) for c in index.communities] == [
        (len(members), "", ()) for *_, members in COMMUNITIES
    ]
    report = index.reports[0]
    assert (report.community, report.rank, report.rating_explanation) == (0, 8.5, "")
    assert report.findings == (Finding("Finding 0a", "Why 0a."), Finding("Finding 0b", "Why 0b."))
    assert (report.size, report.period, report.generated_by) == (4, "", "graphrag")
    assert json.loads(report.full_content_json) == {
        "title": "Report 0",
        "summary": "Summary of 0.",
        "rating": 8.5,
        "rating_explanation": "",
        "findings": findings_of(0),
    }
    documents = read_documents(workspace.documents_path)
    assert [(d.source, d.timestamp, d.metadata) for d in documents] == [
        ("trip.txt", None, {}),
        ("note.txt", None, {}),
    ]
    assert [u.chunk_index for u in read_text_units(workspace.text_units_path)] == [0, 0, 1, 1]


def test_1x_children_are_computed_from_parents(tmp_path: Path, workspace: Workspace) -> None:
    adoption = adopt_graphrag(workspace, write_graphrag_1x(tmp_path / "out", parents=True))

    expected = [(c, parent, tuple(children)) for c, _, parent, children, _ in COMMUNITIES]
    assert [(c.community, c.parent, c.children) for c in adoption.index.communities] == expected
    # Reports without hierarchy columns take their community's.
    assert [(r.community, r.parent, r.children) for r in adoption.index.reports] == expected


def test_plain_names_are_preferred_over_create_final(tmp_path: Path, workspace: Workspace) -> None:
    folder = write_graphrag_2x(tmp_path / "output")
    write_table(
        folder / "create_final_entities.parquet", {"id": strings(["stale"])}
    )  # would fail the column check if read

    adoption = adopt_graphrag(workspace, folder)

    assert len(adoption.index.entities) == len(ENTITIES)


@pytest.mark.parametrize(
    ("table", "dropped"),
    [
        ("entities", ["type", "description"]),
        ("relationships", ["weight"]),
        ("community_reports", ["full_content"]),
        ("text_units", ["document_ids"]),
    ],
)
def test_missing_column_names_file_and_columns_and_writes_nothing(
    tmp_path: Path, workspace: Workspace, table: str, dropped: list[str]
) -> None:
    folder = write_graphrag_2x(tmp_path / "output")
    path = folder / f"{table}.parquet"
    pq.write_table(pq.read_table(path).drop_columns(dropped), path)

    with pytest.raises(RagtuneError) as caught:
        adopt_graphrag(workspace, folder)

    assert str(caught.value) == (
        f"{path}: missing columns: {', '.join(dropped)} (GraphRAG output expected)"
    )
    assert workspace_files(workspace) == []


def test_missing_table_is_an_error_and_writes_nothing(tmp_path: Path, workspace: Workspace) -> None:
    folder = write_graphrag_2x(tmp_path / "output")
    (folder / "community_reports.parquet").unlink()

    with pytest.raises(RagtuneError) as caught:
        adopt_graphrag(workspace, folder)

    message = str(caught.value)
    assert message.startswith(f"{folder / 'community_reports.parquet'}: not found")
    assert "not a GraphRAG output folder" in message
    assert "create_final_community_reports.parquet" in message
    assert workspace_files(workspace) == []


def test_folder_without_graphrag_tables_is_an_error(tmp_path: Path, workspace: Workspace) -> None:
    (tmp_path / "empty").mkdir()

    with pytest.raises(RagtuneError, match="not a GraphRAG output folder"):
        adopt_graphrag(workspace, tmp_path / "empty")
    with pytest.raises(RagtuneError, match="not found"):
        adopt_graphrag(workspace, tmp_path / "nowhere")
    assert workspace_files(workspace) == []


def test_relationship_naming_an_unknown_entity_is_an_error_with_its_row(
    tmp_path: Path, workspace: Workspace
) -> None:
    folder = write_graphrag_2x(tmp_path / "output")
    path = folder / "relationships.parquet"
    table = pq.read_table(path)
    targets = table.column("target").to_pylist()
    targets[2] = "ZED"
    table = table.set_column(2 + 1, "target", pa.array(targets, pa.string()))
    pq.write_table(table, path)

    with pytest.raises(RagtuneError) as caught:
        adopt_graphrag(workspace, folder)

    error = caught.value
    assert (error.path, error.location) == (str(path), "row 3")
    assert "'ZED'" in error.message
    assert workspace_files(workspace) == []


def test_text_unit_naming_an_unknown_document_is_an_error(
    tmp_path: Path, workspace: Workspace
) -> None:
    folder = write_graphrag_1x(tmp_path / "output")
    path = folder / "create_final_text_units.parquet"
    table = pq.read_table(path)
    table = table.set_column(3, "document_ids", pa.array([["x"]] * 4, pa.list_(pa.string())))
    pq.write_table(table, path)

    with pytest.raises(RagtuneError) as caught:
        adopt_graphrag(workspace, folder)

    assert (caught.value.path, caught.value.location) == (str(path), "row 1")
    assert "unknown document 'x'" in caught.value.message
    assert workspace_files(workspace) == []


def test_unreadable_value_names_file_and_row(tmp_path: Path, workspace: Workspace) -> None:
    folder = write_graphrag_1x(tmp_path / "output")
    path = folder / "create_final_communities.parquet"
    table = pq.read_table(path)
    table = table.set_column(1, "community", pa.array(["0", "1", "two", "3"]))
    pq.write_table(table, path)

    with pytest.raises(RagtuneError) as caught:
        adopt_graphrag(workspace, folder)

    assert (caught.value.path, caught.value.location) == (str(path), "row 3")
    assert workspace_files(workspace) == []
