"""Running systems over questions: every answer scored the LoCoMo way and timed, per-system
aggregates (F1 per category, latency median and p95, tokens, peak memory, size on disk)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ragtune.baselines.systems import MemorySystem, SystemAnswer
from ragtune.eval.locomo_scoring import CategoryScores, score_answer, summarize
from ragtune.eval.memory_usage import peak_rss_bytes, reset_peak_rss
from ragtune.eval.questions import Question
from ragtune.progress import progress_bar


@dataclass(frozen=True)
class ScoredAnswer:
    """A system's answer to a question, with its LoCoMo score."""

    question: Question
    answer: SystemAnswer
    score: float


@dataclass
class SystemRun:
    """One system's answers to all questions, and what they cost.

    Attributes:
        system: The system's name.
        model: The reader (``base`` or ``base+adapter``).
        answers: One per question, in question order.
        peak_rss_bytes: The process's peak resident memory while answering.
        memory_bytes: What the system's memory takes on disk.
        judged: The judge's correct/incorrect verdict per answer (filled by `judge_runs`).
    """

    system: str
    model: str
    answers: list[ScoredAnswer]
    peak_rss_bytes: int
    memory_bytes: int
    judged: list[bool | None] = field(default_factory=list)

    @property
    def scores(self) -> CategoryScores:
        """F1 per category, overall (1–4) and the abstention rate on category 5."""
        return summarize((a.question.category, a.score) for a in self.answers)

    def latency(self) -> tuple[float, float]:
        """Median and 95th percentile of the seconds per answer."""
        return latency_summary([a.answer.seconds for a in self.answers])

    def mean(self, attribute: str) -> float:
        """The mean of an integer attribute of the answers (``prompt_tokens``, ...)."""
        values = [getattr(a.answer, attribute) for a in self.answers]
        return statistics.fmean(values) if values else 0.0

    def to_json(self) -> dict[str, Any]:
        """Everything about the run, for results.json."""
        scores = self.scores
        median, p95 = self.latency()
        return {
            "system": self.system,
            "model": self.model,
            "f1": {str(c): round(v, 4) for c, v in sorted(scores.means.items())},
            "counts": {str(c): n for c, n in sorted(scores.counts.items())},
            "overall_f1": None if scores.overall is None else round(scores.overall, 4),
            "abstention": None if scores.abstention is None else round(scores.abstention, 4),
            "latency_median_s": round(median, 4),
            "latency_p95_s": round(p95, 4),
            "prompt_tokens_mean": round(self.mean("prompt_tokens"), 1),
            "completion_tokens_mean": round(self.mean("completion_tokens"), 1),
            "truncated_tokens_max": max(
                (a.answer.truncated_tokens for a in self.answers), default=0
            ),
            "peak_rss_bytes": self.peak_rss_bytes,
            "memory_bytes": self.memory_bytes,
            "answers": [
                {
                    "id": a.question.id,
                    "category": a.question.category,
                    "question": a.question.question,
                    "gold": a.question.answer,
                    "prediction": a.answer.text,
                    "score": round(a.score, 4),
                    "seconds": round(a.answer.seconds, 4),
                    "prompt_tokens": a.answer.prompt_tokens,
                    "completion_tokens": a.answer.completion_tokens,
                    "unit_ids": list(a.answer.unit_ids),
                    "truncated_tokens": a.answer.truncated_tokens,
                    **({"judged_correct": self.judged[i]} if self.judged else {}),
                }
                for i, a in enumerate(self.answers)
            ],
        }


def latency_summary(seconds: Sequence[float]) -> tuple[float, float]:
    """The median and the 95th percentile (nearest rank) of `seconds`; zeros when empty."""
    if not seconds:
        return 0.0, 0.0
    ordered = sorted(seconds)
    rank = max(1, -(-95 * len(ordered) // 100))  # ceil(0.95 n)
    return statistics.median(ordered), ordered[rank - 1]


def run_system(
    system: MemorySystem, questions: Sequence[Question], *, progress: bool = False
) -> SystemRun:
    """Ask `system` every question (after one untimed warm-up answer), scoring each answer."""
    system.warm_up()
    reset_peak_rss()
    answers = []
    for question in progress_bar(questions, desc=system.name, unit="question", enabled=progress):
        answer = system.answer(question.question)
        score = score_answer(answer.text, question.answer, question.category)
        answers.append(ScoredAnswer(question, answer, score))
    return SystemRun(
        system=system.name,
        model=system.reader.model_name if system.tuned else system.reader.base_name,
        answers=answers,
        peak_rss_bytes=peak_rss_bytes(),
        memory_bytes=system.memory_bytes,
    )
