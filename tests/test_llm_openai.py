"""OpenAIBackend and OpenAICompatibleServer, over real HTTP on loopback.

The server serves the real tiny model; a small stdlib loopback server stands in for a remote
endpoint only where the real server cannot produce the situation (a 503, a 400 of its own, a
broken answer), and records what the client sent (headers, bodies).
"""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from ragtune.errors import BackendError, StructuredOutputError
from ragtune.llm import (
    ChatBackend,
    ChatRequest,
    GenerationParams,
    Message,
)
from ragtune.llm.openai_backend import DEFAULT_BASE_URL, OpenAIBackend
from ragtune.llm.openai_server import OpenAICompatibleServer, RequestError, parse_chat_request
from ragtune.llm.structured import schema_instruction
from ragtune.llm.transformers_backend import TransformersBackend
from support import ScriptedChatBackend

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
}
GREEDY = GenerationParams(max_tokens=12, temperature=0.0)


def user(text: str) -> list[Message]:
    return [Message(role="user", content=text)]


# --- test doubles ----------------------------------------------------------------------------


Reply = tuple[int, Any]  # (status, JSON payload or raw text)
Script = Callable[[int, dict[str, Any]], Reply]


class FakeHTTPServer:
    """A fake OpenAI endpoint on loopback: a stdlib HTTP server that records every request
    (path, headers, JSON body) and answers as `script(n, body)` says for the n-th request
    (0-based). Use `proxy_to(url)` in a script to relay the request to a real server."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"null")
                with owner._lock:
                    index = len(owner.requests)
                    owner.requests.append(
                        {"path": self.path, "headers": dict(self.headers), "body": body}
                    )
                status, payload = owner.script(index, body)
                data = (
                    payload.encode("utf-8")
                    if isinstance(payload, str)
                    else json.dumps(payload).encode("utf-8")
                )
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def __enter__(self) -> FakeHTTPServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


def proxy_to(base_url: str) -> Callable[[dict[str, Any]], Reply]:
    def relay(body: dict[str, Any]) -> Reply:
        answer = httpx.post(f"{base_url}/chat/completions", json=body, timeout=60)
        return answer.status_code, answer.json()

    return relay


def canned_completion(text: str = "hello") -> dict[str, Any]:
    return {
        "choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1},
    }


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path) -> TransformersBackend:
    return TransformersBackend(tiny_model_dir, device="cpu")


@pytest.fixture(scope="module")
def server(tiny: TransformersBackend) -> Iterator[OpenAICompatibleServer]:
    with OpenAICompatibleServer(tiny) as running:
        yield running


@pytest.fixture
def client(server: OpenAICompatibleServer) -> Iterator[OpenAIBackend]:
    backend = OpenAIBackend(server.backend.model_name, server.base_url, api_key="", max_retries=0)
    yield backend
    backend.close()


@pytest.fixture
def no_openai_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


# --- OpenAIBackend against the real server ---------------------------------------------------


def test_openai_backend_satisfies_chat_backend_protocol(client: OpenAIBackend) -> None:
    assert isinstance(client, ChatBackend)


def test_text_equals_the_served_backends_greedy_answer(
    client: OpenAIBackend, tiny: TransformersBackend
) -> None:
    messages = [Message(role="system", content="Be brief."), *user("What did Melanie paint?")]
    direct = tiny.chat(messages, params=GREEDY)

    remote = client.chat(messages, params=GREEDY)

    assert remote.text == direct.text
    assert remote.text
    assert remote.model == client.model_name == tiny.model_name


def test_usage_and_finish_reason_come_through(
    client: OpenAIBackend, tiny: TransformersBackend
) -> None:
    direct = tiny.chat(user("hi"), params=GREEDY)
    remote = client.chat(user("hi"), params=GREEDY)
    assert remote.usage == direct.usage
    assert remote.usage.completion_tokens == 12
    assert remote.finish_reason == direct.finish_reason == "length"
    assert client.stats.usage == remote.usage
    assert client.stats.requests == 1
    assert client.stats.model_calls == 1


def test_stop_strings_travel_to_the_server(
    client: OpenAIBackend, tiny: TransformersBackend
) -> None:
    unstopped = tiny.chat(user("hi"), params=GenerationParams(max_tokens=30)).text
    stop = next(
        unstopped[i : i + 2]
        for i in range(len(unstopped) // 2, len(unstopped) - 2)
        if unstopped[i : i + 2].isascii()
        and unstopped[i : i + 2].isalpha()
        and unstopped.find(unstopped[i : i + 2]) == i
    )
    params = GenerationParams(max_tokens=30, stop=(stop,))
    remote = client.chat(user("hi"), params=params)
    assert remote.text == tiny.chat(user("hi"), params=params).text
    assert stop not in remote.text
    assert remote.finish_reason == "stop"


def test_chat_batch_returns_answers_in_order(
    server: OpenAICompatibleServer, tiny: TransformersBackend
) -> None:
    questions = [f"Question number {i}: {'why ' * i}?" for i in range(6)]
    params = GenerationParams(max_tokens=6)
    expected = [tiny.chat(user(q), params=params).text for q in questions]
    assert len(set(expected)) == len(expected)
    client = OpenAIBackend(tiny.model_name, server.base_url, api_key="", concurrency=4)

    responses = client.chat_batch([ChatRequest(user(q), params) for q in questions])

    assert [r.text for r in responses] == expected
    assert client.stats.requests == 6
    client.close()


def test_models_endpoint_lists_the_model_name(server: OpenAICompatibleServer) -> None:
    answer = httpx.get(f"{server.base_url}/models")
    assert answer.status_code == 200
    assert [m["id"] for m in answer.json()["data"]] == [server.backend.model_name]


def test_unknown_route_is_404(server: OpenAICompatibleServer) -> None:
    assert httpx.get(f"{server.base_url}/nothing").status_code == 404
    assert httpx.post(f"{server.base_url}/completions", json={}).status_code == 404


def test_server_answers_raw_chat_completion_requests(server: OpenAICompatibleServer) -> None:
    answer = httpx.post(
        f"{server.base_url}/chat/completions",
        json={"model": "x", "messages": user("hi"), "max_tokens": 3, "temperature": 0},
    )
    assert answer.status_code == 200
    payload = answer.json()
    assert payload["object"] == "chat.completion"
    assert payload["choices"][0]["message"]["role"] == "assistant"
    assert payload["choices"][0]["finish_reason"] == "length"
    assert payload["usage"]["completion_tokens"] == 3
    usage = payload["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


# --- request parsing and 400s ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"messages": user("hi"), "stream": True}, "streaming is not supported"),
        ({"model": "m"}, "'messages' must be a non-empty list"),
        ({"messages": []}, "'messages' must be a non-empty list"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, r"messages\[0\] must have a role"),
        ({"messages": [{"role": "user", "content": 3}]}, r"messages\[0\] must have text"),
        ({"messages": user("hi"), "n": 2}, "only n=1"),
        ({"messages": user("hi"), "temperature": -1}, "invalid generation parameter"),
        (
            {"messages": user("hi"), "response_format": {"type": "json_schema"}},
            "response_format must be",
        ),
    ],
)
def test_invalid_requests_are_refused_with_400_and_a_message(
    server: OpenAICompatibleServer, body: dict[str, Any], message: str
) -> None:
    with pytest.raises(RequestError, match=message):
        parse_chat_request(body)
    answer = httpx.post(f"{server.base_url}/chat/completions", json=body)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert re.search(message, error["message"])


def test_non_json_body_is_refused_with_400(server: OpenAICompatibleServer) -> None:
    answer = httpx.post(
        f"{server.base_url}/chat/completions",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 400
    with pytest.raises(RequestError, match="JSON object"):
        parse_chat_request(["not", "an", "object"])


def test_parse_chat_request_applies_openai_defaults_and_options() -> None:
    request = parse_chat_request(
        {
            "messages": [
                {"role": "developer", "content": "rules"},
                {"role": "user", "content": [{"type": "text", "text": "a"}, {"text": "b"}]},
            ],
            "max_completion_tokens": 9,
            "max_tokens": 99,
            "stop": "END",
            "seed": 5,
        }
    )
    assert list(request.messages) == [
        {"role": "system", "content": "rules"},
        {"role": "user", "content": "ab"},
    ]
    assert request.params == GenerationParams(
        max_tokens=9, temperature=1.0, top_p=1.0, stop=("END",), seed=5
    )
    assert request.json_schema is None
    assert parse_chat_request({"messages": user("x")}).params.max_tokens == 256


@pytest.mark.parametrize(
    ("response_format", "schema"),
    [
        (None, None),
        ({"type": "text"}, None),
        ({"type": "json_object"}, {"type": "object"}),
        ({"type": "json_schema", "json_schema": {"name": "a", "schema": SCHEMA}}, SCHEMA),
    ],
)
def test_parse_chat_request_maps_response_format_to_a_schema(
    response_format: dict[str, Any] | None, schema: dict[str, Any] | None
) -> None:
    request = parse_chat_request({"messages": user("x"), "response_format": response_format})
    assert request.json_schema == schema


def test_server_hands_response_format_schema_to_the_backend() -> None:
    scripted = ScriptedChatBackend('{"answer": "yes"}', native=True)
    with OpenAICompatibleServer(scripted) as served:
        client = OpenAIBackend("any", served.base_url, api_key="", max_retries=0)
        response = client.chat(user("Is it?"), json_schema=SCHEMA)
        client.close()

    assert response.parsed == {"answer": "yes"}
    [received] = scripted.received
    assert received.json_schema == SCHEMA
    # A native-schema client sends the prompt unchanged: no schema instruction in it.
    assert list(received.messages) == user("Is it?")
    assert schema_instruction(SCHEMA) not in received.messages[0]["content"]


def test_backend_error_of_the_served_model_becomes_400(
    server: OpenAICompatibleServer, client: OpenAIBackend
) -> None:
    # The tiny model's window is 2048 tokens: the served backend refuses with BackendError.
    with pytest.raises(BackendError, match="context window") as raised:
        client.chat(user("hi"), params=GenerationParams(max_tokens=4000))
    assert "(400)" in str(raised.value)


# --- retries and errors (fake endpoints) -----------------------------------------------------


def test_retries_after_503_then_succeeds(server: OpenAICompatibleServer) -> None:
    relay = proxy_to(server.base_url)

    def script(n: int, body: dict[str, Any]) -> Reply:
        if n == 0:
            return 503, {"error": {"message": "overloaded"}}
        return relay(body)

    with FakeHTTPServer(script) as fake:
        client = OpenAIBackend("tiny", fake.base_url, api_key="", max_retries=2)
        response = client.chat(user("hi"), params=GREEDY)
        client.close()

    assert len(fake.requests) == 2
    assert fake.requests[0]["body"] == fake.requests[1]["body"]
    assert response.text == server.backend.chat(user("hi"), params=GREEDY).text


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502])
def test_retryable_status_exhausts_retries_then_raises(status: int) -> None:
    with FakeHTTPServer(lambda n, body: (status, {"error": {"message": "busy"}})) as fake:
        client = OpenAIBackend("m", fake.base_url, api_key="", max_retries=1)
        with pytest.raises(BackendError, match=f"answered {status}: busy"):
            client.chat(user("hi"))
        client.close()
    assert len(fake.requests) == 2


def test_400_raises_with_the_server_message_and_no_retry() -> None:
    message = "The model `nope` does not exist"
    error = {"error": {"message": message, "type": "invalid_request_error"}}
    with FakeHTTPServer(lambda n, body: (400, error)) as fake:
        client = OpenAIBackend("nope", fake.base_url, api_key="", max_retries=3)
        with pytest.raises(BackendError, match="refused the request") as raised:
            client.chat(user("hi"))
        client.close()
    assert message in str(raised.value)
    assert "(400)" in str(raised.value)
    assert len(fake.requests) == 1


def test_error_text_that_is_not_json_is_reported() -> None:
    with FakeHTTPServer(lambda n, body: (404, "no such page")) as fake:
        client = OpenAIBackend("m", fake.base_url, api_key="", max_retries=0)
        with pytest.raises(BackendError, match="no such page"):
            client.chat(user("hi"))
        client.close()


def test_answer_that_is_not_a_chat_completion_raises_backend_error() -> None:
    with FakeHTTPServer(lambda n, body: (200, {"object": "list", "data": []})) as fake:
        client = OpenAIBackend("m", fake.base_url, api_key="", max_retries=0)
        with pytest.raises(BackendError, match="not a chat completion"):
            client.chat(user("hi"))
        client.close()


def test_answer_that_is_not_json_raises_backend_error() -> None:
    """A 200 whose body is not JSON (a proxy's HTML page) is a backend failure, not a crash."""
    with FakeHTTPServer(lambda n, body: (200, "<html>gateway</html>")) as fake:
        client = OpenAIBackend("m", fake.base_url, api_key="", max_retries=0)
        with pytest.raises(BackendError):
            client.chat(user("hi"))
        client.close()


def test_unreachable_server_raises_cannot_reach() -> None:
    client = OpenAIBackend("m", f"http://127.0.0.1:{free_port()}/v1", api_key="", max_retries=0)
    with pytest.raises(BackendError, match="cannot reach the server"):
        client.chat(user("hi"))
    client.close()


# --- request contents ------------------------------------------------------------------------


def test_body_carries_messages_params_and_response_format() -> None:
    with FakeHTTPServer(lambda n, body: (200, canned_completion('{"answer": "a"}'))) as fake:
        client = OpenAIBackend("m", fake.base_url, api_key="")
        params = GenerationParams(max_tokens=7, temperature=0.5, top_p=0.9, stop=("X",), seed=3)
        response = client.chat(user("q"), params=params, json_schema=SCHEMA)
        client.close()

    assert response.parsed == {"answer": "a"}
    [sent] = fake.requests
    assert sent["path"] == "/v1/chat/completions"
    assert sent["body"] == {
        "model": "m",
        "messages": [{"role": "user", "content": "q"}],
        "max_tokens": 7,
        "temperature": 0.5,
        "top_p": 0.9,
        "stop": ["X"],
        "seed": 3,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": SCHEMA},
        },
    }


