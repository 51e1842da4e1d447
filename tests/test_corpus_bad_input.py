"""Bad corpora: every problem is a `CorpusError` naming the file, the place and the problem."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

from ragtune.corpus import load_corpus
from ragtune.errors import CorpusError, RagtuneError
from support import minimal_locomo_record, write


def corpus_error(path: Path, corpus_format: str = "auto", *, one_line: bool = True) -> str:
    """The message of the `CorpusError` that loading `path` raises (one line, unless told)."""
    with pytest.raises(CorpusError) as caught:
        load_corpus(path, corpus_format)  # type: ignore[arg-type]
    assert isinstance(caught.value, RagtuneError)
    message = str(caught.value)
    if one_line:
        assert "\n" not in message, message
    return message


# --- files that cannot be read as text ---------------------------------------------------------


def test_dangling_symlink_in_a_folder_is_unreadable(tmp_path: Path) -> None:
    corpus = tmp_path / "notes"
    write(corpus / "fine.md", "Fine")
    link = corpus / "x.md"
    link.symlink_to(tmp_path / "missing-target.md")

    message = corpus_error(corpus)

    assert str(link) in message
    assert "is a symbolic link to a missing file" in message


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0,
    reason="root can read files whatever their mode",
)
def test_file_without_read_permission_is_unreadable(tmp_path: Path) -> None:
    corpus = tmp_path / "notes"
    locked = write(corpus / "locked.md", "secret")
    locked.chmod(0)
    try:
        message = corpus_error(corpus)
    finally:
        locked.chmod(0o644)

    assert str(locked) in message
    assert "cannot read the file" in message
    assert "Permission denied" in message


def test_binary_file_is_refused(tmp_path: Path) -> None:
    corpus = tmp_path / "notes"
    write(corpus / "a.md", "Fine")
    binary = write(corpus / "image.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")

    message = corpus_error(corpus)

    assert str(binary) in message
    assert "binary file" in message
    assert "NUL" in message


def test_non_utf8_file_is_refused(tmp_path: Path) -> None:
    latin1 = write(tmp_path / "notes" / "cafe.txt", b"caf\xe9 au lait")

    message = corpus_error(tmp_path / "notes")

    assert str(latin1) in message
    assert "not UTF-8" in message
    assert "0xe9" in message
    assert "offset 3" in message


def test_non_utf8_jsonl_is_refused(tmp_path: Path) -> None:
    corpus = write(tmp_path / "r.jsonl", b'{"text": "caf\xe9"}\n')

    message = corpus_error(corpus)

    assert str(corpus) in message
    assert "not UTF-8" in message


def test_binary_locomo_json_is_refused(tmp_path: Path) -> None:
    corpus = write(tmp_path / "conv.json", b"[\x00]")

    message = corpus_error(corpus, "locomo")

    assert str(corpus) in message
    assert "binary file" in message


# --- empty and missing corpora -----------------------------------------------------------------


def test_empty_folder_is_an_empty_corpus(tmp_path: Path) -> None:
    corpus = tmp_path / "empty"
    corpus.mkdir()
    write(corpus / "not-a-note.pdf", "x")

    message = corpus_error(corpus)

    assert str(corpus) in message
    assert "empty corpus" in message
    assert ".md" in message


def test_folder_of_whitespace_files_is_an_empty_corpus(tmp_path: Path) -> None:
    corpus = tmp_path / "blank"
    write(corpus / "a.md", "   \n\n")
    write(corpus / "b.txt", "\t")

    message = corpus_error(corpus)

    assert str(corpus) in message
    assert "empty corpus" in message
    assert "no documents with text" in message


def test_jsonl_of_blank_lines_is_an_empty_corpus(tmp_path: Path) -> None:
    corpus = write(tmp_path / "blank.jsonl", "\n   \n\n")

    message = corpus_error(corpus)

    assert str(corpus) in message
    assert "empty corpus" in message


def test_nonexistent_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "notes"

    message = corpus_error(missing)

    assert str(missing) in message
    assert "no such file or folder" in message


def test_unknown_format_name(tmp_path: Path) -> None:
    corpus = write(tmp_path / "n.md", "x")

    message = corpus_error(corpus, "csv")

    assert "unknown corpus format 'csv'" in message


def test_jsonl_format_forced_on_a_folder(tmp_path: Path) -> None:
    write(tmp_path / "notes" / "n.md", "x")

    message = corpus_error(tmp_path / "notes", "jsonl")

    assert str(tmp_path / "notes") in message
    assert "needs a file, not a folder" in message


def test_jsonl_format_forced_on_a_text_file(tmp_path: Path) -> None:
    corpus = write(tmp_path / "note.txt", "Just some prose.\n")

    message = corpus_error(corpus, "jsonl")

    assert str(corpus) in message
    assert "line 1" in message
    assert "invalid JSON" in message


# --- JSONL records -----------------------------------------------------------------------------


def test_malformed_jsonl_line_names_the_line(tmp_path: Path) -> None:
    corpus = write(tmp_path / "r.jsonl", '{"text": "ok"}\n\n{"text": "broken"\n')

    message = corpus_error(corpus)

    assert message.startswith(f"{corpus}: line 3: ")
    assert "invalid JSON" in message
    assert "column" in message


def test_jsonl_line_that_is_not_an_object(tmp_path: Path) -> None:
    corpus = write(tmp_path / "r.jsonl", '{"text": "ok"}\n["text", "in a list"]\n')

    message = corpus_error(corpus)

    assert message.startswith(f"{corpus}: line 2: ")
    assert "expected a JSON object, got list" in message


def test_jsonl_record_without_text(tmp_path: Path) -> None:
    corpus = write(tmp_path / "r.jsonl", '{"body": "no text key"}\n')

    message = corpus_error(corpus)

    assert message.startswith(f"{corpus}: line 1: ")
    assert 'has no "text" field' in message


def test_jsonl_record_with_non_string_text(tmp_path: Path) -> None:
    corpus = write(tmp_path / "r.jsonl", '{"text": "ok"}\n{"text": 42}\n')

    message = corpus_error(corpus)

    assert message.startswith(f"{corpus}: line 2: ")
    assert 'non-string "text"' in message


def test_jsonl_record_with_empty_text(tmp_path: Path) -> None:
    corpus = write(tmp_path / "r.jsonl", '{"text": "ok"}\n{"text": "  \\n "}\n')

    message = corpus_error(corpus)

    assert message.startswith(f"{corpus}: line 2: ")
    assert 'empty "text"' in message


def test_jsonl_record_with_bad_timestamp(tmp_path: Path) -> None:
    corpus = write(tmp_path / "r.jsonl", '{"text": "ok", "timestamp": "last Tuesday"}\n')

    message = corpus_error(corpus)

    assert message.startswith(f"{corpus}: line 1: ")
    assert '"timestamp"' in message
    assert "'last Tuesday' is not an ISO 8601" in message


def test_jsonl_record_with_numeric_timestamp(tmp_path: Path) -> None:
    corpus = write(tmp_path / "r.jsonl", '{"text": "ok", "timestamp": 1700000000}\n')

    message = corpus_error(corpus)

    assert "line 1" in message
    assert "not an ISO 8601" in message


def test_jsonl_record_with_bad_id(tmp_path: Path) -> None:
    corpus = write(tmp_path / "r.jsonl", '{"text": "ok", "id": [1]}\n')

    message = corpus_error(corpus)

    assert message.startswith(f"{corpus}: line 1: ")
    assert '"id" must be a string or an integer' in message


def test_jsonl_record_with_bad_title(tmp_path: Path) -> None:
    corpus = write(tmp_path / "r.jsonl", '{"text": "ok", "title": {"a": 1}}\n')

    message = corpus_error(corpus)

    assert message.startswith(f"{corpus}: line 1: ")
    assert '"title" must be a string' in message


def test_jsonl_duplicate_records_are_refused(tmp_path: Path) -> None:
    corpus = write(tmp_path / "r.jsonl", '{"id": "a", "text": "x"}\n{"id": "a", "text": "x"}\n')

    message = corpus_error(corpus)

    assert message.startswith(f"{corpus}: line 2: duplicate \"id\" 'a' (also on line 1)")


# --- front matter ------------------------------------------------------------------------------


BAD_FRONT_MATTER = "---\ntitle: ok\ntags: [unclosed\n---\nBody\n"


def test_invalid_front_matter_yaml(tmp_path: Path) -> None:
    note = write(tmp_path / "notes" / "bad.md", BAD_FRONT_MATTER)

    message = corpus_error(tmp_path / "notes", one_line=False)

    # The YAML problem is on line 3 of the file (line 2 of the front matter).
    assert message.startswith(f"{note}: line 3: invalid front matter YAML")


def test_invalid_front_matter_yaml_error_is_one_line(tmp_path: Path) -> None:
    """RagtuneError promises one line; PyYAML's multi-line error text must not leak in."""
    write(tmp_path / "notes" / "bad.md", BAD_FRONT_MATTER)

    message = corpus_error(tmp_path / "notes", one_line=False)

    assert message.splitlines() == [message]


