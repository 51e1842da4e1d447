"""`ragtune ingest` end to end, on good and bad corpora: in-process with click's `CliRunner`
(`run_ragtune`), except the tests marked `subprocess`, which run the installed console script to
prove what only a real process shows (the entry point's `--help`, the interpreter's traceback
with `--debug`, a quiet failure's exit status and lone stderr line).

Every run sets the chunking tokenizer to the tiny test model, so no test loads the embedded one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from ragtune.cli import cli
from ragtune.corpus import read_documents, read_text_units
from ragtune.errors import RagtuneError
from support import Run, minimal_locomo_record, run_console_script, run_ragtune, visible_lines

SUMMARY = re.compile(
    r"^ingested (\d+) documents into (\d+) text units \((\d+) tokens\) in \d+\.\d s -> (.+)$"
)
WORKSPACE_FILES = ("documents.parquet", "text_units.parquet", "memory.yaml", "stages.json")


@pytest.fixture(scope="module")
def tokenizer_override(tiny_model_dir: Path) -> str:
    return f"chunking.tokenizer=hf:{tiny_model_dir}"


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    corpus = tmp_path / "notes"
    (corpus / "trips").mkdir(parents=True)
    (corpus / "trips" / "azores.md").write_text(
        "---\ntitle: Azores trip\ndate: 2024-04-22\ntags: [travel]\n---\n"
        + "We hiked around the crater lake of Sete Cidades. " * 30,
        encoding="utf-8",
    )
    (corpus / "kayak.md").write_text(
        "# Kayak club\n\nThe kayak club meets on Sundays at the harbour.\n", encoding="utf-8"
    )
    (corpus / "reading-list.txt").write_text("Dune\nThe Left Hand of Darkness\n", encoding="utf-8")
    return corpus


def snapshot(workspace: Path) -> dict[str, bytes]:
    return {name: (workspace / name).read_bytes() for name in WORKSPACE_FILES}


# --- good paths -------------------------------------------------------------------------------


@pytest.mark.subprocess
def test_help() -> None:
    # The installed entry point (`ragtune.cli:main`) runs the command group.
    result = run_console_script("--help")

    assert result.returncode == 0, result.stderr
    assert "ingest" in result.stdout
    assert "--debug" in result.stdout
    assert result.stderr == ""


def test_ingest_help() -> None:
    result = run_ragtune("ingest", "--help")

    assert result.returncode == 0, result.stderr
    for words in ("WORKSPACE", "--corpus", "--format", "[KEY=VALUE]", "auto", "locomo"):
        assert words in result.stdout
    assert result.stderr == ""


def test_ingest_notes_folder(tmp_path: Path, notes: Path, tokenizer_override: str) -> None:
    workspace = tmp_path / "memory"

    result = run_ragtune(
        "ingest", workspace, "--corpus", notes, tokenizer_override, "chunking.size=200",
        "chunking.overlap=20",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    [summary] = result.stdout.splitlines()
    match = SUMMARY.match(summary)
    assert match, summary
    documents = read_documents(workspace / "documents.parquet")
    units = read_text_units(workspace / "text_units.parquet")
    assert int(match.group(1)) == len(documents) == 3
    assert int(match.group(2)) == len(units)
    assert int(match.group(3)) == sum(u.n_tokens for u in units)
    assert Path(match.group(4)) == workspace
    assert [d.source for d in documents] == ["kayak.md", "reading-list.txt", "trips/azores.md"]
    azores = documents[2]
    assert azores.title == "Azores trip"
    assert azores.timestamp == "2024-04-22T00:00:00"
    assert azores.metadata == {"tags": ["travel"]}
    azores_units = [u for u in units if u.document_id == azores.id]
    assert len(azores_units) > 1  # the long note is cut into several units of <= 200 tokens
    assert all(u.n_tokens <= 200 for u in units)
    assert all(u.timestamp == "2024-04-22T00:00:00" for u in azores_units)
    assert {u.document_id for u in units} == {d.id for d in documents}


def test_memory_yaml_records_absolute_corpus_path_and_overrides(
    tmp_path: Path, notes: Path, tokenizer_override: str, tiny_model_dir: Path
) -> None:
    workspace = tmp_path / "memory"

    # A relative --corpus, from the notes' parent folder.
    result = run_ragtune(
        "ingest", "memory", "--corpus", "notes", tokenizer_override, "chunking.size=200",
        cwd=tmp_path,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    saved = yaml.safe_load((workspace / "memory.yaml").read_text(encoding="utf-8"))
    assert saved["corpus"]["path"] == str(notes.resolve())
    assert Path(saved["corpus"]["path"]).is_absolute()
    assert saved["corpus"]["format"] == "auto"
    assert saved["chunking"] == {
        "size": 200,
        "overlap": 100,
        "tokenizer": f"hf:{tiny_model_dir}",
    }
    assert saved["model"] == "embedded"


def test_rerun_without_corpus_reuses_memory_yaml(
    tmp_path: Path, notes: Path, tokenizer_override: str
) -> None:
    workspace = tmp_path / "memory"
    first = run_ragtune(
        "ingest", workspace, "--corpus", notes, tokenizer_override, "chunking.size=200"
    )
    assert first.returncode == 0, first.stderr
    units_before = read_text_units(workspace / "text_units.parquet")
    (notes / "new.md").write_text("A note added later.", encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    second = run_ragtune("ingest", workspace, cwd=elsewhere)

    assert second.returncode == 0, second.stderr
    documents = read_documents(workspace / "documents.parquet")
    assert "new.md" in [d.source for d in documents]
    assert SUMMARY.match(second.stdout.strip()).group(1) == "4"  # type: ignore[union-attr]
    units_after = read_text_units(workspace / "text_units.parquet")
    # Same settings from memory.yaml (size 200, tiny tokenizer): the old units are unchanged.
    assert {u.id for u in units_before} <= {u.id for u in units_after}
    saved = yaml.safe_load((workspace / "memory.yaml").read_text(encoding="utf-8"))
    assert saved["chunking"]["size"] == 200
    assert saved["corpus"]["path"] == str(notes.resolve())


def test_ingest_locomo_dev(tmp_path: Path, locomo_dev: Path, tokenizer_override: str) -> None:
    workspace = tmp_path / "memory"

    result = run_ragtune("ingest", workspace, "--corpus", locomo_dev, tokenizer_override)

    assert result.returncode == 0, result.stderr
    match = SUMMARY.match(result.stdout.strip())
    assert match, result.stdout
    assert match.group(1) == "70"
    documents = read_documents(workspace / "documents.parquet")
    units = read_text_units(workspace / "text_units.parquet")
    assert len(documents) == 70
    assert int(match.group(2)) == len(units)
    assert all(u.n_tokens <= 500 for u in units)
    assert all(d.turns and d.timestamp for d in documents)
    by_id = {d.id: d for d in documents}
    for unit in units:
        document = by_id[unit.document_id]
        assert unit.text == document.text[unit.start_char : unit.end_char]
        assert unit.turn_ids
        assert set(unit.turn_ids) <= {t.id for t in document.turns}
        assert unit.timestamp == document.timestamp
    all_turns = {t.id for d in documents if d.metadata["sample_id"] == "conv-26" for t in d.turns}
    assert "D1:1" in all_turns
    saved = yaml.safe_load((workspace / "memory.yaml").read_text(encoding="utf-8"))
    assert saved["corpus"]["path"] == str(locomo_dev.resolve())


def test_ingest_jsonl_with_forced_format(tmp_path: Path, tokenizer_override: str) -> None:
    corpus = tmp_path / "records.data"
    corpus.write_text('{"id": "a", "text": "Alpha."}\n{"id": "b", "text": "Beta."}\n')
    workspace = tmp_path / "memory"

    result = run_ragtune(
        "ingest", workspace, "--corpus", corpus, "--format", "jsonl", tokenizer_override
    )

    assert result.returncode == 0, result.stderr
    assert [d.source for d in read_documents(workspace / "documents.parquet")] == [
        "records.data#a",
        "records.data#b",
    ]
    saved = yaml.safe_load((workspace / "memory.yaml").read_text(encoding="utf-8"))
    assert saved["corpus"]["format"] == "jsonl"


# --- bad corpora ------------------------------------------------------------------------------

BadCorpus = Callable[[Path], tuple[Path, list[str]]]


def dangling_symlink(root: Path) -> tuple[Path, list[str]]:
    corpus = root / "notes"
    corpus.mkdir()
    (corpus / "ok.md").write_text("fine", encoding="utf-8")
    (corpus / "x.md").symlink_to(root / "gone.md")
    return corpus, [str(corpus / "x.md"), "is a symbolic link to a missing file"]


def binary_file(root: Path) -> tuple[Path, list[str]]:
    corpus = root / "notes"
    corpus.mkdir()
    (corpus / "photo.md").write_bytes(b"\x89PNG\x00\x00\x00")
    return corpus, [str(corpus / "photo.md"), "binary file"]


def latin1_file(root: Path) -> tuple[Path, list[str]]:
    corpus = root / "notes"
    corpus.mkdir()
    (corpus / "cafe.txt").write_bytes(b"caf\xe9")
    return corpus, [str(corpus / "cafe.txt"), "not UTF-8", "0xe9"]


def empty_folder(root: Path) -> tuple[Path, list[str]]:
    corpus = root / "notes"
    corpus.mkdir()
    return corpus, [str(corpus), "empty corpus"]


def whitespace_files(root: Path) -> tuple[Path, list[str]]:
    corpus = root / "notes"
    corpus.mkdir()
    (corpus / "a.md").write_text("\n \n", encoding="utf-8")
    return corpus, [str(corpus), "empty corpus"]


def missing_path(root: Path) -> tuple[Path, list[str]]:
    return root / "no-such-notes", [str(root / "no-such-notes"), "no such file or folder"]


def malformed_jsonl(root: Path) -> tuple[Path, list[str]]:
    corpus = root / "r.jsonl"
    corpus.write_text('{"text": "ok"}\n{"text": \n', encoding="utf-8")
    return corpus, [f"{corpus}: line 2:", "invalid JSON"]


def jsonl_without_text(root: Path) -> tuple[Path, list[str]]:
    corpus = root / "r.jsonl"
    corpus.write_text('{"body": "x"}\n', encoding="utf-8")
    return corpus, [f"{corpus}: line 1:", 'no "text" field']


def jsonl_bad_timestamp(root: Path) -> tuple[Path, list[str]]:
    corpus = root / "r.jsonl"
    corpus.write_text('{"text": "x", "timestamp": "yesterday"}\n', encoding="utf-8")
    return corpus, [f"{corpus}: line 1:", "'yesterday' is not an ISO 8601"]


def jsonl_of_blank_lines(root: Path) -> tuple[Path, list[str]]:
    corpus = root / "r.jsonl"
    corpus.write_text("\n\n  \n", encoding="utf-8")
    return corpus, [str(corpus), "empty corpus"]


def bad_front_matter(root: Path) -> tuple[Path, list[str]]:
    corpus = root / "notes"
    corpus.mkdir()
    (corpus / "n.md").write_text("---\ntags: [a\n---\nBody\n", encoding="utf-8")
    return corpus, [str(corpus / "n.md"), "invalid front matter YAML"]


def locomo_without_sample_id(root: Path) -> tuple[Path, list[str]]:
    record = minimal_locomo_record()
    del record["sample_id"]
    corpus = root / "conv.json"
    corpus.write_text(json.dumps([record]), encoding="utf-8")
    return corpus, [f"{corpus}: record 1:", '"sample_id"']


def locomo_bad_date(root: Path) -> tuple[Path, list[str]]:
    record = minimal_locomo_record()
    record["conversation"]["session_1_date_time"] = "2024-01-01"
    corpus = root / "conv.json"
    corpus.write_text(json.dumps([minimal_locomo_record("conv-ok"), record]), encoding="utf-8")
    return corpus, [f"{corpus}: record 2 (conv-x):", "session_1_date_time '2024-01-01'"]


def locomo_turn_without_dia_id(root: Path) -> tuple[Path, list[str]]:
    record = minimal_locomo_record()
    del record["conversation"]["session_1"][1]["dia_id"]  # type: ignore[index]
    corpus = root / "conv.json"
    corpus.write_text(json.dumps([record]), encoding="utf-8")
    return corpus, [f"{corpus}: record 1 (conv-x):", "session_1 turn 2 has no 'dia_id'"]


def other_json(root: Path) -> tuple[Path, list[str]]:
    corpus = root / "records.json"
    corpus.write_text('[{"text": "a"}]', encoding="utf-8")
    return corpus, [str(corpus), "not a LoCoMo conversation list"]


BAD_CORPORA: list[BadCorpus] = [
    dangling_symlink,
    binary_file,
    latin1_file,
    empty_folder,
    whitespace_files,
    missing_path,
    malformed_jsonl,
    jsonl_without_text,
    jsonl_bad_timestamp,
    jsonl_of_blank_lines,
    bad_front_matter,
    locomo_without_sample_id,
    locomo_bad_date,
    locomo_turn_without_dia_id,
    other_json,
]


@pytest.mark.parametrize("make_corpus", BAD_CORPORA, ids=lambda f: f.__name__)
def test_bad_corpus_is_one_error_line(
    tmp_path: Path, make_corpus: BadCorpus, tokenizer_override: str
) -> None:
    corpus, words = make_corpus(tmp_path)

    result = run_ragtune("ingest", tmp_path / "memory", "--corpus", corpus, tokenizer_override)

    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = visible_lines(result.stderr)
    # Skipped empty files are warned about (see test_corpus_loaders); nothing else is shown.
    # (The warning may share its line with the progress bar, so it is looked for anywhere.)
    warnings = [line for line in lines if "warning: " in line]
    assert all(line.endswith("empty file, skipped") for line in warnings)
    assert len(warnings) == (1 if make_corpus is whitespace_files else 0)
    others = [line for line in lines if line not in warnings]
    assert len(others) == 1, f"expected one error line, got: {others}"
    [line] = others
    assert line.startswith("error: ")
    for word in words:
        assert word in line
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("make_corpus", "run"),
    [
        # One in a real process: its exit status, and a stderr that nothing else (a library's
        # warning or bar, a Python warning) wrote to.
        pytest.param(latin1_file, run_console_script, marks=pytest.mark.subprocess),
        (malformed_jsonl, run_ragtune),
        (locomo_bad_date, run_ragtune),
    ],
    ids=["latin1_file-console_script", "malformed_jsonl", "locomo_bad_date"],
)
def test_bad_corpus_with_quiet_is_exactly_one_stderr_line(
    tmp_path: Path, make_corpus: BadCorpus, run: Callable[..., Run], tokenizer_override: str
) -> None:
    corpus, words = make_corpus(tmp_path)

    result = run("-q", "ingest", tmp_path / "memory", "--corpus", corpus, tokenizer_override)

    assert result.returncode == 1
    assert result.stderr.endswith("\n")
    assert result.stderr.count("\n") == 1
    assert "\r" not in result.stderr
    assert result.stderr.startswith("error: ")
    assert all(word in result.stderr for word in words)


@pytest.mark.subprocess
def test_debug_shows_the_traceback(tmp_path: Path, tokenizer_override: str) -> None:
    # In a real process: the interpreter prints the traceback that escapes `--debug` (in-process,
    # `test_debug_reraises_in_process` sees the exception itself).
    corpus, _ = latin1_file(tmp_path)

    result = run_console_script(
        "--debug", "ingest", tmp_path / "memory", "--corpus", corpus, tokenizer_override
    )

    assert result.returncode != 0
    assert "Traceback (most recent call last)" in result.stderr
    assert "CorpusError" in result.stderr
    assert "not UTF-8" in result.stderr


def test_forced_jsonl_on_a_text_file_is_a_clear_error(
    tmp_path: Path, tokenizer_override: str
) -> None:
    corpus = tmp_path / "note.txt"
    corpus.write_text("Just prose, not JSON.\n", encoding="utf-8")

    result = run_ragtune(
        "ingest", tmp_path / "memory", "--corpus", corpus, "--format", "jsonl", tokenizer_override
    )

    assert result.returncode != 0
    [line] = visible_lines(result.stderr)
    assert line.startswith(f"error: {corpus}: line 1: invalid JSON")
    assert "Traceback" not in result.stderr


def test_unknown_override_key_lists_its_sections_keys(tmp_path: Path, notes: Path) -> None:
    result = run_ragtune("ingest", tmp_path / "memory", "--corpus", notes, "chunking.sise=300")

    assert result.returncode != 0
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: command line: unknown setting 'chunking.sise'")
    assert "did you mean chunking.size? the settings of chunking: size, overlap, tokenizer" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr


def test_no_corpus_given(tmp_path: Path) -> None:
    result = run_ragtune("ingest", tmp_path / "memory")

    assert result.returncode != 0
    assert result.stderr == "error: no corpus given; pass --corpus PATH (or set corpus.path)\n"


def test_workspace_that_is_a_file(tmp_path: Path, notes: Path) -> None:
    workspace = tmp_path / "memory"
    workspace.write_text("not a folder", encoding="utf-8")

    result = run_ragtune("ingest", workspace, "--corpus", notes)

    assert result.returncode != 0
    assert result.stderr == f"error: {workspace}: is a file, not a workspace folder\n"


@pytest.mark.parametrize(
    "make_corpus", [latin1_file, malformed_jsonl, missing_path], ids=lambda f: f.__name__
)
def test_failing_ingest_keeps_the_previous_workspace_files(
    tmp_path: Path, notes: Path, tokenizer_override: str, make_corpus: BadCorpus
) -> None:
    workspace = tmp_path / "memory"
    good = run_ragtune("ingest", workspace, "--corpus", notes, tokenizer_override)
    assert good.returncode == 0, good.stderr
    before = snapshot(workspace)
    bad_root = tmp_path / "bad"
    bad_root.mkdir()
    corpus, _ = make_corpus(bad_root)

    result = run_ragtune(
        "ingest", workspace, "--corpus", corpus, tokenizer_override, "chunking.size=64"
    )

    assert result.returncode != 0
    assert snapshot(workspace) == before
    assert sorted(p.name for p in workspace.iterdir()) == sorted(WORKSPACE_FILES)


def test_failing_override_keeps_the_previous_workspace_files(
    tmp_path: Path, notes: Path, tokenizer_override: str
) -> None:
    workspace = tmp_path / "memory"
    good = run_ragtune("ingest", workspace, "--corpus", notes, tokenizer_override)
    assert good.returncode == 0, good.stderr
    before = snapshot(workspace)

    result = run_ragtune("ingest", workspace, "chunking.overlap=900")

    assert result.returncode != 0
    assert "chunking.overlap" in result.stderr
    assert snapshot(workspace) == before


# --- in-process checks (click's test runner) ---------------------------------------------------


def test_version(cli_runner: CliRunner) -> None:
    result = cli_runner.invoke(cli, ["--version"])

    assert result.exit_code == 0
    assert result.output.startswith("ragtune, version ")


def test_unknown_format_choice_is_a_usage_error(cli_runner: CliRunner, tmp_path: Path) -> None:
    result = cli_runner.invoke(cli, ["ingest", str(tmp_path / "ws"), "--format", "csv"])

    assert result.exit_code == 2
    assert "Invalid value for '--format'" in result.stderr
    assert not (tmp_path / "ws").exists()


def test_ragtune_error_is_reported_in_process(cli_runner: CliRunner, tmp_path: Path) -> None:
    result = cli_runner.invoke(
        cli, ["ingest", str(tmp_path / "ws"), "--corpus", str(tmp_path / "missing")]
    )

    assert result.exit_code == 1
    assert result.stderr == f"error: {tmp_path / 'missing'}: no such file or folder\n"
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_debug_reraises_in_process(cli_runner: CliRunner, tmp_path: Path) -> None:
    result = cli_runner.invoke(
        cli, ["--debug", "ingest", str(tmp_path / "ws"), "--corpus", str(tmp_path / "missing")]
    )

    assert result.exit_code == 1
    assert isinstance(result.exception, RagtuneError)
