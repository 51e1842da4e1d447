"""`shorten`: a text cut to a length at a word boundary (descriptions, report lines, prompts)."""

from __future__ import annotations


def shorten(text: str, max_chars: int) -> str:
    """`text` with whitespace collapsed, cut at a word boundary to at most `max_chars`
    characters (an ellipsis marks a cut)."""
    text = " ".join(text.split())
    if len(text) <= max_chars:
        return text
    return text[: max_chars - 1].rsplit(" ", 1)[0] + "…"
