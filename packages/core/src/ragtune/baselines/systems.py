"""The six systems `ragtune eval` compares, all answering with the same reader and prompt:

- ``native``: the tuned model, question only (the memory is in its weights);
- ``rag``: the untuned model with the top-k text units Qdrant returns for the question;
- ``long-context``: the untuned model with as much of the memory as fits its window;
- ``base``: the untuned model, question only (the floor);
- ``hybrid``: the tuned model with the ``rag`` passages (memory in weights plus retrieval);
- ``oracle``: the untuned model with the question's gold evidence turns (the reader's ceiling).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ragtune.baselines.context import context_block
from ragtune.baselines.long_context import MemoryWindow
from ragtune.baselines.oracle import Evidence, GoldTurns
from ragtune.baselines.reader import Reader
from ragtune.baselines.retrieval import UnitIndex
from ragtune.corpus.types import TextUnit
from ragtune.errors import RagtuneError
from ragtune.prompts import answer_messages

#: Every system, in report order.
SYSTEM_NAMES = ("native", "rag", "long-context", "base", "hybrid", "oracle")


@dataclass(frozen=True)
class Passages:
    """The memory a system put in one prompt."""

    units: tuple[TextUnit, ...]
    truncated_tokens: int = 0


class PassageSource(Protocol):
    """Where a system's prompt passages come from."""

    def passages(self, question: str, evidence: Evidence | None = None) -> Passages:
        """The passages for `question` (whose answer is in `evidence`, when known)."""


@dataclass(frozen=True)
class SystemAnswer:
    """One system's answer to one question.

    Attributes:
        text: The answer.
        seconds: Wall-clock time to answer (retrieval included), warm model.
        prompt_tokens: Tokens the reader read.
        completion_tokens: Tokens it wrote.
        unit_ids: The text units in the prompt (none for question-only systems).
        truncated_tokens: Memory tokens that did not fit the prompt (long context).
    """

    text: str
    seconds: float
    prompt_tokens: int
    completion_tokens: int
    unit_ids: tuple[str, ...] = ()
    truncated_tokens: int = 0


class Retrieval:
    """Passages from the RAG index: the `k` units closest to the question, best first."""

    def __init__(self, index: UnitIndex, k: int) -> None:
        self.index = index
        self.k = k

    def passages(self, question: str, evidence: Evidence | None = None) -> Passages:
        return Passages(tuple(found.unit for found in self.index.search(question, self.k)))


class WholeMemory:
    """Passages for long context: the newest memory that fits the reader's window."""

    def __init__(self, window: MemoryWindow) -> None:
        self.window = window

    def passages(self, question: str, evidence: Evidence | None = None) -> Passages:
        fitted = self.window.fit(question)
        return Passages(fitted.units, fitted.truncated_tokens)


class GoldEvidence:
    """Passages for the oracle: the turns of the question's gold evidence, in the order they
    were said (none when the evidence is unknown)."""

    def __init__(self, turns: GoldTurns) -> None:
        self.turns = turns

    def passages(self, question: str, evidence: Evidence | None = None) -> Passages:
        return Passages(tuple(self.turns.find(evidence)) if evidence else ())


