"""BM25 (Okapi) over text units: which units a recalled passage comes from."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from ragtune.text.terms import content_terms


class BM25:
    """A BM25 index of documents (text units), in memory.

    Args:
        texts: The documents.
        k1: Term-frequency saturation.
        b: Length normalization.
    """

    def __init__(self, texts: Sequence[str], *, k1: float = 1.5, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self._counts = [Counter(content_terms(text)) for text in texts]
        self._lengths = [sum(counts.values()) for counts in self._counts]
        self._average = (sum(self._lengths) / len(self._lengths)) if self._lengths else 0.0
        frequency: Counter[str] = Counter()
        for counts in self._counts:
            frequency.update(counts.keys())
        total = len(self._counts)
        self._idf = {
            term: math.log(1 + (total - n + 0.5) / (n + 0.5)) for term, n in frequency.items()
        }

    def scores(self, query: str) -> list[float]:
        """The BM25 score of every document for `query`, in document order."""
        terms = Counter(content_terms(query))
        results = []
        for counts, length in zip(self._counts, self._lengths, strict=True):
            score = 0.0
            norm = self.k1 * (1 - self.b + self.b * length / self._average) if self._average else 0
            for term, repeats in terms.items():
                tf = counts.get(term, 0)
                if tf:
                    score += repeats * self._idf[term] * tf * (self.k1 + 1) / (tf + norm)
            results.append(score)
        return results

    def top(self, query: str, k: int) -> list[tuple[int, float]]:
        """The `k` best documents for `query` with a positive score, as (index, score)."""
        ranked = sorted(enumerate(self.scores(query)), key=lambda item: (-item[1], item[0]))
        return [(index, score) for index, score in ranked[:k] if score > 0]