def test_body_without_schema_has_no_response_format() -> None:
    with FakeHTTPServer(lambda n, body: (200, canned_completion())) as fake:
        client = OpenAIBackend("m", fake.base_url, api_key="")
        client.chat(user("q"))
        client.close()
    body = fake.requests[0]["body"]
    assert "response_format" not in body
    assert "stop" not in body
    assert "seed" not in body


def test_native_schema_repair_resends_the_schema_with_the_problem() -> None:
    answers = ['{"wrong": 1}', '{"answer": "fixed"}']
    with FakeHTTPServer(lambda n, body: (200, canned_completion(answers[min(n, 1)]))) as fake:
        client = OpenAIBackend("m", fake.base_url, api_key="")
        response = client.chat(user("q"), json_schema=SCHEMA)
        client.close()

    assert response.parsed == {"answer": "fixed"}
    first, repair = (r["body"] for r in fake.requests)
    assert first["messages"] == [{"role": "user", "content": "q"}]
    assert repair["response_format"] == first["response_format"]
    assert repair["messages"][1] == {"role": "assistant", "content": '{"wrong": 1}'}
    assert "'answer' is a required property" in repair["messages"][2]["content"]


def test_structured_answer_that_never_matches_raises() -> None:
    with FakeHTTPServer(lambda n, body: (200, canned_completion("no json"))) as fake:
        client = OpenAIBackend("m", fake.base_url, api_key="", structured_retries=1)
        with pytest.raises(StructuredOutputError):
            client.chat(user("q"), json_schema=SCHEMA)
        client.close()
    assert len(fake.requests) == 2


