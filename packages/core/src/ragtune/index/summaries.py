"""Description summaries by a teacher model: many descriptions of one entity → one."""

from __future__ import annotations

from collections.abc import Sequence

from ragtune.index.merging import DescriptionItem
from ragtune.index.prompts import SUMMARIZE_SYSTEM, SUMMARIZE_USER
from ragtune.llm.types import ChatBackend, ChatRequest, GenerationParams, Message
from ragtune.text.shorten import shorten

_MAX_INPUT_CHARS = 6000


class TeacherSummarizer:
    """Combines descriptions with a teacher model (a `DescriptionSummarizer`).

    Args:
        backend: The teacher.
        max_tokens: The most tokens of one summary.
        progress: Whether to show a progress bar.
    """

    def __init__(
        self, backend: ChatBackend, *, max_tokens: int = 300, progress: bool = False
    ) -> None:
        self.backend = backend
        self.max_tokens = max_tokens
        self.progress = progress

    def summarize(self, items: Sequence[DescriptionItem]) -> list[str | None]:
        """One description per item; None where the teacher answered nothing."""
        if not items:
            return []
        requests = [
            ChatRequest(
                [
                    Message(role="system", content=SUMMARIZE_SYSTEM),
                    Message(role="user", content=summarize_prompt(item)),
                ],
                GenerationParams(max_tokens=self.max_tokens),
            )
            for item in items
        ]
        answers = self.backend.chat_batch(requests, progress=self.progress)
        return [answer.text.strip() or None for answer in answers]


def summarize_prompt(item: DescriptionItem) -> str:
    """The user message asking to combine the descriptions of `item`."""
    lines: list[str] = []
    used = 0
    for description in item.descriptions:
        line = "- " + shorten(description, 1000)
        if used + len(line) > _MAX_INPUT_CHARS and lines:
            break
        lines.append(line)
        used += len(line) + 1
    kind = "the entity" if item.kind == "entity" else "the relationship between"
    return SUMMARIZE_USER.format(kind=kind, name=item.name, descriptions="\n".join(lines))
