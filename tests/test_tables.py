"""documents.parquet and text_units.parquet: roundtrips and GraphRAG's column names."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ragtune.corpus import (
    Document,
    TextUnit,
    Turn,
    read_documents,
    read_text_units,
    write_documents,
    write_text_units,
)
from ragtune.errors import RagtuneError


def make_documents() -> list[Document]:
    conversation_text = "Caroline: Hi Mel!\nMelanie: Hey Caroline, how are you?"
    return [
        Document(
            id=Document.make_id("conv.json#conv-1/session_1", conversation_text),
            title="conv-1 session 1 (1:56 pm on 8 May, 2023)",
            text=conversation_text,
            source="conv.json#conv-1/session_1",
            timestamp="2023-05-08T13:56:00",
            metadata={
                "sample_id": "conv-1",
                "session": 1,
                "speakers": ["Caroline", "Melanie"],
                "nested": {"ok": True, "ratio": 0.5, "none": None},
                "unicode": "café – 中文",
            },
            turns=(
                Turn(id="D1:1", speaker="Caroline", start=0, end=17),
                Turn(id="D1:2", speaker="Melanie", start=18, end=len(conversation_text)),
            ),
        ),
        Document(
            id=Document.make_id("notes/plain.md", "A plain note."),
            title="plain",
            text="A plain note.",
            source="notes/plain.md",
        ),
    ]


def make_units(documents: list[Document]) -> list[TextUnit]:
    conversation, note = documents
    return [
        TextUnit(
            id=TextUnit.make_id(conversation.id, 0, "Caroline: Hi Mel!"),
            document_id=conversation.id,
            chunk_index=0,
            text="Caroline: Hi Mel!",
            n_tokens=6,
            start_char=0,
            end_char=17,
            timestamp=conversation.timestamp,
            turn_ids=("D1:1",),
            speakers=("Caroline",),
        ),
        TextUnit(
            id=TextUnit.make_id(conversation.id, 18, conversation.text[18:]),
            document_id=conversation.id,
            chunk_index=1,
            text=conversation.text[18:],
            n_tokens=9,
            start_char=18,
            end_char=len(conversation.text),
            timestamp=conversation.timestamp,
            turn_ids=("D1:2",),
            speakers=("Melanie",),
        ),
        TextUnit(
            id=TextUnit.make_id(note.id, 0, note.text),
            document_id=note.id,
            chunk_index=0,
            text=note.text,
            n_tokens=4,
            start_char=0,
            end_char=len(note.text),
        ),
    ]


def test_documents_roundtrip_with_turns_and_metadata(tmp_path: Path) -> None:
    documents = make_documents()
    path = tmp_path / "documents.parquet"

    write_documents(path, documents, make_units(documents))

    assert read_documents(path) == documents


def test_text_units_roundtrip(tmp_path: Path) -> None:
    units = make_units(make_documents())
    path = tmp_path / "text_units.parquet"

    write_text_units(path, units)

    assert read_text_units(path) == units


def test_documents_list_their_text_unit_ids_in_order(tmp_path: Path) -> None:
    documents = make_documents()
    units = make_units(documents)
    path = tmp_path / "documents.parquet"

    write_documents(path, documents, units)

    rows = pq.read_table(path).to_pylist()
    assert rows[0]["text_unit_ids"] == [units[0].id, units[1].id]
    assert rows[1]["text_unit_ids"] == [units[2].id]


def test_documents_table_has_graphrag_columns(tmp_path: Path) -> None:
    documents = make_documents()
    path = tmp_path / "documents.parquet"
    write_documents(path, documents, make_units(documents))

    table = pq.read_table(path)

    graphrag = ["id", "human_readable_id", "title", "text", "text_unit_ids"]
    assert table.column_names[: len(graphrag)] == graphrag
    assert {"source", "timestamp", "metadata", "turns"} <= set(table.column_names)
    assert table.column("human_readable_id").to_pylist() == [0, 1]
    assert table.column("id").to_pylist() == [d.id for d in documents]
    assert table.column("title").to_pylist() == [d.title for d in documents]
    text_unit_ids = table.schema.field("text_unit_ids").type
    assert pa.types.is_list(text_unit_ids)
    assert text_unit_ids.value_type == pa.string()
    assert table.column("turns").to_pylist()[0][0] == {
        "id": "D1:1",
        "speaker": "Caroline",
        "start": 0,
        "end": 17,
    }


def test_text_units_table_has_graphrag_columns(tmp_path: Path) -> None:
    units = make_units(make_documents())
    path = tmp_path / "text_units.parquet"
    write_text_units(path, units)

    table = pq.read_table(path)

    graphrag = ["id", "human_readable_id", "text", "n_tokens", "document_ids"]
    assert table.column_names[: len(graphrag)] == graphrag
    extra = {"chunk_index", "start_char", "end_char", "timestamp", "turn_ids", "speakers"}
    assert extra <= set(table.column_names)
    assert table.column("human_readable_id").to_pylist() == [0, 1, 2]
    assert table.column("n_tokens").to_pylist() == [6, 9, 4]
    assert table.column("document_ids").to_pylist() == [[u.document_id] for u in units]
    assert table.schema.field("n_tokens").type == pa.int64()
    assert table.schema.field("document_ids").type.value_type == pa.string()


def test_empty_tables_roundtrip(tmp_path: Path) -> None:
    write_documents(tmp_path / "d.parquet", [], [])
    write_text_units(tmp_path / "u.parquet", [])

    assert read_documents(tmp_path / "d.parquet") == []
    assert read_text_units(tmp_path / "u.parquet") == []
    assert pq.read_table(tmp_path / "u.parquet").column_names[0] == "id"


def test_writing_replaces_the_old_table_and_leaves_no_temp_files(tmp_path: Path) -> None:
    units = make_units(make_documents())
    path = tmp_path / "text_units.parquet"
    write_text_units(path, units)

    write_text_units(path, units[:1])

    assert read_text_units(path) == units[:1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["text_units.parquet"]


@pytest.mark.parametrize("reader", [read_documents, read_text_units])
def test_reading_a_missing_table_says_to_run_ingest(tmp_path: Path, reader: object) -> None:
    missing = tmp_path / "workspace" / "table.parquet"

    with pytest.raises(RagtuneError) as caught:
        reader(missing)  # type: ignore[operator]

    message = str(caught.value)
    assert str(missing) in message
    assert "ragtune ingest" in message
