"""Near-duplicate questions: exact matches after normalization, then MinHash similarity.

Two records asking the same question (whatever the answers) cannot both be learned, and
near-identical phrasings add nothing; the first record (in strategy order) is kept. MinHash
signatures with banded locality-sensitive hashing find candidate pairs, and their exact Jaccard
similarity over word unigrams and bigrams decides. Hashes are stable across runs (no Python
`hash`), so deduplication is deterministic.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections import defaultdict
from collections.abc import Sequence

from ragtune.synth.records import QARecord

_NOT_WORD = re.compile(r"[^\w]+")
_PRIME = (1 << 61) - 1
_PERMUTATIONS = 64
_BANDS = 16
_ROWS = _PERMUTATIONS // _BANDS


def normalize_question(question: str) -> str:
    """`question` lowercased, punctuation dropped, spaces collapsed."""
    return " ".join(_NOT_WORD.sub(" ", question.lower()).split())


def shingles(question: str) -> frozenset[str]:
    """The word unigrams and bigrams of the normalized `question`."""
    words = normalize_question(question).split()
    return frozenset(words + [f"{a} {b}" for a, b in itertools.pairwise(words)])


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """The Jaccard similarity of two shingle sets."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


class Deduplicator:
    """Remembers the questions kept so far and refuses near-duplicates of them.

    Questions are compared within a namespace only (recall questions, which all share the
    recall instruction, are compared with each other by what they ask).

    Args:
        threshold: The Jaccard similarity from which two questions are duplicates.
    """

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self._spaces: dict[str, _Kept] = defaultdict(_Kept)

    def add(self, question: str, namespace: str = "") -> bool:
        """Keep `question` and return True, unless it duplicates a kept one (then False)."""
        kept = self._spaces[namespace]
        key = normalize_question(question)
        if key in kept.seen:
            return False
        mine = shingles(question)
        bands = _bands(mine)
        candidates = {n for band in bands for n in kept.buckets.get(band, ())}
        if any(jaccard(mine, kept.shingles[n]) >= self.threshold for n in sorted(candidates)):
            return False
        kept.seen.add(key)
        for band in bands:
            kept.buckets[band].append(len(kept.shingles))
        kept.shingles.append(mine)
        return True


class _Kept:
    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.shingles: list[frozenset[str]] = []
        self.buckets: dict[tuple[int, tuple[int, ...]], list[int]] = defaultdict(list)


def deduplicate(
    records: Sequence[QARecord], threshold: float
) -> tuple[list[QARecord], list[QARecord]]:
    """`records` split into kept and dropped: a record is dropped when its question equals a
    kept one's after normalization, or is at least `threshold` similar (Jaccard) to one."""
    seen = Deduplicator(threshold)
    kept: list[QARecord] = []
    dropped: list[QARecord] = []
    for record in records:
        (kept if seen.add(record.question) else dropped).append(record)
    return kept, dropped


def _bands(items: frozenset[str]) -> list[tuple[int, tuple[int, ...]]]:
    signature = _signature(items)
    return [(band, tuple(signature[band * _ROWS : (band + 1) * _ROWS])) for band in range(_BANDS)]


def _signature(items: frozenset[str]) -> list[int]:
    values = [_hash(item) for item in items] or [0]
    return [min((a * x + b) % _PRIME for x in values) for a, b in _COEFFICIENTS]


def _hash(item: str) -> int:
    return int.from_bytes(hashlib.blake2b(item.encode("utf-8"), digest_size=8).digest(), "big")


def _coefficients() -> list[tuple[int, int]]:
    pairs = []
    for n in range(_PERMUTATIONS):
        a = _hash(f"a{n}") % (_PRIME - 1) + 1
        b = _hash(f"b{n}") % _PRIME
        pairs.append((a, b))
    return pairs


_COEFFICIENTS = _coefficients()
