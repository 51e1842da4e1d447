"""Running systems over questions: every answer scored the LoCoMo way and timed, per-system
aggregates (F1 per category, per conversation, exact match, abstention, answer length, evidence
recall of the retrieving systems, latency median and p95, tokens, peak memory, size on disk)."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ragtune.baselines.oracle import Evidence, TurnKey
from ragtune.baselines.systems import MemorySystem, SystemAnswer
from ragtune.eval.locomo_scoring import (
    ANSWERED_CATEGORIES,
    CategoryScores,
    abstains,
    exact_match,
    same_month,
    score_answer,
    summarize,
)
from ragtune.eval.memory_usage import peak_rss_bytes, reset_peak_rss
from ragtune.eval.questions import Question
from ragtune.progress import progress_bar


@dataclass(frozen=True)
class ScoredAnswer:
    """A system's answer to a question, with its LoCoMo score.

    Attributes:
        question: The question.
        answer: The system's answer.
        score: Its LoCoMo score (F1, or abstained for category 5).
        evidence_found: Whether a passage in the prompt holds one of the question's evidence
            turns; None when the system put no passages or the evidence is unknown.
    """

    question: Question
    answer: SystemAnswer
    score: float
    evidence_found: bool | None = None

    @property
    def exact(self) -> bool:
        """Whether the answer is the gold answer, normalized (categories 1-4; else False)."""
        category = self.question.category
        return category in ANSWERED_CATEGORIES and exact_match(
            self.answer.text, self.question.answer, category
        )

    @property
    def right_month(self) -> bool | None:
        """For a temporal question (category 2) whose gold answer names a month, whether the
        answer names the same month and year; else None."""
        if self.question.category != 2:
            return None
        return same_month(self.answer.text, self.question.answer)

    @property
    def words(self) -> int:
        """The answer's length in words."""
        return len(self.answer.text.split())


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

    def conversation_scores(self) -> dict[str, CategoryScores]:
        """`scores` of each conversation's questions (questions of none under ``"-"``)."""
        grouped: dict[str, list[ScoredAnswer]] = {}
        for answer in self.answers:
            grouped.setdefault(answer.question.conversation or "-", []).append(answer)
        return {
            name: summarize((a.question.category, a.score) for a in answers)
            for name, answers in sorted(grouped.items())
        }

    def diagnostics(self) -> dict[str, float | None]:
        """Over the answers to categories 1-4: the exact-match rate, the share that abstain,
        the mean answer length in words; over the temporal answers whose gold names a month,
        the share naming that month (`same_month`); over the answers that had passages and
        known evidence, the share whose passages held an evidence turn (recall@k). None when
        no answer backs a number."""
        answered = [a for a in self.answers if a.question.category in ANSWERED_CATEGORIES]
        checked = [a.evidence_found for a in self.answers if a.evidence_found is not None]
        months = [m for a in answered if (m := a.right_month) is not None]
        return {
            "exact_match": _share([a.exact for a in answered]),
            "right_month": _share(months),
            "abstention_1_4": _share([abstains(a.answer.text) for a in answered]),
            "answer_words": statistics.fmean([a.words for a in answered]) if answered else None,
            "evidence_recall": _share(checked),
        }

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
        diagnostics = {k: None if v is None else round(v, 4) for k, v in self.diagnostics().items()}
        return {
            "system": self.system,
            "model": self.model,
            **_scores_json(scores),
            **diagnostics,
            "conversations": {
                name: _scores_json(found) for name, found in self.conversation_scores().items()
            },
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
                    "conversation": a.question.conversation,
                    "category": a.question.category,
                    "question": a.question.question,
                    "gold": a.question.answer,
                    "evidence": list(a.question.evidence),
                    "prediction": a.answer.text,
                    "score": round(a.score, 4),
                    "seconds": round(a.answer.seconds, 4),
                    "prompt_tokens": a.answer.prompt_tokens,
                    "completion_tokens": a.answer.completion_tokens,
                    "unit_ids": list(a.answer.unit_ids),
                    "evidence_found": a.evidence_found,
                    "truncated_tokens": a.answer.truncated_tokens,
                    **({"judged_correct": self.judged[i]} if self.judged else {}),
                }
                for i, a in enumerate(self.answers)
            ],
        }


