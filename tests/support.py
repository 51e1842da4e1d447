"""Helpers shared by several test modules (imported as `support`; tests/ is on sys.path): files
and LoCoMo records, fake teachers and what the index stage asks them, the GPU gate, and running
the `ragtune` command — in-process with click's `CliRunner` (`run_ragtune`, what CLI tests use),
or as the installed console script in a new process (`run_console_script`, for the few tests
marked `subprocess`) — and reading what it wrote to stderr."""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import subprocess
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ragtune.llm import BaseChatBackend, ChatRequest, Completion


def write(path: Path, text: str | bytes) -> Path:
    """Write `text` (UTF-8) or bytes to `path`, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


#: A ChatML template that refuses a system message, as Gemma's does.
NO_SYSTEM_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def model_without_system_role(model_dir: Path, target: Path) -> Path:
    """A copy of the model folder `model_dir` at `target` whose chat template refuses system
    messages (`NO_SYSTEM_TEMPLATE`). Returns `target`."""
    import shutil

    shutil.copytree(model_dir, target)
    config_path = target / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config.pop("chat_template", None)
    config_path.write_text(json.dumps(config), encoding="utf-8")
    (target / "chat_template.jinja").write_text(NO_SYSTEM_TEMPLATE, encoding="utf-8")
    return target


def minimal_locomo_record(sample_id: str = "conv-x") -> dict[str, Any]:
    """A small valid LoCoMo conversation: two sessions of Ann and Bob."""
    return {
        "sample_id": sample_id,
        "conversation": {
            "speaker_a": "Ann",
            "speaker_b": "Bob",
            "session_1_date_time": "9:00 am on 1 January, 2024",
            "session_1": [
                {"speaker": "Ann", "dia_id": "D1:1", "text": "Hi Bob."},
                {"speaker": "Bob", "dia_id": "D1:2", "text": "Hi Ann."},
            ],
            "session_2_date_time": "10:30 pm on 2 February, 2024",
            "session_2": [
                {"speaker": "Bob", "dia_id": "D2:1", "text": "Back again."},
                {"speaker": "Ann", "dia_id": "D2:2", "text": "Welcome."},
                {"speaker": "Bob", "dia_id": "D2:3", "text": "Thanks."},
            ],
        },
    }


class ScriptedChatBackend(BaseChatBackend):
    """A scripted test double: `_complete` returns prepared answer texts instead of generating.

    A random tiny model cannot write valid JSON, so tests of parsed structured answers need a
    backend whose answers are known in advance. `answers` is one text for every request, or
    texts scripted per request, keyed by the first paragraph of the request's first message;
    each `_complete` call takes the next answer of each request in it (the last one repeats).
    Every batch it receives is recorded in `calls`.

    Args:
        answers: One answer for all requests, or a list of answers per request key.
        native: Whether it claims to enforce JSON schemas itself (`native_json_schema`).
        structured_retries: See `BaseChatBackend`.
    """

    def __init__(
        self,
        answers: str | dict[str, list[str]],
        *,
        native: bool = False,
        structured_retries: int = 2,
    ) -> None:
        super().__init__(structured_retries=structured_retries)
        self.native_json_schema = native  # type: ignore[misc]
        self._answers = (
            answers if isinstance(answers, str) else {k: list(v) for k, v in answers.items()}
        )
        self.calls: list[list[ChatRequest]] = []

    @property
    def model_name(self) -> str:
        return "scripted"

    @property
    def fingerprint(self) -> str:
        return "scripted:test"

    @property
    def received(self) -> list[ChatRequest]:
        """Every request it was asked to complete, in order."""
        return [request for batch in self.calls for request in batch]

    def _complete(self, requests: Sequence[ChatRequest], *, progress: bool) -> list[Completion]:
        self.calls.append(list(requests))
        return [self._answer(request) for request in requests]

    def _answer(self, request: ChatRequest) -> Completion:
        if isinstance(self._answers, str):
            text = self._answers
        else:
            answers = self._answers[request.messages[0]["content"].split("\n\n")[0]]
            text = answers.pop(0) if len(answers) > 1 else answers[0]
        return Completion(
            text=text,
            prompt_tokens=10 * len(request.messages),
            completion_tokens=len(text),
            finish_reason="stop",
        )


class FunctionChatBackend(BaseChatBackend):
    """A deterministic fake teacher: `_complete` answers each request with `respond(request)`.

    Unlike `ScriptedChatBackend`, the answer may depend on the whole request (the index sends
    every extraction with the same system prompt, so tests pick answers by the text unit quoted
    in the user message, or by whether the request is a gleaning or a repair turn). Structured
    output handling (schema instruction, validation, repair turns) is `BaseChatBackend`'s, as
    for a real model. Every batch it receives is recorded in `calls`; `respond` may raise to
    simulate a crash mid-run.

    Args:
        respond: The answer text for one request.
        fingerprint: Its fingerprint (for response cache keys and extraction journals).
        native: Whether it claims to enforce JSON schemas itself (`native_json_schema`).
        structured_retries: See `BaseChatBackend`.
    """

    def __init__(
        self,
        respond: Callable[[ChatRequest], str],
        *,
        fingerprint: str = "function:test",
        native: bool = False,
        structured_retries: int = 2,
    ) -> None:
        super().__init__(structured_retries=structured_retries)
        self.native_json_schema = native  # type: ignore[misc]
        self.respond = respond
        self._fingerprint = fingerprint
        self.calls: list[list[ChatRequest]] = []

    @property
    def model_name(self) -> str:
        return "function"

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    @property
    def received(self) -> list[ChatRequest]:
        """Every request it was asked to complete, in order (repair turns included)."""
        return [request for batch in self.calls for request in batch]

    def _complete(self, requests: Sequence[ChatRequest], *, progress: bool) -> list[Completion]:
        self.calls.append(list(requests))
        completions = []
        for request in requests:
            text = self.respond(request)
            completions.append(
                Completion(
                    text=text,
                    prompt_tokens=10 * len(request.messages),
                    completion_tokens=len(text),
                    finish_reason="stop",
                )
            )
        return completions


# --- the index stage's requests, as a fake teacher sees them -------------------------------------

_QUOTED_TEXT = 'Text:\n"""\n'
_ALLOWED_TYPES = re.compile(r"type \(one of: ([^)]*)\)")


