"""Entity-name normalization: the key under which mentions of one entity merge."""

from __future__ import annotations

import re
import unicodedata

_POSSESSIVE = re.compile(r"(?<=\w)['’]s?\b", re.IGNORECASE)
_NOT_WORD = re.compile(r"[^\w]+")
_LEADING_ARTICLE = re.compile(r"^(the|a|an)\s+")


def normalize_name(name: str) -> str:
    """The merge key of an entity name: case, accents' composition, punctuation, possessives,
    a leading article and a simple plural on the last word do not matter.

    >>> normalize_name("Melanie's") == normalize_name("MELANIE")
    True
    >>> normalize_name("the pottery classes") == normalize_name("Pottery class")
    True
    """
    text = unicodedata.normalize("NFC", name).casefold().strip()
    text = _POSSESSIVE.sub("", text)
    text = _NOT_WORD.sub(" ", text).replace("_", " ").strip()
    text = _LEADING_ARTICLE.sub("", text)
    words = text.split()
    if not words:
        return ""
    words[-1] = singular(words[-1])
    return " ".join(words)


def singular(word: str) -> str:
    """`word` with a simple English plural ending removed (``classes`` → ``class``,
    ``parties`` → ``party``, ``dogs`` → ``dog``); other words unchanged."""
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes", "zes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word
