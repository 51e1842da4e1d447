"""LoCoMo answer scoring, reproducing the benchmark's official scorer (snap-research/locomo,
`task_eval/evaluation.py`: `normalize_answer`, `f1_score`, `f1` and the category dispatch in
`eval_question_answering`), so that our numbers compare with published ones.

An answer is normalized (lowercased, ASCII punctuation deleted, the words a/an/the/and dropped,
whitespace collapsed), split into words and Porter-stemmed; two answers are compared by token F1.
Per category (ids as in the data, see `CATEGORY_NAMES`):

- 1, multi-hop: the gold answer is split on commas, each part takes the F1 of the best-matching
  comma-separated part of the prediction, and the parts' scores are averaged;
- 2, temporal, and 4, single-hop: plain token F1;
- 3, open-domain: plain token F1 against the gold answer cut at its first ";";
- 5, adversarial: 1 when the prediction abstains ("not mentioned", "no information available"),
  else 0; the gold answer is not used.

The official scorer's quirks are kept on purpose and noted where they happen.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ragtune.text.lexicon import MONTHS
from ragtune.text.terms import stem

CATEGORY_NAMES: dict[int, str] = {
    1: "multi-hop",
    2: "temporal",
    3: "open-domain",
    4: "single-hop",
    5: "adversarial",
}
"""LoCoMo's `category` ids and what they mean (the ids do not follow the paper's order)."""

ANSWERED_CATEGORIES = (1, 2, 3, 4)
"""The categories scored by F1 against a gold answer: the ones `CategoryScores.overall` pools."""

ADVERSARIAL = 5
"""The category whose questions have no answer in the conversation."""

ABSTENTION_PHRASES = ("no information available", "not mentioned")
"""What a prediction must contain (case-insensitively) to count as abstaining, as upstream tests
it. Only these exact substrings count: "not explicitly mentioned" or "never mentioned" do not."""

# `string.punctuation` is ASCII only, as upstream: curly quotes, dashes and other non-ASCII
# punctuation stay in the text ("Caroline’s" stays "caroline’s" and does not match "Caroline's").
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """`text` lowercased, without ASCII punctuation, without the words "a", "an", "the" and
    "and", its whitespace collapsed to single spaces.

    Punctuation is deleted, not replaced by a space, so "self-care" becomes "selfcare", and it
    goes before the articles, so "a-ha" becomes "aha" and is kept. Upstream first deletes commas
    on their own (`s.replace(',', "")`); a comma is ASCII punctuation anyway, so that step changes
    nothing and is folded into the punctuation step here.
    """
    lowered = text.lower()
    kept = "".join(char for char in lowered if char not in _PUNCTUATION)
    return " ".join(_articles().sub(" ", kept).split())


def answer_tokens(text: str) -> list[str]:
    """The Porter stems of the words of `normalize_answer(text)`, in order, repeats kept."""
    return [stem(word) for word in normalize_answer(text).split()]


def token_f1(prediction: str, gold: str) -> float:
    """Token F1 of `prediction` against `gold`, over stemmed words with repeats counted.

    It is 0.0 when no word is shared, including when both answers are empty after
    normalization (upstream returns 0 before it would divide by zero: "the" against "a" scores 0,
    not 1).
    """
    predicted = answer_tokens(prediction)
    expected = answer_tokens(gold)
    shared = sum((Counter(predicted) & Counter(expected)).values())
    if shared == 0:
        return 0.0
    precision = shared / len(predicted)
    recall = shared / len(expected)
    return 2 * precision * recall / (precision + recall)


def multi_answer_f1(prediction: str, gold: str) -> float:
    """The category-1 score: the mean, over the comma-separated parts of `gold`, of the best
    `token_f1` of that part against a comma-separated part of `prediction`.

    Two upstream quirks follow from the split. Extra parts in the prediction cost nothing
    ("pottery, camping, swimming" scores 1 against "pottery, camping"). An empty gold part (a
    trailing comma: "pottery, camping,") scores 0 and lowers the mean. "and" does not split.
    """
    predicted_parts = [part.strip() for part in prediction.split(",")]
    gold_parts = [part.strip() for part in gold.split(",")]
    best = [max(token_f1(part, expected) for part in predicted_parts) for expected in gold_parts]
    return sum(best) / len(best)


def abstains(prediction: str) -> bool:
    """Whether `prediction` says that the conversation does not hold the answer: it contains one
    of `ABSTENTION_PHRASES`, ignoring case (the category-5 test)."""
    lowered = prediction.lower()
    return any(phrase in lowered for phrase in ABSTENTION_PHRASES)


def score_answer(prediction: str, gold: str | int | None, category: int) -> float:
    """The official LoCoMo score of `prediction` for a question of `category` whose gold answer
    is `gold`, between 0 and 1.

    An int gold answer (a year, a count) is compared as its decimal text, as upstream does with
    `str(line['answer'])`. `gold` may be None only in category 5, whose score ignores it (most
    adversarial questions have no `answer` field).
    """
    if category not in CATEGORY_NAMES:
        known = ", ".join(str(key) for key in CATEGORY_NAMES)
        raise ValueError(f"unknown LoCoMo category {category!r}: expected one of {known}")
    if category == ADVERSARIAL:
        return 1.0 if abstains(prediction) else 0.0
    if gold is None:
        raise ValueError(f"a category-{category} question needs a gold answer to be scored")
    expected = str(gold)
    if category == 1:
        return multi_answer_f1(prediction, expected)
    if category == 3:
        # Upstream keeps only what comes before the first ";" of an open-domain answer (the
        # rest is usually the annotator's justification).
        expected = expected.split(";", 1)[0].strip()
    return token_f1(prediction, expected)


def exact_match(prediction: str, gold: str | int, category: int) -> bool:
    """Whether `prediction` is the gold answer once both are normalized (`normalize_answer`;
    an open-domain gold answer cut at its first ";", as `score_answer` does). Ours, not the
    official scorer's: a diagnostic of answer shape beside F1, for categories 1-4."""
    expected = str(gold)
    if category == 3:
        expected = expected.split(";", 1)[0]
    return normalize_answer(prediction) == normalize_answer(expected) != ""


