"""The evaluation report: ``results.json`` (every answer with its score and latency, and the
aggregates), ``report.md`` (the comparison table, the diagnostics, each conversation, the paired
differences with their intervals) and two bar charts (F1 per category per system, latency per
system)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragtune.eval.judge import CRITERIA, JudgeReport
from ragtune.eval.locomo_scoring import ANSWERED_CATEGORIES, CATEGORY_NAMES
from ragtune.eval.paired import PairedDifference, paired_differences
from ragtune.eval.runner import SystemRun
from ragtune.fileio import atomic_path, atomic_write_text

_MB = 1024 * 1024


@dataclass(frozen=True)
class ReportFiles:
    """The files a report wrote."""

    results: Path
    markdown: Path
    f1_chart: Path
    latency_chart: Path


def results_json(
    runs: Sequence[SystemRun],
    *,
    setup: dict[str, Any],
    judge: JudgeReport | None = None,
    paired: Sequence[PairedDifference] | None = None,
) -> dict[str, Any]:
    """Everything measured: the setup, each system's aggregates and answers, latency ratios,
    the paired F1 differences (`paired`, computed when not given), and the judge's verdicts."""
    paired = paired_differences(runs) if paired is None else paired
    return {
        "setup": setup,
        "systems": [run.to_json() for run in runs],
        "latency_ratios": latency_ratios(runs),
        "paired": [difference.to_json() for difference in paired],
        "judge": judge.to_json() if judge else None,
    }


def latency_ratios(runs: Sequence[SystemRun]) -> dict[str, float]:
    """The tuned model's median latency over each other system's (``native/rag``, ...)."""
    medians = {run.system: run.latency()[0] for run in runs}
    native = medians.get("native")
    if not native:
        return {}
    return {
        f"native/{name}": round(native / median, 4)
        for name, median in medians.items()
        if name != "native" and median > 0
    }


def markdown_report(
    runs: Sequence[SystemRun],
    *,
    setup: dict[str, Any],
    judge: JudgeReport | None = None,
    paired: Sequence[PairedDifference] | None = None,
) -> str:
    """The report as markdown: the setup, the comparison table, ratios, diagnostics, each
    conversation, the paired differences (`paired`, computed when not given), truncation,
    judge."""
    paired = paired_differences(runs) if paired is None else paired
    categories = sorted({c for run in runs for c in run.scores.counts})
    counts = {c: max(run.scores.counts.get(c, 0) for run in runs) for c in categories}
    heads = [f"{c} {CATEGORY_NAMES[c]} (n={counts[c]})" for c in categories if c != 5]
    lines = [
        "# ragtune evaluation",
        "",
        *(f"- {key}: {value}" for key, value in setup.items()),
        "",
        "F1 is LoCoMo's token F1 (official scorer); category 5 is the share of answers that "
        "abstain. Latency is wall-clock seconds per answer, warm model.",
        "",
        "| system | "
        + " | ".join(heads)
        + " | overall 1–4 | 5 abstained | median s | p95 s | prompt tok | answer tok "
        "| peak RSS MB | memory MB |",
        "|---" * (len(heads) + 9) + "|",
    ]
    for run in runs:
        scores = run.scores
        median, p95 = run.latency()
        cells = [
            f"{scores.means[c]:.3f}" if c in scores.means else "–" for c in categories if c != 5
        ]
        lines.append(
            f"| {run.system} | "
            + " | ".join(cells)
            + f" | {_number(scores.overall)} | {_number(scores.abstention)} | {median:.2f} "
            f"| {p95:.2f} | {run.mean('prompt_tokens'):.0f} | {run.mean('completion_tokens'):.1f} "
            f"| {run.peak_rss_bytes / _MB:.0f} | {run.memory_bytes / _MB:.1f} |"
        )
    ratios = latency_ratios(runs)
    if ratios:
        lines += [
            "",
            "Median latency ratios: " + ", ".join(f"{k} = {v:.2f}" for k, v in ratios.items()),
        ]
    lines += _diagnostic_lines(runs)
    lines += _conversation_lines(runs)
    lines += _paired_lines(paired)
    for run in runs:
        truncated = max((a.answer.truncated_tokens for a in run.answers), default=0)
        if truncated:
            lines += [
                "",
                f"{run.system}: up to {truncated} memory tokens did not fit the reader's window "
                "and were left out (the oldest passages).",
            ]
    if judge is not None:
        lines += _judge_lines(judge)
    return "\n".join(lines) + "\n"


def _diagnostic_lines(runs: Sequence[SystemRun]) -> list[str]:
    lines = [
        "",
        "## Answers (categories 1–4)",
        "",
        "Exact match: the normalized answer is the gold answer. Right month: of the temporal "
        "answers whose gold names a month, the share naming that month and year (token F1 "
        "credits a date for its year alone). Abstained: the answer says it is not mentioned. "
        "Evidence recall@k: a passage in the prompt holds a gold evidence turn.",
        "",
        "| system | exact match | right month | abstained | words per answer | evidence recall@k |",
        "|---|---|---|---|---|---|",
    ]
    for run in runs:
        found = run.diagnostics()
        words = found["answer_words"]
        cells = [
            _number(found["exact_match"]),
            _number(found["right_month"]),
            _number(found["abstention_1_4"]),
            "–" if words is None else f"{words:.1f}",
            _number(found["evidence_recall"]),
        ]
        lines.append(f"| {run.system} | " + " | ".join(cells) + " |")
    return lines


