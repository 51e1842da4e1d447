"""The answer prompt every system shares: the question alone, or the question after the memory
passages a system puts in front of it (retrieved units, or the whole memory that fits)."""

from __future__ import annotations

from collections.abc import Sequence

from ragtune.corpus.types import TextUnit
from ragtune.llm.types import Message

#: What a system with memory passages in its prompt is asked to do with them.
CONTEXT_INSTRUCTION = (
    "Here is what you remember, as passages with their dates. Answer the question after them "
    "from these passages, briefly. If they do not say, answer that it is not mentioned."
)


def format_passage(unit: TextUnit) -> str:
    """One memory passage for a prompt: its date (when known), then its text."""
    when = f"[{unit.timestamp.replace('T', ' ')[:16]}]\n" if unit.timestamp else ""
    return f"{when}{unit.text.strip()}"


def context_block(units: Sequence[TextUnit]) -> str:
    """Passages for a prompt, separated by blank lines, in the order given."""
    return "\n\n".join(format_passage(unit) for unit in units)


def answer_messages(question: str, context: str | None = None) -> list[Message]:
    """The chat every system answers: the bare question (how the tuned model was trained to be
    asked), or the instruction, the passages in `context` and then the question."""
    if context is None:
        return [Message(role="user", content=question)]
    content = f"{CONTEXT_INSTRUCTION}\n\n{context}\n\nQuestion: {question}"
    return [Message(role="user", content=content)]
