"""The long-context baseline's prompt: as much of the memory as fits the reader's window,
whole passages in time order with the newest last, and how many memory tokens were left out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ragtune.baselines.context import context_block, format_passage
from ragtune.corpus.types import TextUnit
from ragtune.llm.types import Message
from ragtune.prompts import answer_messages

#: Tokens of the blank line between two passages, for the first estimate of what fits.
_SEPARATOR_TOKENS = 1


@dataclass(frozen=True)
class FittedMemory:
    """The memory that fits one question's prompt.

    Attributes:
        units: The passages kept, oldest first.
        truncated_tokens: Memory tokens left out (the older passages that did not fit).
        memory_tokens: All memory tokens, kept or not.
    """

    units: tuple[TextUnit, ...]
    truncated_tokens: int
    memory_tokens: int


class MemoryWindow:
    """Fits the memory into a context window, question by question.

    Args:
        units: The memory's text units (any order; they are put in time order).
        window: The reader's context window in tokens.
        reserved: Tokens kept free for the answer.
        count_tokens: Tokens of a chat prompt (chat template applied).
        count_text_tokens: Tokens of a piece of text.
    """

    def __init__(
        self,
        units: Sequence[TextUnit],
        *,
        window: int,
        reserved: int,
        count_tokens: Callable[[Sequence[Message]], int],
        count_text_tokens: Callable[[str], int],
    ) -> None:
        self.units = sorted(units, key=lambda u: (u.timestamp or "", u.document_id, u.chunk_index))
        self.window = window
        self.reserved = reserved
        self._count_tokens = count_tokens
        self._count_text_tokens = count_text_tokens
        self._sizes = [count_text_tokens(format_passage(unit)) for unit in self.units]
        self.memory_tokens = count_text_tokens(context_block(self.units))
        """Tokens of the whole memory as a prompt's passages."""

    def fit(self, question: str) -> FittedMemory:
        """The newest passages whose prompt for `question` fits the window with `reserved`
        tokens to spare."""
        limit = self.window - self.reserved
        room = limit - self._count_tokens(answer_messages(question, ""))
        first = len(self.units)
        used = 0
        while first > 0 and used + self._sizes[first - 1] + _SEPARATOR_TOKENS <= room:
            first -= 1
            used += self._sizes[first] + _SEPARATOR_TOKENS
        # The estimate is settled on the real prompt: older passages join while it fits, and
        # the oldest go while it does not.
        while first > 0 and self._fits(question, first - 1, limit):
            first -= 1
        while first < len(self.units) and not self._fits(question, first, limit):
            first += 1
        kept = self.units[first:]
        kept_tokens = self._count_text_tokens(context_block(kept)) if kept else 0
        return FittedMemory(
            units=tuple(kept),
            truncated_tokens=max(self.memory_tokens - kept_tokens, 0),
            memory_tokens=self.memory_tokens,
        )

    def _fits(self, question: str, first: int, limit: int) -> bool:
        prompt = answer_messages(question, context_block(self.units[first:]))
        return self._count_tokens(prompt) <= limit
