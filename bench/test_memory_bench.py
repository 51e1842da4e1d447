"""The systems answering LoCoMo questions about one memory or several, timed and scored.

Each benchmark is one system answering one memory's question set once (`run_system`: a warm-up
answer, then every question timed); `extra_info` holds its LoCoMo F1 per category, diagnostics,
latency median and p95, tokens, peak RSS and memory size, and the last test pools the memories
and writes the comparison report (results.json, report.md with each conversation and the paired
intervals, charts).

`make bench` points it at trained LoCoMo conversations (the embedded SmolLM2 tuned on each dev
conversation) through the environment:

- ``RAGTUNE_BENCH_WORKSPACES``: the trained workspaces, separated by spaces;
- ``RAGTUNE_BENCH_QUESTIONS``: the LoCoMo file whose QA to ask (each workspace its own);
- ``RAGTUNE_BENCH_LIMIT``: how many questions per workspace (every category keeps its share;
  unset: all);
- ``RAGTUNE_BENCH_SYSTEM_LIMITS``: fewer for some systems (``long-context=30``, per workspace);
- ``RAGTUNE_BENCH_REPORT``: where to write the report.

Without them (`make test`) it runs once on a tiny memory built on the spot with the tiny random
model, to keep the path working.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ragtune.baselines import SYSTEM_NAMES, MemorySystem
from ragtune.baselines.oracle import TurnKey
from ragtune.eval.questions import Question
from ragtune.eval.runner import SystemRun

pytestmark = [pytest.mark.benchmark, pytest.mark.slow]

WORKSPACES = os.environ.get("RAGTUNE_BENCH_WORKSPACES", "").split() or ["tiny"]

#: Each system's runs, one per memory, in the order benchmarked; the report pools them.
RUNS: dict[str, list[SystemRun]] = {}
SETUPS: list[dict[str, Any]] = []


@dataclass
class Bench:
    systems: dict[str, MemorySystem]
    questions: list[Question]
    unit_turns: dict[str, frozenset[TurnKey]]
    setup: dict[str, Any]


@pytest.fixture(scope="module", params=WORKSPACES)
def bench(
    request: pytest.FixtureRequest, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Bench:
    from ragtune.eval.evaluation import EvalSettings, open_systems, workspace_conversations
    from ragtune.eval.questions import load_questions, pick
    from ragtune.testing import build_tiny_memory, tiny_locomo_conversation
    from ragtune.workspace import Workspace

    if request.param == "tiny":
        folder = tmp_path_factory.mktemp("memory-bench")
        questions_file = folder / "tiny.json"
        questions_file.write_text(json.dumps([tiny_locomo_conversation()]), encoding="utf-8")
        workspace = Workspace.at(
            build_tiny_memory(folder / "memory", tiny_model_dir, questions_file)
        )
    else:
        workspace = Workspace.at(request.param)
        questions_file = Path(os.environ["RAGTUNE_BENCH_QUESTIONS"])
    limit = os.environ.get("RAGTUNE_BENCH_LIMIT")
    questions = pick(
        load_questions(questions_file, conversations=workspace_conversations(workspace)),
        int(limit) if limit else None,
    )
    opened = open_systems(workspace, EvalSettings(systems=SYSTEM_NAMES))
    opened.setup["questions"] = f"{len(questions)} from {questions_file.name}"
    SETUPS.append(opened.setup)
    return Bench({s.name: s for s in opened.systems}, questions, opened.unit_turns, opened.setup)


def system_limits() -> dict[str, int]:
    from ragtune.eval.evaluation import parse_system_limits

    return parse_system_limits(os.environ.get("RAGTUNE_BENCH_SYSTEM_LIMITS", "").split())


@pytest.mark.timeout(4 * 3600)  # long context reads the whole window per question
@pytest.mark.parametrize("name", SYSTEM_NAMES)
def test_answering_the_questions(benchmark: Any, bench: Bench, name: str) -> None:
    """One system answers every question once."""
    from ragtune.eval.questions import pick
    from ragtune.eval.runner import run_system

    questions = pick(bench.questions, system_limits().get(name))
    run = benchmark.pedantic(
        run_system,
        args=(bench.systems[name], questions),
        kwargs={"unit_turns": bench.unit_turns},
        rounds=1,
        iterations=1,
    )
    RUNS.setdefault(name, []).append(run)
    summary = {key: value for key, value in run.to_json().items() if key != "answers"}
    benchmark.extra_info.update(summary, questions=len(questions), memory=bench.setup["workspace"])
    assert len(run.answers) == len(questions)
    assert all(answer.answer.completion_tokens > 0 for answer in run.answers)


def test_the_report_compares_every_system(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Pools the memories and writes the comparison of the systems benchmarked above."""
    from ragtune.eval.evaluation import pool_runs, pooled_setup
    from ragtune.eval.report import write_report

    missing = [name for name in SYSTEM_NAMES if len(RUNS.get(name, ())) < len(WORKSPACES)]
    if missing:
        pytest.skip(f"the report needs every system; not run here: {', '.join(missing)}")
    runs = pool_runs([[RUNS[name][i] for name in SYSTEM_NAMES] for i in range(len(WORKSPACES))])
    report = os.environ.get("RAGTUNE_BENCH_REPORT")
    folder = Path(report) if report else tmp_path_factory.mktemp("report")
    setup = pooled_setup(SETUPS)
    setup["questions"] = f"{sum(len(r.answers) for r in runs[:1])} asked"
    files = write_report(folder, runs, setup=setup)
    report = files.markdown.read_text(encoding="utf-8")
    assert all(f"| {name} |" in report for name in SYSTEM_NAMES)
    assert files.f1_chart.stat().st_size > 0 and files.latency_chart.stat().st_size > 0