def request_kind(request: ChatRequest) -> str:
    """What an index-stage request asks for: ``"extract"`` (first extraction turn),
    ``"glean"``, ``"summarize"``, ``"report"`` or ``"other"``. Repair turns keep the kind of
    the request they repair (see `is_repair`)."""
    from ragtune.index import prompts

    system = request.messages[0]["content"] if request.messages else ""
    if system == prompts.EXTRACTION_SYSTEM:
        users = [m["content"] for m in request.messages if m["role"] == "user"]
        gleaning = any(u.startswith(prompts.GLEANING_USER) for u in users)
        return "glean" if gleaning else "extract"
    if system == prompts.SUMMARIZE_SYSTEM:
        return "summarize"
    if system == prompts.REPORT_SYSTEM:
        return "report"
    return "other"


def is_repair(request: ChatRequest) -> bool:
    """Whether the last turn of `request` sends an invalid answer back to be repaired."""
    last = request.messages[-1]
    return last["role"] == "user" and last["content"].startswith("That reply is not valid")


def unit_text(request: ChatRequest) -> str:
    """The text unit quoted in an extraction (or gleaning) request's first user message."""
    first_user = next(m["content"] for m in request.messages if m["role"] == "user")
    start = first_user.index(_QUOTED_TEXT) + len(_QUOTED_TEXT)
    return first_user[start : first_user.index('\n"""', start)]


def extraction_json(
    entities: Sequence[tuple[str, str, str]] = (),
    relationships: Sequence[tuple[str, str, str, float]] = (),
) -> str:
    """An extraction answer: entities as ``(name, type, description)``, relationships as
    ``(source, target, description, strength)``."""
    return json.dumps(
        {
            "entities": [{"name": n, "type": t, "description": d} for n, t, d in entities],
            "relationships": [
                {"source": s, "target": t, "description": d, "strength": w}
                for s, t, d, w in relationships
            ],
        }
    )


