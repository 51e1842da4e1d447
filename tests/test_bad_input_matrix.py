"""The bad-input matrix: every input a user can get wrong, given to the command that reads it,
on a copy of a complete workspace (ingested, indexed, synthesized: `stages.json` records each
stage). Each case asserts exit status 1, exactly one `error:` line naming the file or the
setting and the problem, no traceback and no "unexpected", no hang (a timeout), and the
workspace byte-identical afterwards.

Runs in-process (`run_ragtune`); the file-system faults that cannot be made here without
privileges (a full disk, a read-only file system) are injected into the writer that every
stage's files go through (`tempfile.mkstemp` of `ragtune.fileio`).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ragtune.testing import tiny_locomo_conversation
from support import minimal_locomo_record, run_ragtune, visible_lines, write


@dataclass(frozen=True)
class Case:
    """A bad input: `make(workspace, scratch)` writes what it needs into `scratch` and returns
    the command's arguments and the texts its error line must contain."""

    name: str
    make: Callable[[Path, Path], tuple[list[str | Path], list[str]]]


def files(root: Path) -> dict[str, bytes]:
    """Every file under `root` with its bytes (folders by name), to compare before and after."""
    found: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        name = path.relative_to(root).as_posix()
        found[name] = path.read_bytes() if path.is_file() and not path.is_symlink() else b"<dir>"
    return found


