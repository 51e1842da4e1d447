"""Content terms of a text: its words, lowercased, stop words dropped, Porter-stemmed (numbers
kept) — what lexical matching compares (the grounding filter, BM25 over text units)."""

from __future__ import annotations

import re
from collections.abc import Collection
from functools import lru_cache
from typing import Any

from ragtune.text.lexicon import STOPWORDS

_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


def content_terms(text: str, *, skip: Collection[str] = ()) -> list[str]:
    """The stems of the content words of `text`, in order, repeats kept; words in `skip`
    (lowercase) are dropped like stop words."""
    terms = []
    for token in _TOKEN.findall(text.lower()):
        token = token.replace("’", "'")
        if token.endswith("'s"):
            token = token[:-2]
        if token in STOPWORDS or token in skip or (len(token) < 2 and not token.isdigit()):
            continue
        terms.append(stem(token))
    return terms


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """The Porter stem of `word` (nltk's default mode, as LoCoMo's scorer uses it)."""
    return str(_porter().stem(word))


@lru_cache(maxsize=1)
def _porter() -> Any:
    from nltk.stem.porter import PorterStemmer

    return PorterStemmer()
