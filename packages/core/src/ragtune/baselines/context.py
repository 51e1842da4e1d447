"""The memory passages a baseline system puts in front of the question: text units as dated
passages (the context prompt itself is `ragtune.prompts`)."""

from __future__ import annotations

from collections.abc import Sequence

from ragtune.corpus.types import TextUnit
from ragtune.prompts import join_passages, passage


def format_passage(unit: TextUnit) -> str:
    """A text unit as a prompt passage."""
    return passage(unit.text, unit.timestamp)


def context_block(units: Sequence[TextUnit]) -> str:
    """Text units as a prompt's passages, separated by blank lines, in the order given."""
    return join_passages([format_passage(unit) for unit in units])