def test_front_matter_that_is_not_a_mapping(tmp_path: Path) -> None:
    note = write(tmp_path / "notes" / "list.md", "---\n- a\n- b\n---\nBody\n")

    message = corpus_error(tmp_path / "notes")

    assert str(note) in message
    assert "front matter must be a YAML mapping" in message


def test_front_matter_bad_date(tmp_path: Path) -> None:
    note = write(tmp_path / "notes" / "when.md", "---\ndate: sometime in spring\n---\nBody\n")

    message = corpus_error(tmp_path / "notes")

    assert str(note) in message
    assert "front matter 'date'" in message
    assert "not an ISO 8601" in message


# --- LoCoMo ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_first_record(locomo_dev: Path) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(locomo_dev.read_text(encoding="utf-8"))[0]
    return record


def write_locomo(path: Path, records: list[Any]) -> Path:
    return write(path, json.dumps(records))


def test_minimal_locomo_fixture_is_valid(tmp_path: Path) -> None:
    corpus = write_locomo(tmp_path / "ok.json", [minimal_locomo_record()])

    documents = load_corpus(corpus)

    assert [d.metadata["session"] for d in documents] == [1, 2]


def test_locomo_not_json(tmp_path: Path) -> None:
    corpus = write(tmp_path / "conv.json", '[{"sample_id": "conv-1",\n  "conversation": }]')

    message = corpus_error(corpus)

    assert str(corpus) in message
    assert "invalid JSON" in message
    assert "line 2" in message


