"""LangChain messages as ragtune chat messages, and back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.messages import BaseMessage

from ragtune.llm.types import Message

_ROLES = {"system": "system", "human": "user", "ai": "assistant", "tool": "user"}


def to_ragtune_messages(messages: Sequence[BaseMessage]) -> list[Message]:
    """`messages` as ragtune's role/content messages (text content only).

    Raises:
        ValueError: a message has a role ragtune cannot pass on, or non-text content.
    """
    converted = []
    for message in messages:
        role = _ROLES.get(message.type)
        if role is None:
            raise ValueError(f"ragtune cannot pass on a {message.type!r} message")
        converted.append(Message(role=role, content=text_of(message.content)))  # type: ignore[typeddict-item]
    return converted


def text_of(content: Any) -> str:
    """The text of a message's content: a string, or the text blocks of a list.

    Raises:
        ValueError: the content holds something other than text.
    """
    if isinstance(content, str):
        return content
    parts = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        else:
            kind = block.get("type") if isinstance(block, dict) else type(block).__name__
            raise ValueError(f"ragtune models read text only, not {kind!r} content")
    return "".join(parts)