def report_json(title: str, findings: Sequence[tuple[str, str]] = (), rating: float = 5.0) -> str:
    """A community report answer matching `prompts.REPORT_SCHEMA`."""
    return json.dumps(
        {
            "title": title,
            "summary": f"Summary of {title}.",
            "rating": rating,
            "rating_explanation": "Scripted by the fake teacher.",
            "findings": [{"summary": s, "explanation": e} for s, e in findings],
        }
    )


def gazetteer_teacher(
    gazetteer: Mapping[str, str], *, fingerprint: str = "function:gazetteer"
) -> FunctionChatBackend:
    """A fake teacher that extracts the names of `gazetteer` (name → type) found in a unit's
    text (those of a type the prompt allows), relates each found name to the next one
    (strength 5), finds nothing more when gleaning, combines descriptions by joining them with
    " | ", and titles each community report after the first entity of its prompt.
    Deterministic, so indexes built with it can be compared."""

    def respond(request: ChatRequest) -> str:
        kind = request_kind(request)
        if kind == "extract":
            text = unit_text(request).casefold()
            allowed = _ALLOWED_TYPES.search(request.messages[1]["content"])
            types = allowed.group(1).split(", ") if allowed else list(gazetteer.values())
            found = [n for n in gazetteer if n.casefold() in text and gazetteer[n] in types]
            return extraction_json(
                [
                    (name, gazetteer[name], f"{name} appears in: {unit_text(request)}")
                    for name in found
                ],
                [(a, b, f"{a} is mentioned with {b}", 5.0) for a, b in itertools.pairwise(found)],
            )
        if kind == "glean":
            return extraction_json()
        if kind == "summarize":
            lines = [
                line[2:]
                for line in request.messages[-1]["content"].splitlines()
                if line.startswith("- ")
            ]
            return "Combined: " + " | ".join(lines)
        if kind == "report":
            entity_rows = request.messages[-1]["content"].split("id,entity,type,description\n")[1]
            first = entity_rows.split("\n")[0].split(",")[1]
            return report_json(f"Report on {first}", [(f"About {first}", "From the fake teacher.")])
        raise AssertionError(f"unexpected request: {request.messages}")

    return FunctionChatBackend(respond, fingerprint=fingerprint)


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


#: Capability gate for tests that need a CUDA GPU (marked `gpu` as well).
requires_gpu = pytest.mark.skipif(
    not _cuda_available(), reason="needs a CUDA GPU; this machine has none"
)


#: The installed `ragtune` console script.
RAGTUNE = Path(sys.executable).parent / "ragtune"


@dataclass(frozen=True)
class Run:
    """A finished `ragtune` run, in-process (`run_ragtune`) or in a new process
    (`run_console_script`)."""

    returncode: int
    stdout: str
    stderr: str  # as written: a progress bar's '\r' are kept (no universal newlines)


def run_ragtune(*args: str | Path, cwd: Path | None = None) -> Run:
    """Run the `ragtune` command in this process, with click's `CliRunner`, as the console
    script would run it (`prog_name` "ragtune", in the folder `cwd` when given).

    stdout and stderr are kept apart, and output written to the file descriptors 1 and 2 (by C
    code or a subprocess) during the run is captured too. What a real process would show and
    this one cannot: Python warnings (pytest records them instead) and output of library
    loggers whose handler was bound to an earlier `sys.stderr` (transformers', once configured
    by an earlier test) — tests of `-q` that must see those use `run_console_script`. An
    exception that escapes click (only with `--debug`) is written to stderr as its traceback,
    as the interpreter would (exit 1). The `ragtune` logger, which the command configures, is
    restored afterwards."""
    from click.testing import CliRunner

    from ragtune.cli import cli

    logger = logging.getLogger("ragtune")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    previous = Path.cwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        result = CliRunner(capture="fd").invoke(cli, [str(a) for a in args], prog_name="ragtune")
    finally:
        os.chdir(previous)
        logger.handlers[:], logger.level, logger.propagate = saved
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
    return Run(result.exit_code, result.stdout, stderr)


