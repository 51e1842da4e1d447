"""`ragtune synthesize` end to end, on a private copy of the indexed LoCoMo slice (its
memory.yaml names the tiny test model; heuristic writer): in-process with click's `CliRunner`
(`run_ragtune`), except the test marked `subprocess`, which runs the installed console script to
prove that `-q` leaves a real process's stderr empty."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from ragtune.synth import STRATEGY_NAMES
from ragtune.workspace import Workspace
from support import Run, error_line, run_console_script, run_ragtune, visible_lines

SUMMARY = re.compile(
    r"^synthesized (?P<records>\d+) records \((?P<train>\d+) train, (?P<val>\d+) val; "
    r"(?P<facts>\d+) facts\) with the (?P<writer>\w+) writer: (?P<kinds>[^;]+); "
    r"(?P<dropped>\d+) dropped; (?P<new>\d+) new, (?P<kept>\d+) kept, (?P<retired>\d+) retired; "
    r"(?P<tokens>\d+) tokens; teacher calls (?P<calls>\d+); "
    r"(?P<seconds>\d+\.\d) s$"
)
MISSING_MODEL = "model=hf:/nonexistent/ragtune-test-model"


def summary_of(run: Run) -> re.Match[str]:
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    summary, wrote = run.stdout.splitlines()
    match = SUMMARY.match(summary)
    assert match, summary
    assert wrote.startswith("wrote ")
    return match


def kinds_of(summary: re.Match[str]) -> dict[str, int]:
    pairs = (item.rsplit(" ", 1) for item in summary["kinds"].split(", "))
    return {kind: int(n) for kind, n in pairs}


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_synthesize_help() -> None:
    result = run_ragtune("synthesize", "--help")

    assert result.returncode == 0, result.stderr
    for words in ("WORKSPACE", "--teacher", "--writer", "--strategies", "--split", "--per-unit"):
        assert words in result.stdout


def test_synthesize_writes_the_files_and_prints_the_summary(synth_workspace: Workspace) -> None:
    result = run_ragtune("synthesize", synth_workspace.root)

    summary = summary_of(result)
    train, val = jsonl(synth_workspace.train_path), jsonl(synth_workspace.val_path)
    card = json.loads(synth_workspace.card_path.read_text(encoding="utf-8"))
    assert int(summary["train"]) == len(train) == card["train"] > 0
    assert int(summary["val"]) == len(val) == card["val"] > 0
    assert int(summary["records"]) == card["records"] == len(train) + len(val)
    assert int(summary["facts"]) == card["facts"]
    assert int(summary["tokens"]) == card["tokens"]["total"] > 0
    assert summary["writer"] == "heuristic"
    assert summary["calls"] == "0"
    assert kinds_of(summary) == {kind: sum(sides.values()) for kind, sides in card["kinds"].items()}
    paths = (synth_workspace.train_path, synth_workspace.val_path, synth_workspace.card_path)
    assert result.stdout.splitlines()[1] == "wrote {}, {} and {}".format(*paths)
    assert visible_lines(result.stderr) == [f"warning: skipped cot: {card['skipped']['cot']}"]
    saved = yaml.safe_load(synth_workspace.config_path.read_text(encoding="utf-8"))
    assert saved["synth"]["strategies"] == list(STRATEGY_NAMES)
    assert saved["synth"]["split"] == "paraphrase"


def test_options_choose_strategies_counts_and_split(synth_workspace: Workspace) -> None:
    result = run_ragtune(
        "synthesize", synth_workspace.root, "--strategies", "text_units", "--per-unit", "2",
        "--paraphrases", "1", "--split", "source", "--seed", "3",
    )  # fmt: skip

    summary = summary_of(result)
    assert list(kinds_of(summary)) == ["text_unit"]
    assert result.stderr == ""  # no strategy was skipped: cot was not asked for
    train, val = jsonl(synth_workspace.train_path), jsonl(synth_workspace.val_path)
    records = train + val
    assert records and {r["kind"] for r in records} == {"text_unit"}
    facts_per_unit: dict[str, set[str]] = defaultdict(set)
    for r in records:
        [unit] = r["source_ids"]
        facts_per_unit[unit].add(r["fact_id"])
    assert max(len(facts) for facts in facts_per_unit.values()) == 2
    assert len({r["fact_id"] for r in records}) == len(records)  # one phrasing per fact
    train_units = {u for r in train for u in r["source_ids"]}
    val_units = {u for r in val for u in r["source_ids"]}
    assert not train_units & val_units
    card = json.loads(synth_workspace.card_path.read_text(encoding="utf-8"))
    assert card["split"] == {"mode": "source", "val_fraction": 0.1, "seed": 3}
    assert list(card["strategies"]) == ["text_units"]
    saved = yaml.safe_load(synth_workspace.config_path.read_text(encoding="utf-8"))["synth"]
    assert saved["strategies"] == ["text_units"]
    assert saved["text_units"] == {"per_unit": 2, "paraphrases": 1, "mentions": "clause"}
    assert saved["split"] == "source"
    assert saved["seed"] == 3


@pytest.mark.subprocess
def test_quiet_silences_warnings(synth_workspace: Workspace) -> None:
    # The model's tokenizer cannot be loaded, so tokens are counted as words, with a warning
    # (test_synth_pipeline.py checks the warning itself); -q keeps stderr empty. In a real
    # process, so that transformers' own messages about the failed load (its logger writes
    # to the stderr it was configured with) and Python warnings would show too.
    result = run_console_script(
        "-q", "synthesize", synth_workspace.root, "--strategies", "temporal", MISSING_MODEL
    )

    assert int(summary_of(result)["records"]) > 0
    assert result.stderr == ""
    card = json.loads(synth_workspace.card_path.read_text(encoding="utf-8"))
    assert card["tokens"]["counted_in"] == "words"
    assert card["tokens"]["prompt"] == sum(
        len(r["prompt"][-1]["content"].split())
        for path in (synth_workspace.train_path, synth_workspace.val_path)
        for r in jsonl(path)
    )


def test_unknown_strategy_is_one_error_line(synth_workspace: Workspace) -> None:
    before = synth_workspace.config_path.read_text(encoding="utf-8")

    result = run_ragtune("synthesize", synth_workspace.root, "--strategies", "text_units,bogus")

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    [line] = visible_lines(result.stderr)
    assert line.startswith("error: ")
    assert "bogus" in line
    assert all(name in line for name in STRATEGY_NAMES)
    assert result.stdout == ""
    assert not synth_workspace.synth_dir.exists()
    assert synth_workspace.config_path.read_text(encoding="utf-8") == before


def test_missing_workspace_is_one_error_line(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-memory"

    result = run_ragtune("synthesize", missing)

    line = error_line(result)
    assert str(missing) in line
    assert "no such workspace" in line
    assert result.stdout == ""
    assert not missing.exists()


def test_workspace_without_an_index_is_one_error_line(synth_workspace: Workspace) -> None:
    synth_workspace.entities_path.unlink()

    result = run_ragtune("synthesize", synth_workspace.root)

    assert result.returncode == 1
    [line] = visible_lines(result.stderr)
    assert line.startswith("error: ")
    assert "run `ragtune index` first" in line
    assert not synth_workspace.synth_dir.exists()