def _authorization_sent(base_url: str | None = None, **kwargs: Any) -> str | None:
    with FakeHTTPServer(lambda n, body: (200, canned_completion())) as fake:
        client = OpenAIBackend("m", base_url or fake.base_url, **kwargs)
        if base_url is None:
            client.chat(user("q"))
        client.close()
    headers = {k.lower(): v for k, v in fake.requests[0]["headers"].items()}
    return headers.get("authorization")


def test_authorization_header_from_api_key(no_openai_env: None) -> None:
    assert _authorization_sent(api_key="sk-given") == "Bearer sk-given"


def test_authorization_header_from_openai_api_key_env(
    no_openai_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    assert _authorization_sent() == "Bearer sk-env"


def test_api_key_argument_wins_over_the_environment(
    no_openai_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    assert _authorization_sent(api_key="sk-given") == "Bearer sk-given"


def test_no_authorization_header_without_a_key(no_openai_env: None) -> None:
    assert _authorization_sent() is None


def test_base_url_defaults_to_openai_base_url_env(
    no_openai_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeHTTPServer(lambda n, body: (200, canned_completion("from env"))) as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url + "/")
        client = OpenAIBackend("m")
        response = client.chat(user("q"))
        client.close()
    assert client.base_url == fake.base_url
    assert response.text == "from env"
    assert len(fake.requests) == 1


def test_base_url_defaults_to_openai_without_env(no_openai_env: None) -> None:
    client = OpenAIBackend("gpt-4o-mini")  # builds a client; connects to nothing
    assert client.base_url == DEFAULT_BASE_URL == "https://api.openai.com/v1"
    client.close()


def test_fingerprint_names_model_and_endpoint(no_openai_env: None) -> None:
    client = OpenAIBackend("llama3.1:8b", "http://127.0.0.1:11434/v1/")
    assert client.fingerprint == "openai:llama3.1:8b@http://127.0.0.1:11434/v1"
    assert client.model_name == "llama3.1:8b"
    client.close()
