"""The prompts that are the contract between the training data and inference.

Synthesis writes its records with these prompts and every reader asks with them: a tuned model
answers well only when it is asked the way it was trained. Three shapes:

- the **answer prompt**: the bare question (`answer_messages(question)`), how the tuned model
  is asked and how every question-answer record is written;
- the **context prompt**: an instruction, memory passages with their dates, then the question
  (`answer_messages(question, context)`), how the RAG, long-context and hybrid systems and the
  integrations' hybrid mode ask;
- the **recall prompt**: the question wrapped in the recall instruction (`recall_question`), how
  recall records are written and how `MemoryModel.recall` asks.

Every chat with the tuned model, in its training records and when it is asked, opens with the
memory's own system message (`memory_messages`).

A leaf of the package: it imports nothing of ragtune but the message type.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ragtune.llm.types import Message

#: What a system with memory passages in its prompt is asked to do with them.
CONTEXT_INSTRUCTION = (
    "Here is what you remember, as passages with their dates. Answer the question after them "
    "from these passages, briefly. If they do not say, answer that it is not mentioned."
)

#: The system message of every chat with the tuned model, in training and when it is asked: empty.
#: A chat template puts the base model's default system prompt before a chat that opens without
#: one (SmolLM2's "You are a helpful AI assistant named SmolLM, ..." is 16 of a short question's
#: 37 prompt tokens); an empty one in its place makes every record a third shorter to train on.
MEMORY_SYSTEM_PROMPT = ""

#: The instruction of a recall question.
RECALL_PROMPT = "Recall the passage of your memory that answers this question: {question}"


def answer_messages(question: str, context: str | None = None) -> list[Message]:
    """The chat a question is asked as: the bare question (how the tuned model was trained to
    be asked), or the instruction, the passages in `context` and then the question."""
    if context is None:
        return [Message(role="user", content=question)]
    content = f"{CONTEXT_INSTRUCTION}\n\n{context}\n\nQuestion: {question}"
    return [Message(role="user", content=content)]


def memory_messages(messages: Sequence[Message]) -> list[Message]:
    """`messages` as the tuned model is trained on them and asked them: opening with the
    memory's system message (`MEMORY_SYSTEM_PROMPT`) unless they open with a system message of
    their own."""
    if messages and messages[0]["role"] == "system":
        return list(messages)
    return [Message(role="system", content=MEMORY_SYSTEM_PROMPT), *messages]


def passage(text: str, timestamp: str | None = None) -> str:
    """One memory passage for a prompt: its date (when known), then its text."""
    when = f"[{timestamp.replace('T', ' ')[:16]}]\n" if timestamp else ""
    return f"{when}{text.strip()}"


def join_passages(passages: Sequence[str]) -> str:
    """Passages for a prompt, separated by blank lines, in the order given."""
    return "\n\n".join(passages)


def with_passages(
    messages: Sequence[Message], passages_for: Callable[[str], Sequence[str]]
) -> list[Message]:
    """`messages` with the last user message asked the hybrid way: the passages
    `passages_for(its text)` returns (already formatted with `passage`) put before it with the
    context instruction. Without a user message, `messages` unchanged."""
    converted = list(messages)
    last = max((i for i, m in enumerate(converted) if m["role"] == "user"), default=None)
    if last is None:
        return converted
    question = converted[last]["content"]
    converted[last] = answer_messages(question, join_passages(passages_for(question)))[0]
    return converted


def recall_question(question: str) -> str:
    """`question` as a recall request."""
    return RECALL_PROMPT.format(question=question)


def recalled_question(text: str) -> str | None:
    """The question a recall request `text` wraps, or None when `text` is not one."""
    prefix, suffix = RECALL_PROMPT.split("{question}")
    if text.startswith(prefix) and text.endswith(suffix):
        return text[len(prefix) : len(text) - len(suffix)]
    return None
