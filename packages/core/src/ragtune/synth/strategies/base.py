"""The strategy interface: a class with its own settings that turns the memory into records.

A strategy reads the `SynthContext` (and the records of the strategies that ran before it) and
returns candidate records; the pipeline then applies the grounding filter, deduplication and
the split. Strategies that can use a teacher send their requests in batches through
`teacher_answers`, which counts malformed answers instead of failing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ragtune.llm.types import ChatRequest, GenerationParams, Message
from ragtune.progress import progress_bar
from ragtune.synth.context import SynthContext
from ragtune.synth.prompts import SYSTEM
from ragtune.synth.records import QARecord


@dataclass
class Generated:
    """What a strategy produced.

    Attributes:
        records: Candidate records, before grounding and deduplication.
        dropped: Candidates the strategy itself rejected, by reason (``malformed teacher
            output``, ...) and record kind.
    """

    records: list[QARecord] = field(default_factory=list)
    dropped: Counter[tuple[str, str]] = field(default_factory=Counter)

    def drop(self, reason: str, kind: str, count: int = 1) -> None:
        """Count `count` candidates of `kind` rejected for `reason`."""
        if count:
            self.dropped[(reason, kind)] += count


class Strategy(ABC):
    """One way of turning the memory into question/answer records.

    Subclasses set `name` (their `--strategies` name and `synth.<name>` settings section),
    `kinds` (the record kinds they write) and `settings_class`, and implement `generate`.

    Args:
        settings: The strategy's settings; its defaults if None.
    """

    name: ClassVar[str]
    kinds: ClassVar[tuple[str, ...]]
    settings_class: ClassVar[type[Any]]
    #: Whether the strategy writes nothing without a teacher.
    needs_teacher: ClassVar[bool] = False

    def __init__(self, settings: Any = None) -> None:
        self.settings = settings if settings is not None else self.settings_class()

    @abstractmethod
    def generate(
        self, context: SynthContext, earlier: Sequence[QARecord], *, progress: bool = False
    ) -> Generated:
        """Candidate records from the memory; `earlier` holds the records (grounded and
        deduplicated) of the strategies that ran before this one."""


def teacher_answers(
    context: SynthContext,
    prompts: Sequence[str],
    schema: Mapping[str, Any],
    *,
    desc: str,
    progress: bool,
) -> list[Any]:
    """The teacher's parsed JSON answer to each user prompt (with the synthesis system
    prompt), in order; None where the answer never matched `schema`."""
    assert context.teacher is not None
    params = GenerationParams(max_tokens=context.config.max_tokens)
    requests = [
        ChatRequest(
            [Message(role="system", content=SYSTEM), Message(role="user", content=prompt)],
            params,
            schema,
        )
        for prompt in prompts
    ]
    size = context.config.batch_size
    batches = [requests[start : start + size] for start in range(0, len(requests), size)]
    answers: list[Any] = []
    for batch in progress_bar(batches, desc=desc, unit="batch", enabled=progress):
        for response in context.teacher.chat_batch(batch):
            answers.append(response.parsed if response.error is None else None)
    return answers


def text_list(value: Any) -> list[str]:
    """The non-empty strings of a teacher's JSON list (anything else is ignored)."""
    if not isinstance(value, list):
        return []
    return [item.strip() for item in value if isinstance(item, str) and item.strip()]