def _scores_json(scores: CategoryScores) -> dict[str, Any]:
    """F1 per category, counts, overall and abstention, rounded for results.json."""
    return {
        "f1": {str(c): round(v, 4) for c, v in sorted(scores.means.items())},
        "counts": {str(c): n for c, n in sorted(scores.counts.items())},
        "overall_f1": None if scores.overall is None else round(scores.overall, 4),
        "abstention": None if scores.abstention is None else round(scores.abstention, 4),
    }


def run_from_json(data: dict[str, Any]) -> SystemRun:
    """A run read back from its `SystemRun.to_json` (as results.json holds it), so that runs of
    separate evaluations can be reported together. Answer texts, scores, times and token counts
    come back as written (times rounded to 0.1 ms); the judge's verdicts are not kept."""
    answers = []
    for item in data["answers"]:
        question = Question(
            id=item["id"],
            question=item["question"],
            answer=item["gold"],
            category=int(item["category"]),
            evidence=tuple(item.get("evidence", ())),
            conversation=item.get("conversation"),
        )
        answer = SystemAnswer(
            text=item["prediction"],
            seconds=float(item["seconds"]),
            prompt_tokens=int(item["prompt_tokens"]),
            completion_tokens=int(item["completion_tokens"]),
            unit_ids=tuple(item.get("unit_ids", ())),
            truncated_tokens=int(item.get("truncated_tokens", 0)),
        )
        answers.append(
            ScoredAnswer(question, answer, float(item["score"]), item.get("evidence_found"))
        )
    return SystemRun(
        system=data["system"],
        model=data["model"],
        answers=answers,
        peak_rss_bytes=int(data["peak_rss_bytes"]),
        memory_bytes=int(data["memory_bytes"]),
    )


def latency_summary(seconds: Sequence[float]) -> tuple[float, float]:
    """The median and the 95th percentile (nearest rank) of `seconds`; zeros when empty."""
    if not seconds:
        return 0.0, 0.0
    ordered = sorted(seconds)
    rank = max(1, -(-95 * len(ordered) // 100))  # ceil(0.95 n)
    return statistics.median(ordered), ordered[rank - 1]


def _share(flags: Sequence[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def question_evidence(question: Question) -> Evidence | None:
    """Where `question`'s answer is, as the oracle reads it; None when unknown."""
    return Evidence(question.conversation, question.evidence) if question.evidence else None


def evidence_found(
    answer: SystemAnswer, question: Question, unit_turns: Mapping[str, frozenset[TurnKey]]
) -> bool | None:
    """Whether one of the passages `answer` was given holds an evidence turn of `question`
    (None when it had no passages or the evidence is unknown)."""
    if not answer.unit_ids or not question.evidence:
        return None
    wanted = {(question.conversation, turn) for turn in question.evidence}
    held = set().union(*(unit_turns.get(unit_id, frozenset()) for unit_id in answer.unit_ids))
    if question.conversation is None:  # evidence named without its conversation
        held = {(None, turn) for _, turn in held}
    return bool(wanted & held)


def run_system(
    system: MemorySystem,
    questions: Sequence[Question],
    *,
    unit_turns: Mapping[str, frozenset[TurnKey]] | None = None,
    progress: bool = False,
) -> SystemRun:
    """Ask `system` every question (after one untimed warm-up answer), scoring each answer;
    with `unit_turns` (each text unit's turns), checking whether retrieved passages held the
    evidence."""
    system.warm_up()
    reset_peak_rss()
    answers = []
    for question in progress_bar(questions, desc=system.name, unit="question", enabled=progress):
        answer = system.answer(question.question, question_evidence(question))
        score = score_answer(answer.text, question.answer, question.category)
        found = (
            evidence_found(answer, question, unit_turns)
            if unit_turns is not None and system.retrieves
            else None
        )
        answers.append(ScoredAnswer(question, answer, score, found))
    return SystemRun(
        system=system.name,
        model=system.reader.model_name if system.tuned else system.reader.base_name,
        answers=answers,
        peak_rss_bytes=peak_rss_bytes(),
        memory_bytes=system.memory_bytes,
    )
