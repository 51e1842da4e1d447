"""Serve any `ChatBackend` over OpenAI's chat completions API (non-streaming), stdlib only.

It lets an OpenAI-compatible client (`OpenAIBackend`, the `openai` SDK, LangChain's ChatOpenAI)
talk to a local model, and is what the OpenAI backend's tests run against on loopback.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ragtune.errors import BackendError
from ragtune.llm.types import ChatBackend, ChatRequest, GenerationParams, Message, Role

logger = logging.getLogger(__name__)


class RequestError(ValueError):
    """A request the server refuses with HTTP 400."""


class OpenAICompatibleServer:
    """An HTTP server answering `/v1/chat/completions` and `/v1/models` with `backend`.

    Use it as a context manager (it serves on a background thread), or call `serve_forever`.

    Args:
        backend: The model to serve.
        host: The address to listen on; loopback by default.
        port: The port; 0 picks a free one (see `base_url`).
    """

    def __init__(self, backend: ChatBackend, host: str = "127.0.0.1", port: int = 0) -> None:
        self.backend = backend
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer((host, port), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """The API root to give clients, e.g. ``http://127.0.0.1:43210/v1``."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def serve_forever(self) -> None:
        """Serve on this thread until interrupted."""
        self._httpd.serve_forever()

    def __enter__(self) -> OpenAICompatibleServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()

    def models(self) -> dict[str, Any]:
        """The `/v1/models` answer."""
        return {
            "object": "list",
            "data": [{"id": self.backend.model_name, "object": "model", "owned_by": "ragtune"}],
        }

    def chat_completion(self, body: Any) -> dict[str, Any]:
        """The `/v1/chat/completions` answer to a request body.

        Raises:
            RequestError: the body is not a valid (non-streaming) chat completion request.
        """
        request = parse_chat_request(body)
        with self._lock:  # one generation at a time: local models are not thread-safe
            response = self.backend.chat_batch([request])[0]
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": response.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": response.text},
                    "finish_reason": response.finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": response.usage.prompt_tokens,
                "completion_tokens": response.usage.completion_tokens,
                "total_tokens": response.usage.total_tokens,
            },
        }


def parse_chat_request(body: Any) -> ChatRequest:
    """A `ChatRequest` from an OpenAI chat completions request body (OpenAI's defaults).

    Raises:
        RequestError: the body is not a valid non-streaming chat completion request.
    """
    if not isinstance(body, dict):
        raise RequestError("the body must be a JSON object")
    if body.get("stream"):
        raise RequestError("streaming is not supported by this server")
    if body.get("n", 1) != 1:
        raise RequestError("only n=1 is supported")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' must be a non-empty list")
    stop = body.get("stop") or ()
    try:
        params = GenerationParams(
            max_tokens=int(body.get("max_completion_tokens") or body.get("max_tokens") or 256),
            temperature=float(body.get("temperature", 1.0)),
            top_p=float(body.get("top_p", 1.0)),
            stop=(stop,) if isinstance(stop, str) else tuple(str(s) for s in stop),
            seed=int(body["seed"]) if body.get("seed") is not None else None,
        )
    except (TypeError, ValueError) as error:
        raise RequestError(f"invalid generation parameter: {error}") from None
    return ChatRequest(
        [parse_message(m, i) for i, m in enumerate(messages)],
        params,
        parse_response_format(body.get("response_format")),
    )


def parse_message(raw: Any, index: int) -> Message:
    """`messages[index]` of a request as a `Message` (text content parts joined; a
    ``developer`` message is a system message).

    Raises:
        RequestError: it is not a system, user or assistant message with text.
    """
    if not isinstance(raw, dict) or raw.get("role") not in (
        "system",
        "user",
        "assistant",
        "developer",
    ):
        raise RequestError(f"messages[{index}] must have a role system, user or assistant")
    content = raw.get("content")
    if isinstance(content, list):  # content parts: keep the text ones
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if not isinstance(content, str):
        raise RequestError(f"messages[{index}] must have text content")
    role: Role = "system" if raw["role"] == "developer" else raw["role"]
    return Message(role=role, content=content)


def parse_response_format(response_format: Any) -> dict[str, Any] | None:
    """The JSON schema a request's ``response_format`` asks for, or None for text.

    Raises:
        RequestError: a response format other than text, json_object or json_schema.
    """
    if not isinstance(response_format, dict) or response_format.get("type") == "text":
        return None
    if response_format.get("type") == "json_object":
        return {"type": "object"}
    if response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        if isinstance(schema, dict):
            return schema
    raise RequestError("response_format must be text, json_object or json_schema with a schema")


def _handler_for(server: OpenAICompatibleServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if self.path.rstrip("/") in ("/v1/models", "/models"):
                self._send(200, server.models())
            else:
                self._send(404, _error(f"no route {self.path}"))

        def do_POST(self) -> None:
            if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
                self._send(404, _error(f"no route {self.path}"))
                return
            try:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"null")
                self._send(200, server.chat_completion(body))
            except (json.JSONDecodeError, RequestError, BackendError) as error:
                self._send(400, _error(str(error)))
            except Exception as error:
                logger.exception("chat completion failed")
                self._send(500, _error(f"{error.__class__.__name__}: {error}", "server_error"))

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("%s - %s", self.address_string(), format % args)

    return Handler


def _error(message: str, kind: str = "invalid_request_error") -> dict[str, Any]:
    return {"error": {"message": message, "type": kind}}
