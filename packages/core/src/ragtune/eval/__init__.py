"""Evaluating a memory: LoCoMo scoring (the benchmark's official answer scorer reproduced:
per-category token F1 and the adversarial abstention test) and per-category summaries."""

from __future__ import annotations

from ragtune.eval.locomo_scoring import (
    ABSTENTION_PHRASES,
    CATEGORY_NAMES,
    CategoryScores,
    abstains,
    normalize_answer,
    score_answer,
    summarize,
    token_f1,
)

__all__ = [
    "ABSTENTION_PHRASES",
    "CATEGORY_NAMES",
    "CategoryScores",
    "abstains",
    "normalize_answer",
    "score_answer",
    "summarize",
    "token_f1",
]