def run_console_script(*args: str | Path, cwd: Path | None = None) -> Run:
    """Run the installed `ragtune` console script in a new process (the environment carries
    the test cache). For the few tests marked `subprocess` that prove what only a real process
    shows: the exit status, the interpreter's traceback, everything written to stderr."""
    assert RAGTUNE.is_file(), f"the ragtune console script is not installed at {RAGTUNE}"
    result = subprocess.run(
        [str(RAGTUNE), *map(str, args)],
        capture_output=True,
        cwd=cwd,
        env=os.environ.copy(),
        timeout=120,
        check=False,
    )
    return Run(result.returncode, result.stdout.decode(), result.stderr.decode())


def error_line(result: Run) -> str:
    """The one error line of a failed `ragtune` run (exit 1, no traceback)."""
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    [line] = visible_lines(result.stderr)
    assert line.startswith("error: ")
    return line


def visible_lines(stderr: str) -> list[str]:
    """The non-blank lines a terminal shows: a progress bar erased with '\\r' is not shown."""
    shown = (line.rsplit("\r", 1)[-1] for line in stderr.split("\n"))
    return [line for line in shown if line.strip()]


def run_readme_section(heading: str, folder: Path) -> None:
    """Run the one Python block of the README section `## <heading>` as a script in `folder`
    (the caller chdirs there and captures what it prints)."""
    import runpy

    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    script = folder / f"readme_{heading.lower()}.py"
    script.write_text(code, encoding="utf-8")
    runpy.run_path(str(script), run_name="__main__")


def tune_from_shared_memory(monkeypatch: pytest.MonkeyPatch, shared: Path) -> list[list[str]]:
    """Make `ragtune.pipeline.tune_memory` give a workspace the adapter of `shared` instead of
    training one: `shared` is the session's `embedded_memory`, tuned from the same two notes
    (`notes.NOTES`) with the same settings (`notes.SETTINGS`). The stand-in first checks that it
    was asked for exactly that — the workspace's text units are the notes', the settings are
    those — so a README section that drifts from the shared memory fails instead of reusing a
    memory of other notes. Returns the settings of each call."""
    import shutil

    import ragtune.pipeline
    from notes import SETTINGS
    from ragtune.corpus.tables import read_text_units
    from ragtune.manifest import Manifest
    from ragtune.train.trainer import TrainReport

    def units_of(root: Path) -> list[tuple[str, str | None]]:
        return [(u.text, u.timestamp) for u in read_text_units(root / "text_units.parquet")]

    calls: list[list[str]] = []

    def tune(
        workspace: str | Path,
        settings: Sequence[str] = (),
        *,
        teacher: object = None,
        progress: bool = False,
    ) -> TrainReport:
        root = Path(workspace)
        calls.append(list(settings))
        assert teacher is None
        assert [s for s in settings if s != "model=embedded"] == SETTINGS, settings
        assert units_of(root) == units_of(shared)
        shutil.copytree(shared / "adapters", root / "adapters", dirs_exist_ok=True)
        adapter = root / "adapters" / "default"
        metrics = Manifest.read(adapter).metrics
        return TrainReport(
            adapter=adapter,
            steps=metrics["steps"],
            epochs=metrics["epochs"],
            tokens=metrics["tokens"],
            tokens_per_second=metrics["tokens_per_second"],
            seconds=0.0,
            train_loss=metrics["train_loss"],
            val_loss=metrics["val_loss"],
            quantization=Manifest.read(adapter).hyperparameters["quantization"],
        )

    monkeypatch.setattr(ragtune.pipeline, "tune_memory", tune)
    return calls


def modules_after(statement: str) -> list[str]:
    """The modules loaded in a fresh interpreter after `statement` (``import ragtune``), in
    sorted order: what an import really costs, whatever this test process already loaded."""
    code = f"import sys; {statement}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.split()


def memory_questions(workspace: Path, count: int) -> list[str]:
    """The first `count` distinct questions the memory at `workspace` was trained on."""
    import json

    questions: list[str] = []
    for line in (workspace / "synth" / "train.jsonl").read_text(encoding="utf-8").splitlines():
        question = json.loads(line)["prompt"][-1]["content"]
        if question not in questions:
            questions.append(question)
    return questions[:count]
