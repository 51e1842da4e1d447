"""`OpenAIBackend`: any OpenAI-compatible chat completions endpoint (OpenAI, vLLM, Ollama,
llama.cpp server, ...), with concurrent batches and retries."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ragtune.errors import BackendError
from ragtune.llm.base import BaseChatBackend, Completion
from ragtune.llm.types import ChatRequest

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


class OpenAIBackend(BaseChatBackend):
    """A model served behind OpenAI's `/chat/completions` API.

    JSON schemas are sent as `response_format` (``json_schema``), which vLLM, llama.cpp server
    and OpenAI enforce; the answer is validated and repaired anyway, for servers that do not.

    Args:
        model: The model name the server knows.
        base_url: The API root, e.g. ``http://localhost:8000/v1``; default `$OPENAI_BASE_URL`,
            else OpenAI's.
        api_key: Default `$OPENAI_API_KEY`; local servers usually need none.
        timeout: Seconds to wait for one answer.
        max_retries: Retries of a request after a connection error or a 408/429/5xx status.
        concurrency: Requests in flight at once in `chat_batch`.
        structured_retries: See `BaseChatBackend`.
    """

    native_json_schema = True

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 3,
        concurrency: int = 8,
        structured_retries: int = 2,
    ) -> None:
        super().__init__(structured_retries=structured_retries)
        import httpx

        self.model = model
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip(
            "/"
        )
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.max_retries = max_retries
        self.concurrency = concurrency
        self._client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    @property
    def model_name(self) -> str:
        """The model's name, as reported in responses."""
        return self.model

    @property
    def fingerprint(self) -> str:
        """The model name and endpoint, for response cache keys."""
        return f"openai:{self.model}@{self.base_url}"

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    def _complete(self, requests: Sequence[ChatRequest], *, progress: bool) -> list[Completion]:
        from ragtune.progress import progress_bar

        if len(requests) == 1:
            return [self._post(requests[0])]
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            answers = pool.map(self._post, requests)
            return list(
                progress_bar(
                    answers, desc="generating", total=len(requests), unit="req", enabled=progress
                )
            )

    def _post(self, request: ChatRequest) -> Completion:
        body = self._body(request)
        for attempt in range(self.max_retries + 1):
            problem = self._try_post(body)
            if isinstance(problem, Completion):
                return problem
            if attempt < self.max_retries:
                time.sleep(min(0.5 * 2**attempt, 8.0))
        raise BackendError(f"{self.fingerprint}: {problem}")

    def _try_post(self, body: Mapping[str, Any]) -> Completion | str:
        """The completion, or a retryable problem; raises for problems a retry cannot fix."""
        import httpx

        try:
            response = self._client.post("/chat/completions", json=body)
        except httpx.HTTPError as error:
            return f"cannot reach the server ({error.__class__.__name__}: {error})"
        if response.status_code in _RETRY_STATUS:
            return f"the server answered {response.status_code}: {_server_message(response)}"
        if response.status_code != 200:
            raise BackendError(
                f"{self.fingerprint}: the server refused the request ({response.status_code}): "
                f"{_server_message(response)}"
            )
        try:
            payload = response.json()
        except ValueError:
            raise BackendError(
                f"{self.fingerprint}: the server's answer is not JSON: {response.text[:200]!r}"
            ) from None
        return _completion(payload, self.fingerprint)

    def _body(self, request: ChatRequest) -> dict[str, Any]:
        params = request.params
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [dict(m) for m in request.messages],
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if params.seed is not None:
            body["seed"] = params.seed
        if request.json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": dict(request.json_schema)},
            }
        return body


def _completion(payload: Any, where: str) -> Completion:
    try:
        choice = payload["choices"][0]
        text = choice["message"]["content"] or ""
        usage = payload.get("usage") or {}
        finish = choice.get("finish_reason")
    except (KeyError, IndexError, TypeError):
        raise BackendError(f"{where}: the server's answer is not a chat completion") from None
    return Completion(
        text=str(text).strip(),
        prompt_tokens=int(usage.get("prompt_tokens", 0)),
        completion_tokens=int(usage.get("completion_tokens", 0)),
        finish_reason="length" if finish == "length" else "stop",
    )


def _server_message(response: Any) -> str:
    try:
        error = response.json().get("error")
    except ValueError:
        return str(response.text[:200])
    if isinstance(error, dict):
        return str(error.get("message", error))
    return str(error or response.text[:200])