@pytest.fixture(scope="module")
def built(
    tiny_model_dir: Path, tiny_locomo_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The tiny LoCoMo conversation ingested, indexed and synthesized with the CLI."""
    root = tmp_path_factory.mktemp("matrix") / "memory"
    tiny = [f"chunking.tokenizer=hf:{tiny_model_dir}", f"model=hf:{tiny_model_dir}"]
    indexed = run_ragtune("-q", "index", root, "--corpus", tiny_locomo_file, *tiny)
    assert indexed.returncode == 0, indexed.stderr
    synthesized = run_ragtune("-q", "synthesize", root, "synth.strategies=[text_units,temporal]")
    assert synthesized.returncode == 0, synthesized.stderr
    assert {"ingest", "index", "synthesize"} <= set(
        json.loads((root / "stages.json").read_text(encoding="utf-8"))
    )
    return root


@pytest.fixture
def workspace(built: Path, tmp_path: Path) -> Path:
    target = tmp_path / "memory"
    shutil.copytree(built, target, symlinks=True)
    return target


# --- the cases ---------------------------------------------------------------------------------


def ingest_case(name: str, corpus: Callable[[Path], Path], *expected: str) -> Case:
    """`ragtune ingest WS --corpus <corpus(scratch)>`; the error names the path it returns
    (or `expected[0]` when that is given as the path to name)."""

    def make(workspace: Path, scratch: Path) -> tuple[list[str | Path], list[str]]:
        path = corpus(scratch)
        return ["ingest", workspace, "--corpus", path], [str(path), *expected]

    return Case(f"ingest-{name}", make)


def named_case(name: str, corpus: Callable[[Path], tuple[Path, Path]], *expected: str) -> Case:
    """Like `ingest_case`, for corpora whose bad file is inside: `corpus` returns the corpus
    and the file the error must name."""

    def make(workspace: Path, scratch: Path) -> tuple[list[str | Path], list[str]]:
        path, bad = corpus(scratch)
        return ["ingest", workspace, "--corpus", path], [str(bad), *expected]

    return Case(f"ingest-{name}", make)


def folder_with(name: str, content: bytes | None = None) -> Callable[[Path], tuple[Path, Path]]:
    def corpus(scratch: Path) -> tuple[Path, Path]:
        folder = scratch / "notes"
        write(folder / "fine.md", "# Fine\n\nA good note.")
        bad = folder / name
        if content is not None:
            bad.write_bytes(content)
        return folder, bad

    return corpus


def fifo_in_folder(scratch: Path) -> tuple[Path, Path]:
    folder, bad = folder_with("pipe.md")(scratch)
    os.mkfifo(bad)
    return folder, bad


def fifo(scratch: Path) -> Path:
    path = scratch / "pipe.jsonl"
    os.mkfifo(path)
    return path


def symlink_loop(scratch: Path) -> Path:
    path = scratch / "loop.jsonl"
    path.symlink_to(path)
    return path


def dangling(scratch: Path) -> tuple[Path, Path]:
    folder, bad = folder_with("gone.md")(scratch)
    bad.symlink_to(scratch / "nowhere.md")
    return folder, bad


def jsonl(text: str | bytes) -> Callable[[Path], Path]:
    def corpus(scratch: Path) -> Path:
        path = scratch / "records.jsonl"
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
        return path

    return corpus


def locomo(change: Callable[[list[dict[str, Any]]], Any]) -> Callable[[Path], Path]:
    def corpus(scratch: Path) -> Path:
        records = [minimal_locomo_record("conv-a"), minimal_locomo_record("conv-b")]
        change(records)
        path = scratch / "conversations.json"
        path.write_text(json.dumps(records), encoding="utf-8")
        return path

    return corpus


def plain(name: str, content: bytes) -> Callable[[Path], Path]:
    def corpus(scratch: Path) -> Path:
        path = scratch / name
        path.write_bytes(content)
        return path

    return corpus


def empty_folder(scratch: Path) -> Path:
    folder = scratch / "empty"
    folder.mkdir()
    return folder


def only_empty_files(scratch: Path) -> Path:
    folder = scratch / "blank"
    write(folder / "a.md", "  \n")
    write(folder / "b.txt", "")
    return folder


def _set(path: list[Any], value: Any) -> Callable[[list[dict[str, Any]]], None]:
    def change(records: list[dict[str, Any]]) -> None:
        target: Any = records
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


def _delete(path: list[Any]) -> Callable[[list[dict[str, Any]]], None]:
    def change(records: list[dict[str, Any]]) -> None:
        target: Any = records
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return change


CORPUS_CASES = [
    ingest_case("missing-path", lambda s: s / "nowhere", "no such file or folder"),
    ingest_case("fifo", fifo, "named pipe (FIFO)"),
    named_case("fifo-in-folder", fifo_in_folder, "named pipe (FIFO)"),
    ingest_case("symlink-loop", symlink_loop, "symbolic link loop"),
    named_case("dangling-symlink", dangling, "symbolic link to a missing file"),
    named_case("binary-note", folder_with("x.md", b"\x89PNG\r\n\x1a\n\x00\x00"), "binary"),
    named_case("latin1-note", folder_with("x.md", "café".encode("latin-1")), "not UTF-8"),
    named_case("utf16-note", folder_with("x.md", "note".encode("utf-16")), "UTF-16"),
    named_case(
        "utf16-no-bom", folder_with("x.txt", "a longer note\n".encode("utf-16-le")), "UTF-16"
    ),
    named_case(
        "bad-front-matter", folder_with("x.md", b"---\ntitle: [unclosed\n---\nBody"), "front"
    ),
    named_case("bad-front-date", folder_with("x.md", b"---\ndate: someday\n---\nBody"), "date"),
    ingest_case("empty-folder", empty_folder, "empty corpus"),
    ingest_case("only-empty-files", only_empty_files, "empty corpus"),
    ingest_case("jsonl-invalid-json", jsonl('{"text": "a"}\n{"text": \n'), "line 2", "JSON"),
    ingest_case("jsonl-not-object", jsonl('{"text": "a"}\n[1, 2]\n'), "line 2", "JSON object"),
    ingest_case("jsonl-no-text", jsonl('{"title": "t"}\n'), "line 1", 'no "text"'),
    ingest_case("jsonl-text-number", jsonl('{"text": 3}\n'), "line 1", 'non-string "text"'),
    ingest_case("jsonl-empty-text", jsonl('{"text": "  "}\n'), "line 1", 'empty "text"'),
    ingest_case("jsonl-bad-timestamp", jsonl('{"text": "a", "timestamp": "May"}\n'), "line 1"),
    ingest_case("jsonl-id-list", jsonl('{"text": "a", "id": [1]}\n'), "line 1", '"id"'),
    ingest_case("jsonl-title-number", jsonl('{"text": "a", "title": 3}\n'), '"title"'),
    ingest_case("jsonl-lone-surrogate", jsonl('{"text": "a \\ud800 b"}\n'), "lone surrogate"),
    ingest_case(
        "jsonl-duplicate-ids",
        jsonl('{"id": 7, "text": "a"}\n{"id": 7, "text": "b"}\n'),
        "line 2",
        'duplicate "id" 7 (also on line 1)',
    ),
    ingest_case("jsonl-utf16", jsonl('{"text": "a"}\n'.encode("utf-16")), "UTF-16"),
    ingest_case("jsonl-only-blank", jsonl("\n\n"), "empty corpus"),
    ingest_case("json-not-locomo", plain("records.json", b'{"text": "a"}'), "not a LoCoMo"),
    ingest_case("locomo-invalid-json", plain("c.json", b'[{"conversation": '), "invalid JSON"),
    ingest_case("locomo-no-sample-id", locomo(_delete([1, "sample_id"])), "record 2", "sample_id"),
    ingest_case(
        "locomo-session-not-list",
        locomo(_set([1, "conversation", "session_2"], "turns")),
        "record 2 (conv-b)",
        "session_2 is not a list",
    ),
    ingest_case(
        "locomo-bad-date",
        locomo(_set([0, "conversation", "session_1_date_time"], "soon")),
        "record 1 (conv-a)",
    ),
    ingest_case(
        "locomo-no-speaker",
        locomo(_delete([1, "conversation", "speaker_b"])),
        "record 2 (conv-b)",
        "speaker_b",
    ),
    ingest_case(
        "locomo-no-conversation-in-one-record",
        locomo(_delete([1, "conversation"])),
        "record 2 (conv-b)",
        '"conversation"',
    ),
    ingest_case("unknown-suffix", plain("table.csv", b"a,b\n"), "cannot tell the corpus format"),
]


def command_case(name: str, *args: str, expected: tuple[str, ...]) -> Case:
    """`ragtune <args>` with `WS` standing for the workspace."""

    def make(workspace: Path, scratch: Path) -> tuple[list[str | Path], list[str]]:
        return [workspace if a == "WS" else a for a in args], list(expected)

    return Case(name, make)


def yaml_case(name: str, text: bytes, command: str, *expected: str) -> Case:
    """memory.yaml replaced by `text` (the workspace is compared with that file in place)."""

    def make(workspace: Path, scratch: Path) -> tuple[list[str | Path], list[str]]:
        path = workspace / "memory.yaml"
        path.write_bytes(text)
        return [command, workspace], [str(path), *expected]

    return Case(f"yaml-{name}", make)


SETTINGS_CASES = [
    command_case(
        "override-unknown",
        "synthesize",
        "WS",
        "synth.per_unit=3",
        expected=("command line: unknown setting 'synth.per_unit'", "the settings of synth"),
    ),
    command_case(
        "override-not-key-value",
        "synthesize",
        "WS",
        "strategies",
        expected=("'strategies' is not key=value",),
    ),
    command_case(
        "override-wrong-type",
        "ingest",
        "WS",
        "chunking.size=big",
        expected=("command line: chunking.size must be an integer, got 'big'",),
    ),
    command_case(
        "override-1e20-chunk",
        "ingest",
        "WS",
        "chunking.size=1e20",
        expected=("command line: chunking.size must be an integer, got '1e20'",),
    ),
    command_case(
        "override-huge-chunk",
        "ingest",
        "WS",
        "chunking.size=100000000000000000000",
        expected=("chunking.size must be at least 1 and at most 1,000,000",),
    ),
    command_case(
        "overlap-not-below-size",
        "ingest",
        "WS",
        "chunking.size=50",
        "chunking.overlap=50",
        expected=("chunking.overlap must be at least 0 and below chunking.size (50)",),
    ),
    command_case(
        "max-steps-negative",
        "train",
        "WS",
        "--max-steps",
        "-5",
        expected=("--max-steps: train.max_steps must be -1 (no limit) or at least 1",),
    ),
    command_case(
        "epochs-negative",
        "train",
        "WS",
        "--epochs",
        "-1",
        expected=("--epochs: train.epochs must be at least 0",),
    ),
    command_case(
        "lr-zero",
        "train",
        "WS",
        "train.lr=0",
        expected=("command line: train.lr must be above 0",),
    ),
    command_case(
        "adapter-with-slash",
        "train",
        "WS",
        "--adapter",
        "../x",
        expected=("train.adapter must be a plain folder name",),
    ),
    command_case(
        "strategies-empty",
        "synthesize",
        "WS",
        "synth.strategies=[]",
        expected=("synth.strategies must name at least one of",),
    ),
    command_case(
        "strategy-unknown",
        "synthesize",
        "WS",
        "--strategies",
        "text_units,quizzes",
        expected=("unknown synth strategies quizzes",),
    ),
    command_case(
        "val-fraction-one",
        "synthesize",
        "WS",
        "synth.val_fraction=1",
        expected=("synth.val_fraction must be at least 0 and below 1",),
    ),
    command_case(
        "model-spec-bad",
        "synthesize",
        "WS",
        "model=gguf:somewhere",
        expected=("gguf:somewhere",),
    ),
    yaml_case("invalid", b"model: [unclosed\n", "synthesize", "invalid YAML", "line"),
    yaml_case("not-mapping", b"- a\n- b\n", "synthesize", "must be a mapping of settings"),
    yaml_case("binary", b"\x89PNG\r\n\x1a\n\x00\x00", "synthesize", "binary file"),
    yaml_case("latin1", "model: café\n".encode("latin-1"), "synthesize", "not UTF-8"),
    yaml_case(
        "unknown-key", b"train:\n  epochs: 2\n  lora_rank: 8\n", "train", "line 3", "lora_rank"
    ),
    yaml_case("out-of-range", b"train:\n  max_steps: -5\n", "train", "line 2", "max_steps"),
    yaml_case("section-not-mapping", b"chunking: 3\n", "ingest", "'chunking' must be a mapping"),
    yaml_case("empty-strategies", b"synth:\n  strategies: []\n", "synthesize", "at least one"),
]


def replace_file(relative: str, content: bytes, command: str, *expected: str) -> Case:
    def make(workspace: Path, scratch: Path) -> tuple[list[str | Path], list[str]]:
        (workspace / relative).write_bytes(content)
        return [command, workspace], [str(workspace / relative), *expected]

    return Case(f"{command}-with-changed-{relative.replace('/', '-')}", make)


def remove_then(removed: tuple[str, ...], command: str, *expected: str) -> Case:
    def make(workspace: Path, scratch: Path) -> tuple[list[str | Path], list[str]]:
        for relative in removed:
            path = workspace / relative
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        return [command, workspace], list(expected)

    return Case(f"{command}-without-{'-'.join(Path(r).stem for r in removed)}", make)


def path_case(name: str, command: str, where: Callable[[Path, Path], Path], *expected: str) -> Case:
    def make(workspace: Path, scratch: Path) -> tuple[list[str | Path], list[str]]:
        return [command, where(workspace, scratch)], list(expected)

    return Case(name, make)


def under_a_file(workspace: Path, scratch: Path) -> Path:
    return write(scratch / "plain.txt", "x") / "memory"


STAGE_CASES = [
    remove_then(("entities.parquet",), "synthesize", "has no index", "ragtune index"),
    remove_then(("synth",), "train", "has no training data", "ragtune synthesize"),
    remove_then(("text_units.parquet", "documents.parquet"), "synthesize", "text_units.parquet"),
    command_case("ask-without-adapter", "ask", "WS", "Who?", expected=("adapter", "train")),
    Case(
        "export-without-adapter",
        lambda w, s: (["export", w, "--merged", s / "merged"], ["adapter", "train"]),
    ),
    path_case(
        "synthesize-no-workspace", "synthesize", lambda w, s: s / "nope", "no such workspace"
    ),
    path_case("train-no-workspace", "train", lambda w, s: s / "nope", "no such workspace"),
    path_case("ingest-under-a-file", "ingest", under_a_file, "plain.txt is a file, not a folder"),
    path_case("index-under-a-file", "index", under_a_file, "plain.txt is a file, not a folder"),
    path_case("workspace-is-a-file", "synthesize", under_a_file, "is a file"),
    replace_file(
        "relationships.parquet",
        b"PAR1 not the index that was committed",
        "synthesize",
        "mixes two runs",
        "ragtune index",
    ),
    replace_file(
        "synth/train.jsonl", b'{"prompt": [{"role": "user", "co', "train", "mixes two runs"
    ),
    replace_file("text_units.parquet", b"PAR1", "synthesize", "mixes two runs", "ragtune ingest"),
]


def untracked_training_data(name: str, content: bytes, *expected: str) -> Case:
    """Training data from elsewhere (no stages.json): checked line by line before the model
    loads."""

    def make(workspace: Path, scratch: Path) -> tuple[list[str | Path], list[str]]:
        (workspace / "stages.json").unlink()
        (workspace / "synth" / "train.jsonl").write_bytes(content)
        return ["train", workspace], [str(workspace / "synth" / "train.jsonl"), *expected]

    return Case(f"train-data-{name}", make)


GOOD_RECORD = (
    b'{"prompt": [{"role": "user", "content": "Q?"}], '
    b'"completion": [{"role": "assistant", "content": "A."}]}\n'
)
TRAINING_DATA_CASES = [
    untracked_training_data(
        "truncated", GOOD_RECORD + b'{"prompt": [{"role": "us', "line 2", "invalid JSON"
    ),
    untracked_training_data(
        "no-completion", GOOD_RECORD + b'{"prompt": []}\n', "line 2", "not a training record"
    ),
    untracked_training_data("not-utf8", b"\xff\xfe{}\n", "not UTF-8"),
]


def questions_case(name: str, content: bytes | None, suffix: str, *expected: str) -> Case:
    def make(workspace: Path, scratch: Path) -> tuple[list[str | Path], list[str]]:
        path = scratch / f"questions{suffix}"
        if content is not None:
            path.write_bytes(content)
        args: list[str | Path] = ["eval", workspace, "--questions", path, "--systems", "native"]
        return args, [str(path), *expected]

    return Case(f"eval-{name}", make)


OTHER_CONVERSATION = json.dumps([tiny_locomo_conversation("conv-other")]).encode()
EVAL_CASES = [
    questions_case("missing", None, ".json", "no such questions file"),
    questions_case("invalid-json", b"[{", ".json", "is not JSON"),
    questions_case("no-qa", b'[{"sample_id": "conv-tiny"}]', ".json", 'no "qa" list'),
    questions_case("other-conversation", OTHER_CONVERSATION, ".json", "conv-other"),
    questions_case("jsonl-no-question", b'{"answer": "x"}\n', ".jsonl", "line 1"),
    questions_case("jsonl-invalid", b'{"question": \n', ".jsonl", "line 1"),
    questions_case("latin1", '[{"q": "café"}]'.encode("latin-1"), ".json", "not UTF-8"),
    Case(
        "eval-unknown-system",
        lambda w, s: (
            [
                "eval",
                w,
                "--questions",
                write(s / "q.jsonl", '{"question": "Who?", "answer": "Ann"}\n'),
                "--systems",
                "native,oracle2",
            ],
            ["oracle2"],
        ),
    ),
]


def notes_workspace_case() -> Case:
    """LoCoMo questions asked of a memory that holds no LoCoMo conversation."""

    def make(workspace: Path, scratch: Path) -> tuple[list[str | Path], list[str]]:
        (workspace / "documents.parquet").unlink()  # as in a memory of notes: no sample_id
        path = scratch / "questions.json"
        path.write_bytes(OTHER_CONVERSATION)
        return ["eval", workspace, "--questions", path], [
            str(path),
            "holds no LoCoMo conversation",
        ]

    return Case("eval-locomo-questions-for-notes", make)


EVAL_CASES.append(notes_workspace_case())

ALL_CASES = [
    *CORPUS_CASES,
    *SETTINGS_CASES,
    *STAGE_CASES,
    *TRAINING_DATA_CASES,
    *EVAL_CASES,
]


def test_the_matrix_has_at_least_sixty_cases() -> None:
    assert len(ALL_CASES) >= 60
    assert len({case.name for case in ALL_CASES}) == len(ALL_CASES)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", ALL_CASES, ids=lambda case: case.name)
def test_bad_input_is_one_error_line_and_changes_nothing(
    case: Case, workspace: Path, tmp_path: Path
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    args, expected = case.make(workspace, scratch)
    before = files(workspace)

    result = run_ragtune("-q", *args)

    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = visible_lines(result.stderr)
    assert len(lines) == 1, lines
    [line] = lines
    assert line.startswith("error: ") and "unexpected" not in line, line
    for text in expected:
        assert text in line, (text, line)
    assert files(workspace) == before


# --- faults of the file system, injected into the atomic writer -------------------------------


def failing_mkstemp(code: int, after: int) -> Callable[..., Any]:
    """`tempfile.mkstemp` that fails with `code` once `after` temporary files were made."""
    import tempfile

    made = 0
    real = tempfile.mkstemp

    def mkstemp(*args: Any, **kwargs: Any) -> Any:
        nonlocal made
        if made >= after:
            raise OSError(code, os.strerror(code))
        made += 1
        return real(*args, **kwargs)

    return mkstemp


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("code", "after", "advice"),
    [
        (errno.ENOSPC, 0, "no space left on the device"),
        (errno.ENOSPC, 2, "no space left on the device"),  # after train and val were staged
        (errno.EROFS, 0, "the file system is read-only"),
        (errno.EACCES, 1, "permission denied"),
    ],
    ids=["disk-full-at-once", "disk-full-midway", "read-only", "permission"],
)
def test_a_file_system_fault_during_synthesis_changes_nothing(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, code: int, after: int, advice: str
) -> None:
    import ragtune.fileio

    before = files(workspace)
    monkeypatch.setattr(ragtune.fileio.tempfile, "mkstemp", failing_mkstemp(code, after))

    result = run_ragtune("-q", "synthesize", workspace, "synth.seed=5")

    assert result.returncode == 1
    [line] = visible_lines(result.stderr)
    assert line.startswith(f"error: {workspace}/"), line  # the file being written
    assert advice in line, line
    assert files(workspace) == before


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "command",
    [["synthesize", "--writer", "llm"], ["index", "--extractor", "llm"]],
    ids=["synthesize", "index"],
)
def test_an_unreachable_teacher_is_not_saved(workspace: Path, command: list[str]) -> None:
    before = files(workspace)

    result = run_ragtune(
        "-q", command[0], workspace, *command[1:], "--teacher", "openai:m@http://127.0.0.1:9"
    )

    assert result.returncode == 1
    assert len(visible_lines(result.stderr)) == 1
    assert files(workspace) == before
    assert "127.0.0.1:9" not in (workspace / "memory.yaml").read_text(encoding="utf-8")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("command", ["ingest", "index"])
def test_a_failed_first_run_leaves_no_workspace_behind(tmp_path: Path, command: str) -> None:
    target = tmp_path / "new" / "memory"

    result = run_ragtune("-q", command, target, "--corpus", tmp_path / "missing.jsonl")

    assert result.returncode == 1
    assert visible_lines(result.stderr) == [
        f"error: {tmp_path / 'missing.jsonl'}: no such file or folder"
    ]
    assert not target.exists()


@pytest.mark.timeout(60)
def test_index_with_a_corpus_given_that_is_a_symlink_loop_is_refused(workspace: Path) -> None:
    loop = workspace.parent / "loop.jsonl"
    loop.symlink_to(loop)
    before = files(workspace)

    result = run_ragtune("-q", "index", workspace, "--corpus", loop)

    assert result.returncode == 1
    assert visible_lines(result.stderr) == [f"error: {loop}: is a symbolic link loop"]
    assert files(workspace) == before
