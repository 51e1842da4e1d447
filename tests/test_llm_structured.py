"""Structured output: JSON extraction, schema validation, prompts, and the bounded repair loop."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from ragtune.errors import StructuredOutputError
from ragtune.llm import (
    ChatBackend,
    ChatRequest,
    ChatResponse,
    GenerationParams,
    Message,
    TokenUsage,
    require_valid,
)
from ragtune.llm.structured import (
    extract_json,
    parse_structured,
    schema_error,
    schema_example,
    schema_instruction,
    with_repair_turn,
    with_schema_instruction,
)
from ragtune.llm.transformers_backend import TransformersBackend
from support import ScriptedChatBackend

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"answer": {"type": "string"}, "n": {"type": "integer"}},
    "required": ["answer"],
}
VALID = '{"answer": "yes", "n": 42}'
INVALID = '{"n": "many"}'  # no "answer", and "n" is not an integer
NOT_JSON = "I think the answer is yes."


def ask(key: str, schema: dict[str, Any] | None = SCHEMA) -> ChatRequest:
    return ChatRequest([Message(role="user", content=key)], GenerationParams(), schema)


# --- extract_json ---------------------------------------------------------------------------


def test_extract_json_parses_plain_json() -> None:
    assert extract_json('  {"answer": "yes", "n": 42}\n') == {"answer": "yes", "n": 42}


def test_extract_json_finds_json_inside_prose() -> None:
    text = 'Sure! Here is the answer: {"answer": "yes", "list": [1, 2]} Hope that helps.'
    assert extract_json(text) == {"answer": "yes", "list": [1, 2]}


def test_extract_json_reads_a_fenced_json_block() -> None:
    text = 'Here you go:\n```json\n{"answer": "fenced"}\n```\nDone.'
    assert extract_json(text) == {"answer": "fenced"}


def test_extract_json_reads_a_plain_fence() -> None:
    assert extract_json("```\n[1, 2, 3]\n```") == [1, 2, 3]


def test_extract_json_prefers_the_fenced_block_over_earlier_json() -> None:
    text = 'For example {"answer": "example"}; the real one:\n```json\n{"answer": "real"}\n```'
    assert extract_json(text) == {"answer": "real"}


def test_extract_json_parses_arrays() -> None:
    assert extract_json('[{"a": 1}, {"b": null}]') == [{"a": 1}, {"b": None}]
    assert extract_json("The ids are [3, 1, 2].") == [3, 1, 2]


def test_extract_json_handles_braces_inside_strings() -> None:
    text = 'Answer: {"text": "a } and { b", "inner": {"c": "}}"}} trailing } text'
    assert extract_json(text) == {"text": "a } and { b", "inner": {"c": "}}"}}


def test_extract_json_skips_an_incomplete_object_before_a_complete_one() -> None:
    assert extract_json('{oops, then {"answer": "ok"}') == {"answer": "ok"}


@pytest.mark.parametrize("text", ["", "no json here", "{unclosed", '{"a": 1', "[1, 2"])
def test_extract_json_without_json_raises_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="no complete JSON"):
        extract_json(text)


# --- schema_error / parse_structured ---------------------------------------------------------


def test_schema_error_is_none_for_a_valid_value() -> None:
    assert schema_error({"answer": "yes", "n": 1}, SCHEMA) is None


def test_schema_error_names_the_path_of_a_nested_problem() -> None:
    schema = {
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"type": "integer"}}},
    }
    problem = schema_error({"items": [1, "two"]}, schema)
    assert problem is not None
    assert "'two' is not of type 'integer'" in problem
    assert problem.endswith("(at items/1)")


def test_schema_error_for_a_missing_property_has_no_path() -> None:
    problem = schema_error({"n": 1}, SCHEMA)
    assert problem == "'answer' is a required property"


def test_parse_structured_returns_value_or_problem() -> None:
    assert parse_structured(f"Result: {VALID}", SCHEMA) == ({"answer": "yes", "n": 42}, None)
    value, problem = parse_structured(NOT_JSON, SCHEMA)
    assert value is None
    assert problem == "the reply holds no complete JSON object"
    value, problem = parse_structured('{"answer": 3}', SCHEMA)
    assert value is None
    assert problem == "3 is not of type 'string' (at answer)"


# --- prompts ---------------------------------------------------------------------------------


def test_schema_instruction_shows_the_example_shape_as_json() -> None:
    instruction = schema_instruction(SCHEMA)
    example = json.dumps(schema_example(SCHEMA))
    assert example == '{"answer": "...", "n": 0}'
    assert example in instruction
    assert "JSON" in instruction


@pytest.mark.parametrize(
    ("schema", "example"),
    [
        ({"type": "string"}, "..."),
        ({"type": "string", "description": "the city"}, "<the city>"),
        ({"enum": ["yes", "no"]}, "yes|no"),
        ({"const": 3}, 3),
        ({"type": "integer"}, 0),
        ({"type": "number"}, 0.0),
        ({"type": "boolean"}, True),
        ({"type": ["null", "integer"]}, 0),
        ({"anyOf": [{"type": "boolean"}, {"type": "string"}]}, True),
        ({"type": "array", "items": {"type": "integer"}}, [0]),
        ({"type": "array"}, []),
        (
            {
                "type": "object",
                "properties": {
                    "facts": {
                        "type": "array",
                        "items": {"type": "string", "description": "a fact"},
                    },
                    "kind": {"enum": ["event", "preference"]},
                },
            },
            {"facts": ["<a fact>"], "kind": "event|preference"},
        ),
    ],
)
def test_schema_example_has_the_shape_of_the_schema(schema: dict[str, Any], example: Any) -> None:
    assert schema_example(schema) == example


def test_with_schema_instruction_appends_to_the_last_user_message() -> None:
    messages = [
        Message(role="system", content="sys"),
        Message(role="user", content="first"),
        Message(role="assistant", content="reply"),
        Message(role="user", content="second"),
    ]
    before = copy.deepcopy(messages)

    result = with_schema_instruction(messages, SCHEMA)

    assert messages == before  # the input is not mutated
    assert result[:3] == before[:3]
    assert result[3] == {"role": "user", "content": "second\n\n" + schema_instruction(SCHEMA)}


def test_with_schema_instruction_skips_trailing_non_user_messages() -> None:
    messages = [Message(role="user", content="q"), Message(role="assistant", content="partial")]
    result = with_schema_instruction(messages, SCHEMA)
    assert result[0]["content"] == "q\n\n" + schema_instruction(SCHEMA)
    assert result[1] == {"role": "assistant", "content": "partial"}


def test_with_schema_instruction_adds_a_user_message_when_there_is_none() -> None:
    messages = [Message(role="system", content="sys")]
    result = with_schema_instruction(messages, SCHEMA)
    assert result == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": schema_instruction(SCHEMA)},
    ]
    assert messages == [{"role": "system", "content": "sys"}]


def test_with_repair_turn_appends_the_answer_and_a_fix_request() -> None:
    messages = [Message(role="user", content="q")]
    result = with_repair_turn(messages, INVALID, "'answer' is a required property")
    assert messages == [{"role": "user", "content": "q"}]
    assert len(result) == 3
    assert result[0] == messages[0]
    assert result[1] == {"role": "assistant", "content": INVALID}
    assert result[2]["role"] == "user"
    assert "'answer' is a required property" in result[2]["content"]


# --- the repair loop (scripted backend) ------------------------------------------------------


def test_scripted_backend_is_a_chat_backend() -> None:
    assert isinstance(ScriptedChatBackend({"q": [VALID]}), ChatBackend)


def test_valid_first_answer_is_parsed_with_one_model_call() -> None:
    backend = ScriptedChatBackend({"q": [f"Here: {VALID}"]})
    response = backend.chat([Message(role="user", content="q")], json_schema=SCHEMA)
    assert response.parsed == {"answer": "yes", "n": 42}
    assert response.error is None
    assert backend.stats.model_calls == 1


def test_invalid_then_valid_answer_is_repaired() -> None:
    backend = ScriptedChatBackend({"q": [INVALID, VALID]})

    response = backend.chat([Message(role="user", content="q")], json_schema=SCHEMA)

    assert response.parsed == {"answer": "yes", "n": 42}
    assert response.text == VALID
    assert response.error is None
    assert backend.stats.model_calls == 2
    assert backend.stats.requests == 1
    # First prompt: 1 message (10 tokens); repair prompt: 3 messages (30 tokens).
    assert response.usage == TokenUsage(10 + 30, len(INVALID) + len(VALID))
    assert backend.stats.usage == response.usage


def test_repair_prompt_holds_the_invalid_answer_and_the_problem() -> None:
    backend = ScriptedChatBackend({"q": [INVALID, VALID]})
    backend.chat([Message(role="user", content="q")], json_schema=SCHEMA)

    first, repair = backend.calls[0][0], backend.calls[1][0]
    _, problem = parse_structured(INVALID, SCHEMA)
    assert problem
    assert list(repair.messages[:1]) == list(first.messages)
    assert repair.messages[1] == {"role": "assistant", "content": INVALID}
    assert repair.messages[2]["role"] == "user"
    assert problem in repair.messages[2]["content"]


def test_non_json_answer_is_repaired_with_the_extraction_problem() -> None:
    backend = ScriptedChatBackend({"q": [NOT_JSON, VALID]})
    response = backend.chat([Message(role="user", content="q")], json_schema=SCHEMA)
    assert response.parsed == {"answer": "yes", "n": 42}
    assert "no complete JSON" in backend.calls[1][0].messages[-1]["content"]


def test_always_invalid_answer_raises_structured_output_error_from_chat() -> None:
    backend = ScriptedChatBackend({"q": [INVALID]})
    with pytest.raises(StructuredOutputError, match="'answer' is a required property"):
        backend.chat([Message(role="user", content="q")], json_schema=SCHEMA)
    assert backend.stats.model_calls == 3


@pytest.mark.parametrize("retries", [0, 1, 2, 4])
def test_always_invalid_answer_is_returned_with_error_from_chat_batch(retries: int) -> None:
    backend = ScriptedChatBackend({"q": [INVALID]}, structured_retries=retries)

    [response] = backend.chat_batch([ask("q")])

    assert response.error == "'answer' is a required property"
    assert response.parsed is None
    assert response.text == INVALID
    assert len(backend.calls) == retries + 1
    assert backend.stats.model_calls == retries + 1
    assert backend.stats.requests == 1
    assert response.usage.completion_tokens == len(INVALID) * (retries + 1)
    with pytest.raises(StructuredOutputError):
        require_valid(response)


def test_batch_retries_only_the_invalid_requests_and_keeps_order() -> None:
    backend = ScriptedChatBackend(
        {"good": [VALID], "fixed": [NOT_JSON, '{"answer": "fixed"}'], "bad": [INVALID]}
    )

    responses = backend.chat_batch([ask("bad"), ask("good"), ask("fixed")])

    assert [r.parsed for r in responses] == [None, {"answer": "yes", "n": 42}, {"answer": "fixed"}]
    assert responses[0].error == "'answer' is a required property"
    assert [r.error for r in responses[1:]] == [None, None]
    assert [len(call) for call in backend.calls] == [3, 2, 1]
    retried = [r.messages[0]["content"].split("\n\n")[0] for r in backend.calls[1]]
    assert retried == ["bad", "fixed"]
    assert backend.stats.model_calls == 6
    assert backend.stats.requests == 3


def test_unstructured_requests_are_never_repaired() -> None:
    backend = ScriptedChatBackend({"q": [NOT_JSON]})
    [response] = backend.chat_batch([ask("q", schema=None)])
    assert response.text == NOT_JSON
    assert response.parsed is None
    assert response.error is None
    assert backend.stats.model_calls == 1


def test_prompt_based_backend_gets_the_schema_as_an_instruction() -> None:
    backend = ScriptedChatBackend({"q": [VALID]}, native=False)
    backend.chat([Message(role="user", content="q")], json_schema=SCHEMA)
    [sent] = backend.calls[0]
    assert sent.json_schema is None
    assert list(sent.messages) == [
        {"role": "user", "content": "q\n\n" + schema_instruction(SCHEMA)}
    ]


def test_native_schema_backend_gets_the_schema_and_an_unchanged_prompt() -> None:
    key = "q"
    backend = ScriptedChatBackend({key: [INVALID, VALID]}, native=True)
    messages = [Message(role="system", content=key), Message(role="user", content="question")]

    response = backend.chat(messages, json_schema=SCHEMA)

    assert response.parsed == {"answer": "yes", "n": 42}
    first, repair = backend.calls[0][0], backend.calls[1][0]
    assert first.json_schema == SCHEMA
    assert list(first.messages) == messages
    assert all(schema_instruction(SCHEMA) not in m["content"] for m in first.messages)
    # Repairs of a native backend still carry the schema natively.
    assert repair.json_schema == SCHEMA
    assert list(repair.messages[:2]) == messages


def test_require_valid_passes_responses_without_error() -> None:
    response = ChatResponse(text="{}", model="m", parsed={})
    assert require_valid(response) is response


def test_require_valid_raises_with_the_error_and_the_answer() -> None:
    response = ChatResponse(text="garbage answer", model="m", error="not JSON")
    with pytest.raises(StructuredOutputError, match="not JSON") as raised:
        require_valid(response)
    assert "garbage answer" in str(raised.value)
    assert "m did not answer" in str(raised.value)


# --- the real tiny model ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_backend(tiny_model_dir: Path) -> TransformersBackend:
    return TransformersBackend(tiny_model_dir, device="cpu")


def test_random_model_cannot_answer_a_schema_and_chat_raises(
    tiny_backend: TransformersBackend,
) -> None:
    before = tiny_backend.stats.model_calls
    with pytest.raises(StructuredOutputError, match="did not answer with JSON"):
        tiny_backend.chat(
            [Message(role="user", content="Who went to the support group?")],
            params=GenerationParams(max_tokens=12),
            json_schema=SCHEMA,
        )
    assert tiny_backend.stats.model_calls - before == 3  # 1 answer + 2 default repairs


def test_random_model_structured_batch_returns_errors_without_raising(
    tiny_model_dir: Path,
) -> None:
    backend = TransformersBackend(tiny_model_dir, device="cpu")
    params = GenerationParams(max_tokens=8)
    requests = [
        ChatRequest([Message(role="user", content=q)], params, SCHEMA) for q in ("a?", "b?")
    ]

    responses = backend.chat_batch(requests)

    assert all(r.error for r in responses)
    assert all(r.parsed is None for r in responses)
    assert backend.stats.requests == 2
    assert backend.stats.model_calls == 6
    # Each repair re-reads a longer prompt, so usage grows beyond three first prompts.
    first_prompt = backend.render_prompt(with_schema_instruction(requests[0].messages, SCHEMA))
    first_tokens = len(backend.tokenizer(first_prompt, add_special_tokens=False)["input_ids"])
    assert responses[0].usage.prompt_tokens > 3 * first_tokens
    assert responses[0].usage.completion_tokens <= 3 * 8