def test_locomo_not_json_with_forced_format(tmp_path: Path) -> None:
    corpus = write(tmp_path / "conv.txt", "hello")

    message = corpus_error(corpus, "locomo")

    assert str(corpus) in message
    assert "invalid JSON" in message


def test_locomo_record_missing_sample_id(tmp_path: Path, real_first_record: dict) -> None:
    good = copy.deepcopy(real_first_record)
    bad = copy.deepcopy(real_first_record)
    del bad["sample_id"]
    corpus = write_locomo(tmp_path / "conv.json", [good, bad])

    message = corpus_error(corpus)

    assert message.startswith(f"{corpus}: record 2: ")
    assert 'has no "sample_id"' in message


def test_locomo_record_missing_conversation(tmp_path: Path) -> None:
    bad = minimal_locomo_record("conv-b")
    del bad["conversation"]
    corpus = write_locomo(tmp_path / "conv.json", [minimal_locomo_record("conv-a"), bad])

    message = corpus_error(corpus, "locomo")

    assert message.startswith(f"{corpus}: record 2 (conv-b): ")
    assert 'has no "conversation" object' in message


def test_locomo_record_that_is_not_an_object(tmp_path: Path) -> None:
    corpus = write_locomo(tmp_path / "conv.json", [minimal_locomo_record(), "oops"])

    message = corpus_error(corpus, "locomo")

    assert message.startswith(f"{corpus}: record 2: ")
    assert "expected a conversation object" in message