def _conversation_lines(runs: Sequence[SystemRun]) -> list[str]:
    names = sorted({name for run in runs for name in run.conversation_scores()})
    if len(names) < 2:
        return []
    lines = [
        "",
        "## Each conversation (F1 on categories 1–4 / category 5 abstained)",
        "",
        "| system | " + " | ".join(names) + " | pooled |",
        "|---" * (len(names) + 2) + "|",
    ]
    for run in runs:
        found = run.conversation_scores()
        cells = [
            f"{_number(found[n].overall)} / {_number(found[n].abstention)}" if n in found else "–"
            for n in names
        ]
        pooled = run.scores
        lines.append(
            f"| {run.system} | "
            + " | ".join(cells)
            + f" | {_number(pooled.overall)} / {_number(pooled.abstention)} |"
        )
    return lines


def _paired_lines(differences: Sequence[PairedDifference]) -> list[str]:
    if not differences:
        return []
    lines = [
        "",
        "## Paired F1 differences (categories 1–4)",
        "",
        "Mean of the per-question differences over the questions both systems answered, with a "
        "95% bootstrap interval (conversations resampled, then questions within each).",
        "",
        "| systems | questions | conversations | mean difference | 95% interval |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {d.system} − {d.against} | {d.questions} | {d.conversations} | {d.mean:+.3f} "
        f"| [{d.low:+.3f}, {d.high:+.3f}] |"
        for d in differences
    ]
    return lines


def _judge_lines(judge: JudgeReport) -> list[str]:
    lines = ["", f"## Judge: {judge.judge}", "", "| system | judged correct (1–4) |", "|---|---|"]
    lines += [f"| {name} | {share:.3f} |" for name, share in judge.correct.items()]
    if judge.pairwise:
        lines += [
            "",
            "Pairwise, both answer orders (wins/ties/losses of the first system):",
            "",
            "| pair | " + " | ".join(CRITERIA) + " |",
            "|---" * (len(CRITERIA) + 1) + "|",
        ]
        for tally in judge.pairwise:
            cells = [f"{tally.wins[c]}/{tally.ties[c]}/{tally.losses[c]}" for c in CRITERIA]
            lines.append(f"| {tally.system} vs {tally.against} | " + " | ".join(cells) + " |")
    if judge.failures:
        lines += ["", f"{judge.failures} judge replies could not be read (no verdict / tie)."]
    return lines


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def plot_f1(runs: Sequence[SystemRun], path: Path) -> None:
    """A grouped bar chart: F1 per category (and overall) for each system."""
    categories = [c for c in ANSWERED_CATEGORIES if any(c in r.scores.means for r in runs)]
    labels = [CATEGORY_NAMES[c] for c in categories] + ["overall 1–4", "5 abstained"]
    series = {
        run.system: [run.scores.means.get(c, 0.0) for c in categories]
        + [run.scores.overall or 0.0, run.scores.abstention or 0.0]
        for run in runs
    }
    _grouped_bars(path, labels, series, ylabel="score", title="LoCoMo F1 per category")


def plot_latency(runs: Sequence[SystemRun], path: Path) -> None:
    """A bar chart: median and p95 seconds per answer for each system."""
    labels = [run.system for run in runs]
    series = {
        "median": [run.latency()[0] for run in runs],
        "p95": [run.latency()[1] for run in runs],
    }
    _grouped_bars(path, labels, series, ylabel="seconds per answer", title="Latency")


def _grouped_bars(
    path: Path, labels: list[str], series: dict[str, list[float]], *, ylabel: str, title: str
) -> None:
    from matplotlib.figure import Figure

    # A figure of its own (no pyplot): nothing global changes, the backend included.
    figure = Figure(figsize=(max(6.0, 1.2 * len(labels) + 2), 4))
    axes = figure.subplots()
    width = 0.8 / max(len(series), 1)
    for number, (name, values) in enumerate(series.items()):
        positions = [i + (number - (len(series) - 1) / 2) * width for i in range(len(labels))]
        axes.bar(positions, values, width=width, label=name)
    axes.set_xticks(range(len(labels)), labels, rotation=15)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.legend()
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=100)


def write_report(
    out: Path,
    runs: Sequence[SystemRun],
    *,
    setup: dict[str, Any],
    judge: JudgeReport | None = None,
) -> ReportFiles:
    """Write results.json, report.md, f1_per_category.png and latency.png into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    files = ReportFiles(
        out / "results.json", out / "report.md", out / "f1_per_category.png", out / "latency.png"
    )
    paired = paired_differences(runs)  # the bootstrap once, for both files
    payload = results_json(runs, setup=setup, judge=judge, paired=paired)
    atomic_write_text(files.results, json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    text = markdown_report(runs, setup=setup, judge=judge, paired=paired)
    atomic_write_text(files.markdown, text)
    plot_f1(runs, files.f1_chart)
    plot_latency(runs, files.latency_chart)
    return files
