"""The answer prompt every system shares: the question alone, or the question after the memory
passages a system puts in front of it (retrieved units, or the whole memory that fits)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ragtune.corpus.types import TextUnit
from ragtune.llm.types import Message

#: What a system with memory passages in its prompt is asked to do with them.
CONTEXT_INSTRUCTION = (
    "Here is what you remember, as passages with their dates. Answer the question after them "
    "from these passages, briefly. If they do not say, answer that it is not mentioned."
)


def passage(text: str, timestamp: str | None = None) -> str:
    """One memory passage for a prompt: its date (when known), then its text."""
    when = f"[{timestamp.replace('T', ' ')[:16]}]\n" if timestamp else ""
    return f"{when}{text.strip()}"


def format_passage(unit: TextUnit) -> str:
    """A text unit as a prompt passage."""
    return passage(unit.text, unit.timestamp)


def context_block(units: Sequence[TextUnit]) -> str:
    """Text units as a prompt's passages, separated by blank lines, in the order given."""
    return join_passages([format_passage(unit) for unit in units])


def join_passages(passages: Sequence[str]) -> str:
    """Passages for a prompt, separated by blank lines."""
    return "\n\n".join(passages)


def answer_messages(question: str, context: str | None = None) -> list[Message]:
    """The chat every system answers: the bare question (how the tuned model was trained to be
    asked), or the instruction, the passages in `context` and then the question."""
    if context is None:
        return [Message(role="user", content=question)]
    content = f"{CONTEXT_INSTRUCTION}\n\n{context}\n\nQuestion: {question}"
    return [Message(role="user", content=content)]


def with_passages(
    messages: Sequence[Message], passages_for: Callable[[str], Sequence[str]]
) -> list[Message]:
    """`messages` with the last user message asked the hybrid way: the passages
    `passages_for(its text)` returns (already formatted with `passage`) put before it with the
    shared instruction. Without a user message, `messages` unchanged."""
    converted = list(messages)
    last = max((i for i, m in enumerate(converted) if m["role"] == "user"), default=None)
    if last is None:
        return converted
    question = converted[last]["content"]
    converted[last] = answer_messages(question, join_passages(passages_for(question)))[0]
    return converted


def check_hybrid(mode: str, retriever: object) -> None:
    """Raise `ValueError` when hybrid mode (what the integrations' models offer) has no
    retriever to take its passages from."""
    if mode == "hybrid" and retriever is None:
        raise ValueError("hybrid mode puts retrieved passages in the prompt: give retriever=")
