"""CachedChatBackend: a SQLite response cache in front of the real tiny model."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from ragtune.errors import StructuredOutputError
from ragtune.llm import (
    ChatBackend,
    ChatRequest,
    GenerationParams,
    Message,
    load_backend,
)
from ragtune.llm.cache import CachedChatBackend
from ragtune.llm.transformers_backend import TransformersBackend
from support import ScriptedChatBackend

PARAMS = GenerationParams(max_tokens=8)
QUESTIONS = ["hi", "What did Caroline do?", "Where did Melanie paint a sunrise?", "x"]
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
}


def user(text: str) -> list[Message]:
    return [Message(role="user", content=text)]


def requests_for(questions: Sequence[str], params: GenerationParams = PARAMS) -> list[ChatRequest]:
    return [ChatRequest(user(q), params) for q in questions]


@pytest.fixture
def new_tiny(tiny_model_dir: Path) -> Any:
    """Makes new instances of the tiny model (same folder, same fingerprint, zeroed stats)."""
    return lambda **kwargs: TransformersBackend(tiny_model_dir, device="cpu", **kwargs)


@pytest.fixture
def cache_file(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "llm.sqlite"


def test_cached_backend_satisfies_chat_backend_protocol(new_tiny: Any, cache_file: Path) -> None:
    cached = CachedChatBackend(new_tiny(), cache_file)
    assert isinstance(cached, ChatBackend)
    assert not cache_file.exists()  # until an answer is stored: a failed run leaves no file
    cached.close()


def test_the_cache_file_appears_with_the_first_answer(new_tiny: Any, cache_file: Path) -> None:
    cached = CachedChatBackend(new_tiny(), cache_file)
    cached.chat([{"role": "user", "content": "Hi"}], params=GenerationParams(max_tokens=2))
    assert cache_file.is_file()
    cached.close()


def test_cached_backend_reports_the_wrapped_name_fingerprint_and_stats(
    new_tiny: Any, cache_file: Path
) -> None:
    inner = new_tiny()
    cached = CachedChatBackend(inner, cache_file)
    assert cached.model_name == inner.model_name
    assert cached.fingerprint == inner.fingerprint
    assert cached.stats is inner.stats
    cached.close()


def test_second_run_on_a_new_instance_makes_no_model_calls(new_tiny: Any, cache_file: Path) -> None:
    requests = requests_for(QUESTIONS)
    first_inner = new_tiny()
    first = CachedChatBackend(first_inner, cache_file)
    fresh = first.chat_batch(requests)
    assert (first.misses, first.hits) == (len(QUESTIONS), 0)
    assert first_inner.stats.model_calls == len(QUESTIONS)
    assert not any(r.cached for r in fresh)
    first.close()

    second_inner = new_tiny()
    assert second_inner is not first_inner
    assert second_inner.fingerprint == first_inner.fingerprint
    second = CachedChatBackend(second_inner, cache_file)
    replayed = second.chat_batch(requests)

    assert second_inner.stats.model_calls == 0
    assert second_inner.stats.requests == 0
    assert (second.misses, second.hits) == (0, len(QUESTIONS))
    assert [r.text for r in replayed] == [r.text for r in fresh]
    assert [r.usage for r in replayed] == [r.usage for r in fresh]
    assert [r.finish_reason for r in replayed] == [r.finish_reason for r in fresh]
    assert [r.model for r in replayed] == [r.model for r in fresh]
    assert all(r.cached for r in replayed)
    second.close()


def test_chat_is_answered_from_the_cache(new_tiny: Any, cache_file: Path) -> None:
    inner = new_tiny()
    cached = CachedChatBackend(inner, cache_file)
    first = cached.chat(user("hi"), params=PARAMS)
    again = cached.chat(user("hi"), params=PARAMS)
    assert inner.stats.model_calls == 1
    assert (cached.misses, cached.hits) == (1, 1)
    assert first.cached is False
    assert again.cached is True
    assert again.text == first.text
    cached.close()


def test_mixed_batch_generates_only_the_missing_and_keeps_order(
    new_tiny: Any, cache_file: Path
) -> None:
    inner = new_tiny()
    cached = CachedChatBackend(inner, cache_file)
    cached.chat_batch(requests_for(QUESTIONS[:2]))
    direct = [inner.chat(user(q), params=PARAMS).text for q in QUESTIONS]
    calls_before = inner.stats.model_calls

    responses = cached.chat_batch(requests_for(QUESTIONS))

    assert [r.text for r in responses] == direct
    assert [r.cached for r in responses] == [True, True, False, False]
    assert inner.stats.model_calls - calls_before == 2
    assert (cached.misses, cached.hits) == (2 + 2, 2)
    cached.close()


@pytest.mark.parametrize(
    "changed",
    [
        ChatRequest(user("hi"), GenerationParams(max_tokens=9)),
        ChatRequest(user("hi"), GenerationParams(max_tokens=8, temperature=0.7, seed=1)),
        ChatRequest(user("hi"), GenerationParams(max_tokens=8, stop=("zz",))),
        ChatRequest(user("hi!"), PARAMS),
        ChatRequest([Message(role="system", content="Be brief."), *user("hi")], PARAMS),
        ChatRequest(user("hi"), PARAMS, SCHEMA),
    ],
    ids=["max_tokens", "sampling", "stop", "message", "extra-message", "schema"],
)
def test_changed_request_is_a_miss(new_tiny: Any, cache_file: Path, changed: ChatRequest) -> None:
    inner = new_tiny(structured_retries=0)
    cached = CachedChatBackend(inner, cache_file)
    cached.chat_batch([ChatRequest(user("hi"), PARAMS)])
    assert cached.key(changed) != cached.key(ChatRequest(user("hi"), PARAMS))

    [response] = cached.chat_batch([changed])

    assert response.cached is False
    assert (cached.misses, cached.hits) == (2, 0)
    assert inner.stats.model_calls == 2
    cached.close()


def test_backend_with_a_different_fingerprint_misses(new_tiny: Any, cache_file: Path) -> None:
    first = CachedChatBackend(new_tiny(), cache_file)
    first.chat_batch(requests_for(QUESTIONS[:2]))
    first.close()

    other_inner = new_tiny(fingerprint="hf:other-weights")
    other = CachedChatBackend(other_inner, cache_file)
    responses = other.chat_batch(requests_for(QUESTIONS[:2]))

    assert (other.misses, other.hits) == (2, 0)
    assert other_inner.stats.model_calls == 2
    assert not any(r.cached for r in responses)
    other.close()


def test_keys_are_stable_across_instances_and_depend_on_the_fingerprint(
    new_tiny: Any, tmp_path: Path
) -> None:
    request = ChatRequest(user("hi"), PARAMS)
    one = CachedChatBackend(new_tiny(), tmp_path / "a.sqlite")
    two = CachedChatBackend(new_tiny(), tmp_path / "b.sqlite")
    other = CachedChatBackend(new_tiny(fingerprint="other"), tmp_path / "c.sqlite")
    assert one.key(request) == two.key(ChatRequest(user("hi"), GenerationParams(max_tokens=8)))
    assert len(one.key(request)) == 64
    assert other.key(request) != one.key(request)
    for cached in (one, two, other):
        cached.close()


def test_duplicates_within_one_batch_reach_the_model_once(new_tiny: Any, cache_file: Path) -> None:
    inner = new_tiny()
    cached = CachedChatBackend(inner, cache_file)
    batch = requests_for(["hi", "x", "hi", "hi"])

    responses = cached.chat_batch(batch)

    assert responses[0].text == responses[2].text == responses[3].text
    assert responses[1].text != responses[0].text
    assert inner.stats.model_calls == 2
    assert (cached.misses, cached.hits) == (2, 2)
    rows = sqlite3.connect(cache_file).execute("SELECT COUNT(*) FROM responses").fetchone()
    assert rows == (2,)

    again = cached.chat_batch(batch)
    assert [r.text for r in again] == [r.text for r in responses]
    assert all(r.cached for r in again)
    cached.close()


def test_structured_failure_is_cached_with_its_error(new_tiny: Any, cache_file: Path) -> None:
    request = ChatRequest(user("Who went?"), GenerationParams(max_tokens=6), SCHEMA)
    first_inner = new_tiny()
    first = CachedChatBackend(first_inner, cache_file)
    [failed] = first.chat_batch([request])
    assert failed.error
    assert first_inner.stats.model_calls == 3
    first.close()

    second_inner = new_tiny()
    second = CachedChatBackend(second_inner, cache_file)
    [replayed] = second.chat_batch([request])

    assert replayed.cached is True
    assert replayed.error == failed.error
    assert replayed.text == failed.text
    assert replayed.parsed is None
    assert replayed.usage == failed.usage
    assert second_inner.stats.model_calls == 0
    with pytest.raises(StructuredOutputError, match="did not answer with JSON"):
        second.chat(request.messages, params=request.params, json_schema=SCHEMA)
    assert second_inner.stats.model_calls == 0
    assert second.hits == 2
    second.close()


def test_structured_success_is_cached_with_its_parsed_value(tmp_path: Path) -> None:
    inner = ScriptedChatBackend('{"answer": "yes", "extra": [1, {"k": null}]}')
    cached = CachedChatBackend(inner, tmp_path / "llm.sqlite")
    first = cached.chat(user("q"), json_schema=SCHEMA)
    cached.close()

    reopened = CachedChatBackend(ScriptedChatBackend("not used"), tmp_path / "llm.sqlite")
    again = reopened.chat(user("q"), json_schema=SCHEMA)

    assert again.cached is True
    assert again.parsed == first.parsed == {"answer": "yes", "extra": [1, {"k": None}]}
    assert reopened.stats.model_calls == 0
    reopened.close()


def test_load_backend_with_cache_returns_a_cached_backend(
    tiny_model_dir: Path, cache_file: Path
) -> None:
    backend = load_backend(f"hf:{tiny_model_dir}", cache=cache_file, device="cpu")
    assert isinstance(backend, CachedChatBackend)
    assert isinstance(backend.backend, TransformersBackend)
    assert backend.path == cache_file
    first = backend.chat(user("hi"), params=PARAMS)
    assert backend.chat(user("hi"), params=PARAMS).text == first.text
    assert (backend.misses, backend.hits) == (1, 1)
    backend.close()
