"""Paired comparison of two systems: the mean F1 difference over the questions both answered,
with a 95% confidence interval from a two-stage bootstrap (conversations resampled, then
questions within each), so that a difference carried by one conversation shows as uncertain."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

from ragtune.eval.locomo_scoring import ANSWERED_CATEGORIES
from ragtune.eval.runner import SystemRun

#: Bootstrap resamples per comparison.
RESAMPLES = 10_000


@dataclass(frozen=True)
class PairedDifference:
    """`system` minus `against`: mean F1 difference on categories 1-4 and its 95% interval.

    Attributes:
        system: The first system.
        against: The system it is compared with.
        questions: The questions both answered.
        conversations: The conversations those come from.
        mean: The mean of the per-question F1 differences.
        low: The 2.5th percentile of the bootstrap means.
        high: The 97.5th percentile.
    """

    system: str
    against: str
    questions: int
    conversations: int
    mean: float
    low: float
    high: float

    def to_json(self) -> dict[str, object]:
        """The comparison for results.json."""
        return {
            "system": self.system,
            "against": self.against,
            "questions": self.questions,
            "conversations": self.conversations,
            "mean_f1_difference": round(self.mean, 4),
            "ci95": [round(self.low, 4), round(self.high, 4)],
        }


def paired_difference(
    first: SystemRun, second: SystemRun, *, resamples: int = RESAMPLES, seed: int = 0
) -> PairedDifference | None:
    """`first` against `second` on the category 1-4 questions both answered (matched by id);
    None when they share none."""
    import numpy as np

    theirs = {a.question.id: a.score for a in second.answers}
    groups: dict[str, list[float]] = {}
    for answer in first.answers:
        question = answer.question
        if question.category in ANSWERED_CATEGORIES and question.id in theirs:
            groups.setdefault(question.conversation or "-", []).append(
                answer.score - theirs[question.id]
            )
    if not groups:
        return None
    differences = [np.asarray(values) for values in groups.values()]
    sizes = np.array([len(values) for values in differences])
    rng = np.random.default_rng(seed)
    count = len(differences)
    # Stage 1: which conversation fills each of the `count` slots of every resample.
    chosen = rng.integers(0, count, size=(resamples, count))
    # Stage 2: each conversation's questions resampled for every (resample, slot).
    sums = np.stack(
        [
            values[rng.integers(0, len(values), size=(resamples, count, len(values)))].sum(axis=2)
            for values in differences
        ]
    )  # (conversation, resample, slot)
    rows = np.arange(resamples)[:, None]
    slots = np.arange(count)[None, :]
    totals = sums[chosen, rows, slots].sum(axis=1)
    means = totals / sizes[chosen].sum(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    pooled = np.concatenate(differences)
    return PairedDifference(
        system=first.system,
        against=second.system,
        questions=int(pooled.size),
        conversations=count,
        mean=float(pooled.mean()),
        low=float(low),
        high=float(high),
    )


def paired_differences(
    runs: Sequence[SystemRun], *, resamples: int = RESAMPLES, seed: int = 0
) -> list[PairedDifference]:
    """Every pair of `runs`, each earlier system against each later one."""
    found = (
        paired_difference(a, b, resamples=resamples, seed=seed) for a, b in combinations(runs, 2)
    )
    return [difference for difference in found if difference is not None]
