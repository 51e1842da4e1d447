"""Structured output: ask for JSON matching a schema, find it in the answer, validate, repair."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ragtune.llm.types import Message

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def schema_instruction(schema: Mapping[str, Any]) -> str:
    """The instruction that asks a model for a JSON value matching `schema`.

    It shows the answer's shape with placeholders (field descriptions, enum choices) rather than
    the schema itself: small local models fill in a shape reliably but tend to echo a schema
    back. Endpoints that enforce schemas natively receive the schema itself instead.
    """
    example = json.dumps(schema_example(schema), ensure_ascii=False)
    return (
        f"Answer in JSON like {example}, replacing the placeholder values. "
        "Reply with the JSON only."
    )


def schema_example(schema: Mapping[str, Any]) -> Any:
    """A placeholder value with the shape `schema` describes (for prompts, not for validity)."""
    if schema.get("enum"):
        return "|".join(str(choice) for choice in schema["enum"])
    if "const" in schema:
        return schema["const"]
    for combined in ("anyOf", "oneOf", "allOf"):
        if schema.get(combined):
            return schema_example(schema[combined][0])
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        return {name: schema_example(sub) for name, sub in properties.items()}
    if kind == "array":
        items = schema.get("items")
        return [schema_example(items)] if isinstance(items, Mapping) else []
    if kind == "string" or kind is None:
        return f"<{schema['description']}>" if schema.get("description") else "..."
    return {"integer": 0, "number": 0.0, "boolean": True, "null": None}.get(str(kind), "...")


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