_MONTH = re.compile(rf"\b({'|'.join(MONTHS)})\b", re.IGNORECASE)
_YEAR = re.compile(r"\b(1[89]\d\d|2\d\d\d)\b")


def same_month(prediction: str, gold: str | int) -> bool | None:
    """Whether `prediction` names the month (and year, where the gold answer has one) that
    `gold` names first; None when the gold answer names no month. Ours, not the official
    scorer's: token F1 gives "The week before 20 June 2023" 0.29 against "January, 2023" for
    the year alone, so temporal answers are also checked for the right month."""
    expected = _month_and_year(str(gold))
    if expected[0] is None:
        return None
    found = _month_and_year(prediction)
    return found[0] == expected[0] and (expected[1] is None or found[1] == expected[1])


def _month_and_year(text: str) -> tuple[str | None, str | None]:
    month, year = _MONTH.search(text), _YEAR.search(text)
    return (month.group(1).lower() if month else None, year.group(1) if year else None)


@dataclass(frozen=True)
class CategoryScores:
    """Scores gathered per category.

    `means` and `counts` hold only the categories that occur, by id. `overall` is the mean over
    all questions of categories 1-4 together (each question counts once, so big categories weigh
    more, as in upstream's "Overall accuracy"; upstream also pools category 5 into it, we do
    not). `abstention` is the category-5 mean: the share of adversarial questions on which the
    prediction abstained. Each is None when no question backs it.
    """

    means: dict[int, float]
    counts: dict[int, int]
    overall: float | None
    abstention: float | None


def summarize(scores: Iterable[tuple[int, float]]) -> CategoryScores:
    """Per-category means and counts, the overall mean and the abstention rate of `scores`, given
    as (category, score) pairs."""
    totals: dict[int, float] = {}
    counts: dict[int, int] = {}
    for category, score in scores:
        if category not in CATEGORY_NAMES:
            raise ValueError(f"unknown LoCoMo category {category!r} in the scores")
        totals[category] = totals.get(category, 0.0) + score
        counts[category] = counts.get(category, 0) + 1
    ordered = sorted(counts)
    means = {category: totals[category] / counts[category] for category in ordered}
    answered = [category for category in ordered if category in ANSWERED_CATEGORIES]
    answered_count = sum(counts[category] for category in answered)
    overall = sum(totals[c] for c in answered) / answered_count if answered_count else None
    return CategoryScores(
        means=means,
        counts={category: counts[category] for category in ordered},
        overall=overall,
        abstention=means.get(ADVERSARIAL),
    )


@lru_cache(maxsize=1)
def _articles() -> Any:
    """The pattern of the dropped words, compiled with the `regex` package as upstream does
    (nltk depends on it, so it is always installed). Its `\\b` is not the `re` module's: it
    counts combining marks as word characters and superscript digits as not, which decides
    whether the "a" of a decomposed "à" is dropped."""
    import regex  # type: ignore[import-untyped]

    return regex.compile(r"\b(?:a|an|the|and)\b")