class MemorySystem:
    """A system: the reader, tuned or not, with passages from `source` or none.

    Args:
        name: Its name in reports (``native``, ``rag``, ...).
        reader: The shared reader.
        tuned: Whether the memory adapter is on.
        source: Where prompt passages come from; None for question only.
        max_new_tokens: The longest answer.
        memory_bytes: What the system's memory takes on disk (adapter, index, text).
    """

    def __init__(
        self,
        name: str,
        reader: Reader,
        *,
        tuned: bool,
        source: PassageSource | None = None,
        max_new_tokens: int = 48,
        memory_bytes: int = 0,
    ) -> None:
        self.name = name
        self.reader = reader
        self.tuned = tuned
        self.source = source
        self.max_new_tokens = max_new_tokens
        self.memory_bytes = memory_bytes

    @property
    def retrieves(self) -> bool:
        """Whether its passages come from the RAG index (``rag``, ``hybrid``)."""
        return isinstance(self.source, Retrieval)

    def warm_up(self) -> None:
        """Load what answering needs (the embedding model, the weights' pages) with one short,
        untimed answer, so timed answers measure a warm system."""
        if self.source is not None:
            self.source.passages("Hello")
        self.reader.read(answer_messages("Hello"), tuned=self.tuned, max_new_tokens=2)

    def answer(self, question: str, evidence: Evidence | None = None) -> SystemAnswer:
        """Answer `question`, timed (`evidence`, where its answer is, only the oracle reads)."""
        start = time.perf_counter()
        passages = self.source.passages(question, evidence) if self.source is not None else None
        context = context_block(passages.units) if passages is not None else None
        reading = self.reader.read(
            answer_messages(question, context),
            tuned=self.tuned,
            max_new_tokens=self.max_new_tokens,
        )
        return SystemAnswer(
            text=reading.text,
            seconds=time.perf_counter() - start,
            prompt_tokens=reading.prompt_tokens,
            completion_tokens=reading.completion_tokens,
            unit_ids=tuple(unit.id for unit in passages.units) if passages else (),
            truncated_tokens=passages.truncated_tokens if passages else 0,
        )


def require_turns(gold: GoldTurns | None) -> GoldTurns:
    """`gold` if it holds conversation turns, which the oracle needs.

    Raises:
        RagtuneError: it holds none (the memory is not of conversations)."""
    if gold is None or not len(gold):
        raise RagtuneError("the oracle system needs the memory's conversation turns")
    return gold


def check_system_names(names: Sequence[str]) -> None:
    """Raise `RagtuneError` naming the first of `names` that is not a system."""
    unknown = [name for name in names if name not in SYSTEM_NAMES]
    if unknown:
        raise RagtuneError(f"unknown system {unknown[0]!r}; choose from {', '.join(SYSTEM_NAMES)}")


def build_systems(
    names: Sequence[str],
    reader: Reader,
    *,
    index: UnitIndex | None = None,
    units: Sequence[TextUnit] = (),
    gold: GoldTurns | None = None,
    memory_text_bytes: int = 0,
    k: int = 5,
    max_new_tokens: int = 48,
) -> list[MemorySystem]:
    """The systems `names`, sharing `reader` (and `index` for rag and hybrid; `units` for long
    context; `gold`, the memory's turns, for the oracle).

    Raises:
        RagtuneError: a name is unknown, or what a system needs was not given.
    """
    check_system_names(names)
    systems = []
    for name in names:
        tuned = name in ("native", "hybrid")
        source: PassageSource | None = None
        size = reader.adapter_bytes if tuned else 0
        if name in ("rag", "hybrid"):
            if index is None:
                raise RagtuneError(f"the {name} system needs a RAG index")
            source = Retrieval(index, k)
            size += index.size_bytes() + index.embedder.size_bytes()
        elif name == "long-context":
            source = WholeMemory(_memory_window(reader, units, max_new_tokens))
            size = memory_text_bytes
        elif name == "oracle":
            source = GoldEvidence(require_turns(gold))
        systems.append(
            MemorySystem(
                name,
                reader,
                tuned=tuned,
                source=source,
                max_new_tokens=max_new_tokens,
                memory_bytes=size,
            )
        )
    return systems


def _memory_window(reader: Reader, units: Sequence[TextUnit], reserved: int) -> MemoryWindow:
    if not units:
        raise RagtuneError("the long-context system needs the memory's text units")
    window = reader.context_window
    if window is None:
        raise RagtuneError(
            f"{reader.model_name} does not say its context window; long context needs it"
        )
    return MemoryWindow(
        units,
        window=window,
        reserved=reserved,
        count_tokens=reader.count_tokens,
        count_text_tokens=reader.count_text_tokens,
    )
