"""Corpus loaders: text/Markdown folders, single files, JSONL records and LoCoMo conversations."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import pytest

from ragtune.corpus import Document, detect_format, load_corpus
from ragtune.corpus.jsonl import load_jsonl
from ragtune.corpus.locomo import load_locomo, parse_locomo_date
from ragtune.corpus.text_files import list_text_files, load_text_files
from ragtune.errors import CorpusError
from support import write


def write_jsonl(path: Path, records: list[object]) -> Path:
    return write(path, "".join(json.dumps(record) + "\n" for record in records))


def by_source(documents: list[Document]) -> dict[str, Document]:
    return {document.source: document for document in documents}


# --- text folders -----------------------------------------------------------------------------


def test_text_folder_loads_txt_md_markdown_recursively_in_sorted_order(tmp_path: Path) -> None:
    write(tmp_path / "b.md", "Bee note")
    write(tmp_path / "a.txt", "Ay note")
    write(tmp_path / "sub" / "deeper" / "c.markdown", "Sea note")
    write(tmp_path / "sub" / "UPPER.MD", "Upper-case suffix")
    write(tmp_path / "ignored.rst", "not a note")
    write(tmp_path / "ignored.json", "{}")

    documents = load_corpus(tmp_path)

    assert [d.source for d in documents] == [
        "a.txt",
        "b.md",
        "sub/UPPER.MD",
        "sub/deeper/c.markdown",
    ]
    assert [d.text for d in documents] == ["Ay note", "Bee note", "Upper-case suffix", "Sea note"]


def test_text_folder_skips_hidden_folders_and_files(tmp_path: Path) -> None:
    write(tmp_path / "visible.md", "kept")
    write(tmp_path / ".git" / "notes.md", "inside a hidden folder")
    write(tmp_path / "sub" / ".obsidian" / "cache.md", "inside a nested hidden folder")
    write(tmp_path / ".hidden.md", "a hidden file")

    assert [d.source for d in load_corpus(tmp_path)] == ["visible.md"]


def test_list_text_files_ignores_folders_named_like_notes(tmp_path: Path) -> None:
    (tmp_path / "folder.md").mkdir()
    note = write(tmp_path / "folder.md" / "inner.txt", "x")

    assert list_text_files(tmp_path) == [note]


def test_front_matter_title_date_and_other_keys(tmp_path: Path) -> None:
    write(
        tmp_path / "trip.md",
        "---\n"
        "title: Trip to Lisbon\n"
        "date: 2024-03-01\n"
        "tags: [travel, food]\n"
        "author: Ana\n"
        "rating: 4\n"
        "---\n"
        "# A heading that is not the title\n\nWe ate pastéis de nata.\n",
    )

    [document] = load_corpus(tmp_path)

    assert document.title == "Trip to Lisbon"
    assert document.timestamp == "2024-03-01T00:00:00"
    assert document.metadata == {"tags": ["travel", "food"], "author": "Ana", "rating": 4}
    assert document.text == "# A heading that is not the title\n\nWe ate pastéis de nata."
    assert "---" not in document.text


def test_front_matter_timestamp_key_with_time_is_iso(tmp_path: Path) -> None:
    write(tmp_path / "n.md", "---\ntimestamp: 2024-03-01T09:30:00\n---\nBody.\n")
    write(tmp_path / "z.md", "---\ndate: '2024-03-02T10:15:00Z'\n---\nZulu body.\n")

    documents = by_source(load_corpus(tmp_path))

    assert documents["n.md"].timestamp == "2024-03-01T09:30:00"
    assert dt.datetime.fromisoformat(documents["z.md"].timestamp or "") == dt.datetime(
        2024, 3, 2, 10, 15, tzinfo=dt.UTC
    )
    assert documents["n.md"].metadata == {}


def test_front_matter_non_json_values_become_strings(tmp_path: Path) -> None:
    write(tmp_path / "n.md", "---\nseen: 2024-01-02\ndate: 2024-01-01\n---\nBody.\n")

    [document] = load_corpus(tmp_path)

    assert document.metadata == {"seen": "2024-01-02"}
    json.dumps(document.metadata)  # JSON-serializable


def test_first_markdown_heading_is_the_title(tmp_path: Path) -> None:
    write(tmp_path / "n.md", "Some intro line.\n\n## Second-level heading ##\n\n# Later heading\n")

    [document] = load_corpus(tmp_path)

    assert document.title == "Second-level heading"
    assert document.timestamp is None


def test_file_stem_is_the_title_without_heading_or_front_matter(tmp_path: Path) -> None:
    write(tmp_path / "reading-list.txt", "Dune\nThe Left Hand of Darkness\n")

    [document] = load_corpus(tmp_path)

    assert document.title == "reading-list"
    assert document.metadata == {}


def test_empty_files_are_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path / "empty.md", "")
    write(tmp_path / "blank.txt", "  \n\t\n")
    write(tmp_path / "only-front-matter.md", "---\ntitle: Nothing\n---\n\n")
    write(tmp_path / "real.md", "Real content")

    with caplog.at_level(logging.WARNING, logger="ragtune"):
        documents = load_corpus(tmp_path)

    assert [d.source for d in documents] == ["real.md"]
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for name in ("empty.md", "blank.txt", "only-front-matter.md"):
        assert any(name in message and "empty" in message for message in warned), warned
    assert not any("real.md" in message for message in warned)


def test_utf8_bom_is_accepted_and_dropped(tmp_path: Path) -> None:
    write(tmp_path / "bom.md", "\ufeff---\ntitle: With BOM\n---\nCafé au lait\n".encode())

    [document] = load_corpus(tmp_path)

    assert document.title == "With BOM"
    assert document.text == "Café au lait"
    assert "\ufeff" not in document.text


def test_crlf_front_matter_is_parsed(tmp_path: Path) -> None:
    write(tmp_path / "win.md", b"---\r\ntitle: Windows\r\n---\r\nLine one\r\nLine two\r\n")

    [document] = load_corpus(tmp_path)

    assert document.title == "Windows"
    assert document.text.startswith("Line one")


def test_text_document_text_is_stripped(tmp_path: Path) -> None:
    write(tmp_path / "n.txt", "\n\n   indented start\nend   \n\n")

    [document] = load_corpus(tmp_path)

    assert document.text == "indented start\nend"


def test_single_text_file_corpus(tmp_path: Path) -> None:
    note = write(tmp_path / "notes" / "solo.md", "# Solo\n\nOnly note.")
    write(tmp_path / "notes" / "other.md", "Not loaded")

    documents = load_corpus(note)

    assert len(documents) == 1
    assert documents[0].source == "solo.md"
    assert documents[0].title == "Solo"
    assert detect_format(note) == "text"


def test_text_document_ids_are_stable_and_depend_on_text_and_path(tmp_path: Path) -> None:
    write(tmp_path / "a" / "n.md", "Same text")
    write(tmp_path / "b" / "n.md", "Same text")

    first = load_corpus(tmp_path)
    second = load_corpus(tmp_path)

    assert [d.id for d in first] == [d.id for d in second]
    assert first[0].id != first[1].id
    assert all(d.id.startswith("doc-") for d in first)
    write(tmp_path / "a" / "n.md", "Changed text")
    assert load_corpus(tmp_path)[0].id != first[0].id


def test_load_text_files_with_explicit_file_list(tmp_path: Path) -> None:
    write(tmp_path / "a.md", "A")
    b = write(tmp_path / "b.md", "B")

    documents = list(load_text_files(tmp_path, [b]))

    assert [d.source for d in documents] == ["b.md"]


# --- JSONL ------------------------------------------------------------------------------------


def test_jsonl_records_with_id_title_timestamp_and_metadata(tmp_path: Path) -> None:
    corpus = write_jsonl(
        tmp_path / "records.jsonl",
        [
            {
                "id": "r1",
                "title": "First",
                "text": "  Alpha text.  ",
                "timestamp": "2024-02-03T04:05:06",
                "author": "Bo",
                "tags": ["x"],
            },
            {"id": 7, "text": "Beta text."},
            {"text": "Gamma text.", "timestamp": "2024-02-04"},
        ],
    )

    documents = load_corpus(corpus)

    assert [d.text for d in documents] == ["Alpha text.", "Beta text.", "Gamma text."]
    assert [d.source for d in documents] == [
        "records.jsonl#r1",
        "records.jsonl#7",
        "records.jsonl#line-3",
    ]
    assert [d.title for d in documents] == ["First", "7", "records 3"]
    assert [d.timestamp for d in documents] == [
        "2024-02-03T04:05:06",
        None,
        "2024-02-04T00:00:00",
    ]
    assert documents[0].metadata == {"author": "Bo", "tags": ["x"]}
    assert documents[1].metadata == {}
    assert detect_format(corpus) == "jsonl"


def test_jsonl_blank_lines_are_skipped(tmp_path: Path) -> None:
    corpus = write(
        tmp_path / "r.jsonl",
        '\n{"text": "one"}\n   \n\n{"text": "two"}\n\t\n',
    )

    documents = load_corpus(corpus)

    assert [d.text for d in documents] == ["one", "two"]
    # The line number (not the record number) names records without an id.
    assert [d.source for d in documents] == ["r.jsonl#line-2", "r.jsonl#line-5"]


def test_ndjson_suffix_is_jsonl(tmp_path: Path) -> None:
    corpus = write_jsonl(tmp_path / "r.ndjson", [{"text": "one"}])

    assert detect_format(corpus) == "jsonl"
    assert [d.text for d in load_corpus(corpus)] == ["one"]


def test_jsonl_ids_are_stable_for_the_same_input(tmp_path: Path) -> None:
    records = [{"id": "a", "text": "Alpha"}, {"text": "Beta"}]
    first = load_corpus(write_jsonl(tmp_path / "one" / "r.jsonl", records))
    second = load_corpus(write_jsonl(tmp_path / "two" / "r.jsonl", records))

    assert [d.id for d in first] == [d.id for d in second]
    assert len({d.id for d in first}) == 2


def test_jsonl_different_text_gives_a_different_id(tmp_path: Path) -> None:
    [before] = load_corpus(write_jsonl(tmp_path / "a" / "r.jsonl", [{"id": "x", "text": "Old"}]))
    [after] = load_corpus(write_jsonl(tmp_path / "b" / "r.jsonl", [{"id": "x", "text": "New"}]))

    assert before.id != after.id
    assert before.source == after.source


def test_load_jsonl_directly_yields_documents(tmp_path: Path) -> None:
    corpus = write_jsonl(tmp_path / "r.jsonl", [{"text": "one"}, {"text": "two"}])

    assert [d.text for d in load_jsonl(corpus)] == ["one", "two"]


# --- LoCoMo -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def locomo_source(locomo_dev: Path) -> list[dict]:
    data: list[dict] = json.loads(locomo_dev.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def locomo_documents(locomo_dev: Path) -> list[Document]:
    return load_corpus(locomo_dev)


def source_sessions(record: dict) -> dict[int, list[dict]]:
    """The non-empty sessions of one LoCoMo record, by number."""
    conversation = record["conversation"]
    sessions = {}
    for key, turns in conversation.items():
        parts = key.split("_")
        if len(parts) == 2 and parts[0] == "session" and parts[1].isdigit() and turns:
            sessions[int(parts[1])] = turns
    return sessions


def test_locomo_dev_file_is_detected(locomo_dev: Path) -> None:
    assert detect_format(locomo_dev) == "locomo"


def test_locomo_dev_has_70_session_documents(locomo_documents: list[Document]) -> None:
    assert len(locomo_documents) == 70
    counts: dict[str, int] = {}
    for document in locomo_documents:
        counts[document.metadata["sample_id"]] = counts.get(document.metadata["sample_id"], 0) + 1
    assert counts == {"conv-26": 19, "conv-30": 19, "conv-41": 32}
    assert len({d.id for d in locomo_documents}) == 70


def test_locomo_documents_are_in_session_order(locomo_documents: list[Document]) -> None:
    conv26 = [d for d in locomo_documents if d.metadata["sample_id"] == "conv-26"]
    assert [d.metadata["session"] for d in conv26] == list(range(1, 20))
    assert conv26[0].source == "locomo_dev.json#conv-26/session_1"
    assert conv26[0].title == "conv-26 session 1 (1:56 pm on 8 May, 2023)"
    assert conv26[0].metadata["speakers"] == ["Caroline", "Melanie"]


def test_locomo_every_document_has_an_iso_timestamp(
    locomo_documents: list[Document], locomo_source: list[dict]
) -> None:
    for document in locomo_documents:
        assert document.timestamp is not None
        parsed = dt.datetime.fromisoformat(document.timestamp)
        assert parsed.isoformat() == document.timestamp
        record = next(r for r in locomo_source if r["sample_id"] == document.metadata["sample_id"])
        date_key = f"session_{document.metadata['session']}_date_time"
        assert document.metadata["date_time"] == record["conversation"][date_key]
    first = locomo_documents[0]
    assert first.timestamp == "2023-05-08T13:56:00"


def test_parse_locomo_date() -> None:
    assert parse_locomo_date("1:56 pm on 8 May, 2023") == "2023-05-08T13:56:00"
    assert parse_locomo_date(" 12:09 am on 13 September, 2023 ") == "2023-09-13T00:09:00"
    with pytest.raises(ValueError):
        parse_locomo_date("8 May 2023")


def test_locomo_turn_ids_and_speakers_match_the_source_json(
    locomo_documents: list[Document], locomo_source: list[dict]
) -> None:
    checked = 0
    for record in locomo_source:
        sessions = source_sessions(record)
        documents = [d for d in locomo_documents if d.metadata["sample_id"] == record["sample_id"]]
        assert sorted(sessions) == [d.metadata["session"] for d in documents]
        for document in documents:
            raw_turns = sessions[document.metadata["session"]]
            assert [t.id for t in document.turns] == [t["dia_id"] for t in raw_turns]
            assert [t.speaker for t in document.turns] == [t["speaker"] for t in raw_turns]
            checked += len(raw_turns)
    assert checked == 1451


def test_locomo_text_lines_are_speaker_colon_text(
    locomo_documents: list[Document], locomo_source: list[dict]
) -> None:
    record = locomo_source[0]
    raw_turns = source_sessions(record)[1]
    document = locomo_documents[0]
    lines = document.text.split("\n")

    assert len(lines) == len(raw_turns)
    for line, raw in zip(lines, raw_turns, strict=True):
        assert line.startswith(f"{raw['speaker']}: {raw['text'].strip()}")
    assert lines[0] == "Caroline: Hey Mel! Good to see you! How have you been?"


def test_locomo_image_captions_are_rendered(
    locomo_documents: list[Document], locomo_source: list[dict]
) -> None:
    captioned = 0
    for record in locomo_source:
        sessions = source_sessions(record)
        for document in (
            d for d in locomo_documents if d.metadata["sample_id"] == record["sample_id"]
        ):
            raw_turns = sessions[document.metadata["session"]]
            for turn, raw in zip(document.turns, raw_turns, strict=True):
                line = document.text[turn.start : turn.end]
                caption = raw.get("blip_caption")
                if caption:
                    assert line.endswith(f" [shares an image: {caption.strip()}]")
                    captioned += 1
                else:
                    assert "[shares an image:" not in line
    assert captioned > 0
    d15 = next(
        t
        for t in locomo_documents[0].turns
        if t.id == "D1:5"  # a turn of conv-26 session 1 that shares a photo
    )
    assert (
        locomo_documents[0]
        .text[d15.start : d15.end]
        .endswith(
            "[shares an image: a photo of a dog walking past a wall with a painting of a woman]"
        )
    )


def test_locomo_turn_offsets_slice_back_to_the_rendered_lines(
    locomo_documents: list[Document],
) -> None:
    for document in locomo_documents:
        lines = document.text.split("\n")
        assert len(lines) == len(document.turns)
        for turn, line in zip(document.turns, lines, strict=True):
            assert document.text[turn.start : turn.end] == line
            assert line.startswith(f"{turn.speaker}: ")
        assert document.turns[-1].end == len(document.text)


def test_locomo_single_record_object_is_accepted(tmp_path: Path, locomo_source: list[dict]) -> None:
    record = locomo_source[0]
    corpus = write(tmp_path / "one.json", json.dumps(record))

    documents = load_corpus(corpus)

    assert detect_format(corpus) == "locomo"
    assert len(documents) == 19
    assert documents[0].source == "one.json#conv-26/session_1"


def test_locomo_empty_sessions_are_skipped(tmp_path: Path) -> None:
    record = {
        "sample_id": "tiny",
        "conversation": {
            "speaker_a": "Ann",
            "speaker_b": "Bob",
            "session_1_date_time": "9:00 am on 1 January, 2024",
            "session_1": [
                {"speaker": "Ann", "dia_id": "D1:1", "text": " Hi Bob! "},
                {"speaker": "Bob", "dia_id": "D1:2", "text": "Hi.", "blip_caption": "  "},
            ],
            "session_2_date_time": "9:00 am on 2 January, 2024",
            "session_2": [],
        },
    }
    corpus = write(tmp_path / "tiny.json", json.dumps([record]))

    documents = list(load_locomo(corpus))

    assert len(documents) == 1
    assert documents[0].text == "Ann: Hi Bob!\nBob: Hi."
    assert documents[0].timestamp == "2024-01-01T09:00:00"


# --- detect_format ----------------------------------------------------------------------------


def test_detect_format_folder_and_text_suffixes(tmp_path: Path) -> None:
    assert detect_format(tmp_path) == "text"
    assert detect_format(write(tmp_path / "n.md", "x")) == "text"
    assert detect_format(write(tmp_path / "n.TXT", "x")) == "text"
    assert detect_format(write(tmp_path / "n.markdown", "x")) == "text"
    assert detect_format(write(tmp_path / "n.jsonl", '{"text": "x"}')) == "jsonl"


def test_detect_format_refuses_non_locomo_json(tmp_path: Path) -> None:
    corpus = write(tmp_path / "records.json", json.dumps([{"text": "a"}]))

    with pytest.raises(CorpusError) as caught:
        detect_format(corpus)

    message = str(caught.value)
    assert str(corpus) in message
    assert "not a LoCoMo" in message
    assert "JSONL" in message


def test_detect_format_refuses_empty_json_list(tmp_path: Path) -> None:
    corpus = write(tmp_path / "empty.json", "[]")

    with pytest.raises(CorpusError, match="not a LoCoMo"):
        detect_format(corpus)


def test_detect_format_refuses_unknown_suffix(tmp_path: Path) -> None:
    corpus = write(tmp_path / "data.csv", "a,b\n")

    with pytest.raises(CorpusError) as caught:
        detect_format(corpus)

    message = str(caught.value)
    assert str(corpus) in message
    assert "'.csv'" in message
    assert "--format" in message


def test_detect_format_refuses_file_without_suffix(tmp_path: Path) -> None:
    corpus = write(tmp_path / "README", "text")

    with pytest.raises(CorpusError, match="without suffix"):
        detect_format(corpus)


def test_forced_text_format_reads_a_file_with_any_suffix(tmp_path: Path) -> None:
    corpus = write(tmp_path / "notes.log", "Log line")

    [document] = load_corpus(corpus, "text")

    assert document.text == "Log line"
    assert document.title == "notes"
