"""The five systems answering LoCoMo questions about one memory, timed and scored.

Each benchmark is one system answering the whole question set once (`run_system`: a warm-up
answer, then every question timed); `extra_info` holds its LoCoMo F1 per category, latency
median and p95, tokens, peak RSS and memory size, and the last test writes the comparison report
(results.json, report.md, charts).

`make bench` points it at a trained LoCoMo conversation (the embedded SmolLM2 tuned on conv-30)
through the environment:

- ``RAGTUNE_BENCH_WORKSPACE``: the trained workspace;
- ``RAGTUNE_BENCH_QUESTIONS``: the LoCoMo file whose QA to ask;
- ``RAGTUNE_BENCH_LIMIT``: how many questions (every category keeps its share);
- ``RAGTUNE_BENCH_REPORT``: where to write the report.

Without them (`make test`) it runs once on a tiny memory built on the spot with the tiny random
model, to keep the path working.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ragtune.baselines import SYSTEM_NAMES, MemorySystem
from ragtune.eval.questions import Question
from ragtune.eval.runner import SystemRun

pytestmark = [pytest.mark.benchmark, pytest.mark.slow]


@dataclass
class Bench:
    systems: dict[str, MemorySystem]
    questions: list[Question]
    setup: dict[str, Any]
    report: Path
    runs: dict[str, SystemRun] = field(default_factory=dict)


@pytest.fixture(scope="module")
def bench(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Bench:
    from ragtune.eval.evaluation import EvalSettings, open_systems, workspace_conversations
    from ragtune.eval.questions import load_questions, pick
    from ragtune.testing import build_tiny_memory, tiny_locomo_conversation
    from ragtune.workspace import Workspace

    folder = tmp_path_factory.mktemp("memory-bench")
    if "RAGTUNE_BENCH_WORKSPACE" in os.environ:
        workspace = Workspace.at(os.environ["RAGTUNE_BENCH_WORKSPACE"])
        questions_file = Path(os.environ["RAGTUNE_BENCH_QUESTIONS"])
    else:
        questions_file = folder / "tiny.json"
        questions_file.write_text(json.dumps([tiny_locomo_conversation()]), encoding="utf-8")
        workspace = Workspace.at(
            build_tiny_memory(folder / "memory", tiny_model_dir, questions_file)
        )
    limit = os.environ.get("RAGTUNE_BENCH_LIMIT")
    questions = pick(
        load_questions(questions_file, conversations=workspace_conversations(workspace)),
        int(limit) if limit else None,
    )
    systems, setup = open_systems(workspace, EvalSettings())
    setup["questions"] = f"{len(questions)} from {questions_file.name}"
    report = Path(os.environ.get("RAGTUNE_BENCH_REPORT") or folder / "report")
    return Bench({s.name: s for s in systems}, questions, setup, report)


@pytest.mark.timeout(4 * 3600)  # long context reads the whole window per question
@pytest.mark.parametrize("name", SYSTEM_NAMES)
def test_answering_the_questions(benchmark: Any, bench: Bench, name: str) -> None:
    """One system answers every question once."""
    from ragtune.eval.runner import run_system

    run = benchmark.pedantic(
        run_system, args=(bench.systems[name], bench.questions), rounds=1, iterations=1
    )
    bench.runs[name] = run
    summary = {key: value for key, value in run.to_json().items() if key != "answers"}
    benchmark.extra_info.update(summary, questions=len(bench.questions))
    assert len(run.answers) == len(bench.questions)
    assert all(answer.answer.completion_tokens > 0 for answer in run.answers)


def test_the_report_compares_every_system(bench: Bench) -> None:
    """Writes the comparison of the systems benchmarked above."""
    from ragtune.eval.report import write_report

    missing = [name for name in SYSTEM_NAMES if name not in bench.runs]
    if missing:
        pytest.skip(f"the report needs every system; not run here: {', '.join(missing)}")
    files = write_report(
        bench.report, [bench.runs[name] for name in SYSTEM_NAMES], setup=bench.setup
    )
    report = files.markdown.read_text(encoding="utf-8")
    assert all(f"| {name} |" in report for name in SYSTEM_NAMES)
    assert files.f1_chart.stat().st_size > 0 and files.latency_chart.stat().st_size > 0
