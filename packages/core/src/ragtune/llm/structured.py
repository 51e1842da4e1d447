"""Structured output: ask for JSON matching a schema, find it in the answer, validate, repair."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ragtune.llm.types import Message

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def schema_instruction(schema: Mapping[str, Any]) -> str:
    """The instruction that asks a model for a JSON value matching `schema`."""
    return (
        "Reply with only a JSON value that matches this JSON schema, with no other text:\n"
        + json.dumps(schema, ensure_ascii=False)
    )


def with_schema_instruction(
    messages: Sequence[Message], schema: Mapping[str, Any]
) -> list[Message]:
    """`messages` with the schema instruction appended to the last user message."""
    result = [Message(role=m["role"], content=m["content"]) for m in messages]
    for message in reversed(result):
        if message["role"] == "user":
            message["content"] = f"{message['content']}\n\n{schema_instruction(schema)}"
            return result
    result.append(Message(role="user", content=schema_instruction(schema)))
    return result


def with_repair_turn(messages: Sequence[Message], answer: str, problem: str) -> list[Message]:
    """`messages` followed by the invalid `answer` and a request to fix `problem`."""
    return [
        *messages,
        Message(role="assistant", content=answer),
        Message(
            role="user",
            content=f"That reply is not valid: {problem}. Reply again with only the corrected "
            "JSON value.",
        ),
    ]


def extract_json(text: str) -> Any:
    """The first JSON object or array in `text` (a fenced ```json block is preferred).

    Raises:
        ValueError: `text` holds no complete JSON object or array.
    """
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    decoder = json.JSONDecoder()
    for candidate in candidates:
        stripped = candidate.strip()
        try:
            return json.loads(stripped)
        except json.JSONDecodeError:
            pass
        for start, char in enumerate(candidate):
            if char in "{[":
                try:
                    value, _ = decoder.raw_decode(candidate, start)
                except json.JSONDecodeError:
                    continue
                return value
    raise ValueError("the reply holds no complete JSON object")


def schema_error(value: Any, schema: Mapping[str, Any]) -> str | None:
    """Why `value` does not match `schema` (the most relevant error), or None if it does."""
    import jsonschema

    validator_class = jsonschema.validators.validator_for(schema)
    error = jsonschema.exceptions.best_match(validator_class(schema).iter_errors(value))
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path)
    return f"{error.message}" + (f" (at {where})" if where else "")


def parse_structured(text: str, schema: Mapping[str, Any]) -> tuple[Any, str | None]:
    """Parse `text` against `schema`: ``(value, None)`` if valid, else ``(None, problem)``."""
    try:
        value = extract_json(text)
    except ValueError as error:
        return None, str(error)
    problem = schema_error(value, schema)
    return (None, problem) if problem else (value, None)
