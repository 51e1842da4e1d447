"""The requests `ragtune serve` accepts, read from their JSON bodies and checked.

A chat completion takes OpenAI's fields; those ragtune cannot honour (tools, several choices,
log-probabilities, audio) are refused by name rather than silently ignored, and fields that change
nothing here (``user``, ``metadata``, penalties) are accepted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ragtune.llm.openai_server import RequestError, parse_message, parse_response_format
from ragtune.llm.types import GenerationParams, Message
from ragtune.serve.errors import bad_request

#: Request fields the server refuses, with why.
UNSUPPORTED = {
    "tools": "tool calls are not supported",
    "tool_choice": "tool calls are not supported",
    "functions": "function calls are not supported",
    "function_call": "function calls are not supported",
    "audio": "audio output is not supported",
    "prediction": "predicted outputs are not supported",
    "top_logprobs": "log-probabilities are not supported",
}


@dataclass(frozen=True)
class ChatCompletionRequest:
    """A checked chat completion request.

    Attributes:
        model: The model asked for (a memory, ``<memory>:hybrid`` or the base model).
        messages: The conversation.
        params: How to generate.
        json_schema: The schema the answer must match (``response_format``), or None.
        stream: Whether to answer as server-sent events.
        include_usage: Whether a stream ends with a usage chunk (``stream_options``).
    """

    model: str
    messages: list[Message]
    params: GenerationParams
    json_schema: dict[str, Any] | None
    stream: bool
    include_usage: bool


@dataclass(frozen=True)
class RecallRequest:
    """A checked ``/v1/recall`` request: up to `k` source passages of `model` for `query`."""

    model: str
    query: str
    k: int


def parse_json(raw: bytes) -> dict[str, Any]:
    """The JSON object in a request body.

    Raises:
        ApiError: the body is not JSON or not an object.
    """
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise bad_request(f"The request body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    return body


def parse_chat_completion(body: dict[str, Any], *, max_tokens_cap: int) -> ChatCompletionRequest:
    """The chat completion request in `body`, with OpenAI's defaults.

    Raises:
        ApiError: a missing or invalid field, an unsupported one, or ``max_tokens`` above
            `max_tokens_cap`.
    """
    model = _required_string(body, "model")
    for field, why in UNSUPPORTED.items():
        if body.get(field) not in (None, [], False):
            raise bad_request(f"`{field}`: {why} by this server.", param=field)
    if body.get("logprobs"):
        raise bad_request("`logprobs`: log-probabilities are not supported.", param="logprobs")
    if body.get("n", 1) not in (1, None):
        raise bad_request("`n`: this server returns one choice (n=1).", param="n")
    modalities = body.get("modalities")
    if modalities not in (None, ["text"]):
        raise bad_request("`modalities`: only text is supported.", param="modalities")
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise bad_request("`messages` must be a non-empty list of messages.", param="messages")
    try:
        messages = [parse_message(message, i) for i, message in enumerate(raw_messages)]
        schema = parse_response_format(body.get("response_format"))
    except RequestError as error:
        raise bad_request(str(error), param="messages") from None
    stream = _boolean(body, "stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise bad_request("`stream_options` must be an object.", param="stream_options")
    if schema is not None and stream:
        raise bad_request(
            "`response_format` with a schema cannot be streamed; ask without `stream`.",
            param="response_format",
        )
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    field = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
    max_tokens = max_tokens_cap if limit is None else _integer(limit, field, low=1)
    if max_tokens > max_tokens_cap:
        raise bad_request(
            f"`{field}` is {max_tokens}, above this server's limit of {max_tokens_cap}.",
            param=field,
        )
    stop = body.get("stop")
    if stop is None:
        stops: tuple[str, ...] = ()
    elif isinstance(stop, str):
        stops = (stop,)
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop) and len(stop) <= 4:
        stops = tuple(stop)
    else:
        raise bad_request("`stop` must be a string or a list of up to 4 strings.", param="stop")
    params = GenerationParams(
        max_tokens=max_tokens,
        temperature=_number(body, "temperature", 1.0, low=0.0, high=2.0),
        top_p=_number(body, "top_p", 1.0, low=1e-6, high=1.0),
        stop=tuple(s for s in stops if s),
        seed=None if body.get("seed") is None else _integer(body["seed"], "seed"),
    )
    return ChatCompletionRequest(
        model=model,
        messages=messages,
        params=params,
        json_schema=schema,
        stream=stream,
        include_usage=bool(options and options.get("include_usage")),
    )


def parse_recall(body: dict[str, Any], *, max_k: int = 20) -> RecallRequest:
    """The ``/v1/recall`` request in `body`: ``model``, ``query`` (or ``question``) and ``k``
    (default 3).

    Raises:
        ApiError: a missing or invalid field.
    """
    model = _required_string(body, "model")
    field = "query" if "query" in body else "question"
    query = _required_string(body, field)
    k = _integer(body.get("k", 3), "k", low=1)
    if k > max_k:
        raise bad_request(f"`k` is {k}, above this server's limit of {max_k}.", param="k")
    return RecallRequest(model, query, k)


def _required_string(body: dict[str, Any], field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value.strip():
        raise bad_request(f"`{field}` is required and must be a non-empty string.", param=field)
    return value


def _boolean(body: dict[str, Any], field: str) -> bool:
    value = body.get(field, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise bad_request(f"`{field}` must be true or false.", param=field)
    return value


def _integer(value: Any, field: str, *, low: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(f"`{field}` must be an integer, got {json.dumps(value)}.", param=field)
    if low is not None and value < low:
        raise bad_request(f"`{field}` must be at least {low}, got {value}.", param=field)
    return value


def _number(body: dict[str, Any], field: str, default: float, *, low: float, high: float) -> float:
    value = body.get(field)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad_request(f"`{field}` must be a number, got {json.dumps(value)}.", param=field)
    if not low <= value <= high:
        raise bad_request(f"`{field}` must be between {low:g} and {high:g}.", param=field)
    return float(value)