def test_locomo_missing_speaker_a(tmp_path: Path, real_first_record: dict) -> None:
    bad = copy.deepcopy(real_first_record)
    del bad["conversation"]["speaker_a"]
    corpus = write_locomo(tmp_path / "conv.json", [bad])

    message = corpus_error(corpus)

    assert message.startswith(f"{corpus}: record 1 (conv-26): ")
    assert "no 'speaker_a'" in message


def test_locomo_conversation_without_sessions(tmp_path: Path) -> None:
    bad = minimal_locomo_record()
    conversation = bad["conversation"]
    for key in [k for k in conversation if k.startswith("session_")]:
        del conversation[key]
    corpus = write_locomo(tmp_path / "conv.json", [bad])

    message = corpus_error(corpus)

    assert "record 1 (conv-x)" in message
    assert "no sessions" in message


def test_locomo_session_that_is_not_a_list(tmp_path: Path) -> None:
    bad = minimal_locomo_record()
    bad["conversation"]["session_2"] = {"speaker": "Ann"}
    corpus = write_locomo(tmp_path / "conv.json", [bad])

    message = corpus_error(corpus)

    assert "record 1 (conv-x)" in message
    assert "session_2 is not a list of turns" in message


def test_locomo_session_without_date_time(tmp_path: Path, real_first_record: dict) -> None:
    bad = copy.deepcopy(real_first_record)
    del bad["conversation"]["session_3_date_time"]
    corpus = write_locomo(tmp_path / "conv.json", [bad])

    message = corpus_error(corpus)

    assert message.startswith(f"{corpus}: record 1 (conv-26): ")
    assert "session_3 has no 'session_3_date_time'" in message


def test_locomo_bad_date_format(tmp_path: Path) -> None:
    bad = minimal_locomo_record()
    bad["conversation"]["session_2_date_time"] = "2024-02-02 22:30"
    corpus = write_locomo(tmp_path / "conv.json", [minimal_locomo_record("conv-ok"), bad])

    message = corpus_error(corpus)

    assert message.startswith(f"{corpus}: record 2 (conv-x): ")
    assert "session_2_date_time '2024-02-02 22:30'" in message
    assert "1:56 pm on 8 May, 2023" in message


@pytest.mark.parametrize("field", ["text", "speaker", "dia_id"])
def test_locomo_turn_missing_a_field(tmp_path: Path, field: str) -> None:
    bad = minimal_locomo_record()
    del bad["conversation"]["session_2"][2][field]
    corpus = write_locomo(tmp_path / "conv.json", [minimal_locomo_record("conv-ok"), bad])

    message = corpus_error(corpus)

    assert message.startswith(f"{corpus}: record 2 (conv-x): ")
    assert f"session_2 turn 3 has no {field!r}" in message


def test_locomo_real_record_turn_missing_text(tmp_path: Path, real_first_record: dict) -> None:
    bad = copy.deepcopy(real_first_record)
    del bad["conversation"]["session_5"][3]["text"]
    corpus = write_locomo(tmp_path / "conv.json", [bad])

    message = corpus_error(corpus)

    assert message.startswith(f"{corpus}: record 1 (conv-26): ")
    assert "session_5 turn 4 has no 'text'" in message


def test_locomo_turn_that_is_not_an_object(tmp_path: Path) -> None:
    bad = minimal_locomo_record()
    bad["conversation"]["session_1"][1] = "Bob: Hi Ann."
    corpus = write_locomo(tmp_path / "conv.json", [bad])

    message = corpus_error(corpus)

    assert "record 1 (conv-x)" in message
    assert "session_1 turn 2 is not an object" in message


def test_locomo_with_no_turns_at_all_is_an_empty_corpus(tmp_path: Path) -> None:
    bad = minimal_locomo_record()
    bad["conversation"]["session_1"] = []
    bad["conversation"]["session_2"] = []
    corpus = write_locomo(tmp_path / "conv.json", [bad])

    message = corpus_error(corpus)

    assert str(corpus) in message
    assert "empty corpus" in message
