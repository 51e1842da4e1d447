"""`ragtune ask` and `ragtune export`, on the session's shared tiny adapter (`tiny_notes_memory`:
the tiny random model of `tiny_model_dir` trained two steps without quantization).

The commands run in-process with click's `CliRunner` (loading the tiny model takes a fraction of
a second there; `run_ragtune` or the `cli_runner` fixture); the quiet path, marked `subprocess`,
runs the installed console script, where a stray progress bar or warning of the libraries that
load the model would show. What `ask` prints is compared with what `MemoryModel` answers and
recalls in-process (greedy, so the same)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from ragtune.cli import cli
from ragtune.corpus.types import Document, TextUnit
from ragtune.model import MemoryModel
from ragtune.workspace import Workspace
from support import error_line, run_console_script, run_ragtune, visible_lines
from tiny_notes import QUESTION, corpus
from train_support import train_workspace

MAX_NEW_TOKENS = "16"
SOURCE_LINE = re.compile(r"^\[(\d+)\] (\S+?)(?:, (\S+))? \(match (\d+\.\d\d)\)$")


@dataclass
class Trained:
    workspace: Workspace
    units: list[TextUnit]
    documents: list[Document]
    model: MemoryModel

    @property
    def root(self) -> str:
        return str(self.workspace.root)


@pytest.fixture(scope="module")
def trained(tiny_notes_memory: Path) -> Trained:
    """The shared tiny adapter (`tiny_notes_memory`, trained in full precision, so merging it
    into the float32 base is exact up to rounding) and its `MemoryModel`."""
    documents, units = corpus()
    model = MemoryModel.from_workspace(tiny_notes_memory)
    return Trained(Workspace.at(tiny_notes_memory), units, documents, model)


# -- ask ------------------------------------------------------------------------------------


def test_ask_streams_the_answer(trained: Trained, cli_runner: CliRunner) -> None:
    result = cli_runner.invoke(
        cli, ["ask", trained.root, QUESTION, "--max-new-tokens", MAX_NEW_TOKENS]
    )

    assert result.exit_code == 0, result.output
    streamed = "".join(trained.model.stream(QUESTION, max_new_tokens=int(MAX_NEW_TOKENS)))
    assert streamed.strip()
    assert result.stdout == streamed + "\n"
    assert "[1]" not in result.stdout  # no sources without --recall


def test_ask_no_stream_prints_the_answer(trained: Trained, cli_runner: CliRunner) -> None:
    result = cli_runner.invoke(
        cli, ["ask", trained.root, QUESTION, "--no-stream", "--max-new-tokens", MAX_NEW_TOKENS]
    )

    assert result.exit_code == 0, result.output
    answer = trained.model.answer(QUESTION, max_new_tokens=int(MAX_NEW_TOKENS))
    assert answer
    assert result.stdout == answer + "\n"


def test_ask_recall_prints_the_recalled_sources(trained: Trained, cli_runner: CliRunner) -> None:
    result = cli_runner.invoke(
        cli,
        ["ask", trained.root, QUESTION, "--recall", "1", "--no-stream",
         "--max-new-tokens", MAX_NEW_TOKENS],
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    answer = trained.model.answer(QUESTION, max_new_tokens=int(MAX_NEW_TOKENS))
    assert result.stdout.startswith(answer + "\n\n")
    sources = result.stdout[len(answer) + 2 :].splitlines()
    # One source (--recall 1): its header line, then its text, which is the unit's real text.
    assert len(sources) == 2, sources
    header = SOURCE_LINE.match(sources[0])
    assert header, sources[0]
    number, source, timestamp, score = header.groups()
    assert number == "1"
    units_by_text = {unit.text: unit for unit in trained.units}
    assert sources[1] in units_by_text
    unit = units_by_text[sources[1]]
    document = next(d for d in trained.documents if d.id == unit.document_id)
    assert source == document.source
    assert timestamp == unit.timestamp
    assert float(score) > 0
    # It is what the model recalls (the question's words point at the trip note).
    [found] = trained.model.recall(QUESTION, 1)
    assert (found.unit_id, f"{found.score:.2f}") == (unit.id, score)
    assert source == "notes/trip.md"


def test_ask_recall_prints_at_most_k_sources(trained: Trained, cli_runner: CliRunner) -> None:
    result = cli_runner.invoke(
        cli,
        ["ask", trained.root, "What is fact 3, and who painted a sunrise?", "--recall", "2",
         "--max-new-tokens", MAX_NEW_TOKENS],
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    headers = [SOURCE_LINE.match(line) for line in result.stdout.splitlines()]
    numbers = [int(match.group(1)) for match in headers if match]
    # Two units hold words of the question, so at least two match; no more than k are shown.
    assert numbers == [1, 2]
    texts = {unit.text for unit in trained.units}
    printed = [line for line in result.stdout.splitlines() if line in texts]
    assert len(printed) == 2 and len(set(printed)) == 2


def test_ask_without_a_trained_adapter_is_one_error_line(tmp_path: Path) -> None:
    workspace = train_workspace(tmp_path / "memory")  # synthesized, never trained

    result = run_ragtune("ask", workspace.root, QUESTION)

    line = error_line(result)  # exit 1, no traceback
    assert "has no adapter 'default'" in line
    assert "ragtune train" in line
    assert str(workspace.root) in line
    assert result.stdout == ""


def test_ask_with_an_unknown_adapter_name_is_an_error(
    trained: Trained, cli_runner: CliRunner
) -> None:
    result = cli_runner.invoke(cli, ["ask", trained.root, QUESTION, "--adapter", "other"])

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    assert "has no adapter 'other'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.subprocess
def test_quiet_ask_writes_nothing_to_stderr(trained: Trained) -> None:
    # `-q`: "No progress bars or warnings." In a real process: transformers draws its loading
    # bars and logs through the stderr it was first configured with, and Python warnings print
    # there; in-process, none of them would reach the captured stderr.
    result = run_console_script(
        "-q", "ask", trained.root, QUESTION, "--no-stream", "--max-new-tokens", MAX_NEW_TOKENS
    )

    assert result.returncode == 0, result.stderr
    answer = trained.model.answer(QUESTION, max_new_tokens=int(MAX_NEW_TOKENS))
    assert result.stdout == answer + "\n"
    assert visible_lines(result.stderr) == []


# -- export ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exported(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("export") / "merged"
    result = run_ragtune("export", trained.root, "--merged", target)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"wrote {target}\n"
    return target


def test_export_writes_a_plain_safetensors_model_with_its_tokenizer(
    exported: Path, tiny_model_dir: Path
) -> None:
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    names = {path.name for path in exported.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= names
    assert not names & {"adapter_config.json", "adapter_model.safetensors", "manifest.json"}
    assert not [p for p in exported.rglob("*") if p.suffix in {".bin", ".pt", ".pth", ".pkl"}]
    tensors = load_file(str(exported / "model.safetensors"))
    assert tensors
    assert not [name for name in tensors if "lora_" in name or "base_layer" in name]
    assert {t.dtype for t in tensors.values()} == {torch.float32}
    config = json.loads((exported / "config.json").read_text(encoding="utf-8"))
    assert config["architectures"] == ["LlamaForCausalLM"]

    tokenizer = AutoTokenizer.from_pretrained(exported)
    original = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert tokenizer.get_vocab() == original.get_vocab()
    conversation = [{"role": "user", "content": QUESTION}]
    assert tokenizer.apply_chat_template(
        conversation, tokenize=False, add_generation_prompt=True
    ) == original.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)


def test_exported_model_computes_what_base_plus_adapter_computes(
    exported: Path, trained: Trained, tiny_model_dir: Path
) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    merged = AutoModelForCausalLM.from_pretrained(exported).eval()
    assert not isinstance(merged, PeftModel)
    assert not [name for name, _ in merged.named_modules() if "lora_" in name]
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    tuned = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir),
        trained.workspace.adapter_path("default"),
    ).eval()
    ids = torch.tensor([[5, 17, 42, 99, 7, 3, 250, 11]])

    with torch.no_grad():
        merged_logits = merged(input_ids=ids).logits
        tuned_logits = tuned(input_ids=ids).logits
        base_logits = base(input_ids=ids).logits

    # W + s·BA in one matrix rounds differently from W·x + s·B(A·x): equal up to float32
    # rounding, not bit for bit. The tiny model's wide random weights make logits of about
    # ±15, where that rounding reaches about 1e-4.
    merge_error = (merged_logits - tuned_logits).abs().max().item()
    assert merge_error < 1e-3
    # The adapter changed the model (by far more than the rounding), so the comparison says
    # something.
    assert (base_logits - tuned_logits).abs().max().item() > 10 * 1e-3


def test_export_replaces_the_target_folder(
    trained: Trained, cli_runner: CliRunner, tmp_path: Path
) -> None:
    target = tmp_path / "merged"
    target.mkdir()
    (target / "stale.txt").write_text("from an earlier export", encoding="utf-8")

    result = cli_runner.invoke(cli, ["export", trained.root, "--merged", str(target)])

    assert result.exit_code == 0, result.output
    names = {path.name for path in target.iterdir()}
    assert "stale.txt" not in names
    assert {"config.json", "model.safetensors"} <= names
    assert [p.name for p in tmp_path.iterdir()] == ["merged"]  # no temporary folders left


def test_export_without_a_trained_adapter_is_an_error(
    cli_runner: CliRunner, tmp_path: Path
) -> None:
    workspace = train_workspace(tmp_path / "memory")  # synthesized, never trained
    target = tmp_path / "merged"

    result = cli_runner.invoke(cli, ["export", str(workspace.root), "--merged", str(target)])

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    assert "has no adapter 'default'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not target.exists()
