"""The ASGI application of `ragtune serve` (Starlette): OpenAI's chat completions and models
endpoints, ``/health``, and ragtune's ``/v1/recall``.

Every refusal is an OpenAI-style JSON error (`ragtune.serve.errors`); an unexpected failure is a
500 with a generic message (the traceback goes to the server's log, never to the client).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ragtune.errors import ContextLengthError, RagtuneError
from ragtune.llm.types import ChatResponse, GenerationParams, TokenUsage
from ragtune.prompts import recall_question
from ragtune.serve.errors import ApiError, error_payload, unknown_model
from ragtune.serve.keys import OPEN, ApiKeys, Grant
from ragtune.serve.memories import MemoryShelf, Target
from ragtune.serve.requests import (
    ChatCompletionRequest,
    parse_chat_completion,
    parse_json,
    parse_recall,
)
from ragtune.serve.scheduler import Event, Generation, Scheduler

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServeSettings:
    """Limits of a server.

    Attributes:
        max_body_bytes: The largest request body accepted (413 above it).
        max_tokens_cap: The most tokens one answer may ask for (and the default).
        batch_size: The most non-streamed requests for one model generated together.
        max_waiting: The most requests waiting for generation (503 above it).
        recall_tokens: The most tokens the model writes when asked to recall.
    """

    max_body_bytes: int = 1_000_000
    max_tokens_cap: int = 512
    batch_size: int = 8
    max_waiting: int = 256
    recall_tokens: int = 256


def create_app(
    shelf: MemoryShelf, *, keys: ApiKeys | None = None, settings: ServeSettings | None = None
) -> Starlette:
    """The server's ASGI app over `shelf`'s memories; requests need one of `keys` (None: an
    open server). Its lifespan starts and stops the generation worker."""
    settings = settings or ServeSettings()
    scheduler = Scheduler(shelf, batch_size=settings.batch_size, max_waiting=settings.max_waiting)
    created = int(time.time())

    def authorize(request: Request) -> Grant:
        if keys is None:
            return OPEN
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(
                401,
                "Missing API key: send it as `Authorization: Bearer <key>`.",
                code="invalid_api_key",
            )
        grant = keys.grant_for(token.strip())
        if grant is None:
            raise ApiError(401, "Incorrect API key provided.", code="invalid_api_key")
        return grant

    def target_for(model: str, grant: Grant) -> Target:
        target = shelf.target(model)
        if target is None or (target.memory is not None and not grant.allows(model)):
            raise unknown_model(model)
        return target

    def model_card(model: str) -> dict[str, Any]:
        return {"id": model, "object": "model", "created": created, "owned_by": "ragtune"}

    async def body_of(request: Request) -> dict[str, Any]:
        limit = settings.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _too_large(limit)
        chunks = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
        return parse_json(b"".join(chunks))

    async def health(request: Request) -> Response:
        return JSONResponse(
            {"status": "ok", "memories": len(shelf.memories), "waiting": scheduler.waiting}
        )

    async def list_models(request: Request) -> Response:
        grant = authorize(request)
        ids = shelf.model_ids(grant.allows)
        return JSONResponse({"object": "list", "data": [model_card(i) for i in ids]})

    async def get_model(request: Request) -> Response:
        grant = authorize(request)
        model = request.path_params["model"]
        target_for(model, grant)
        return JSONResponse(model_card(model))

    async def chat_completions(request: Request) -> Response:
        grant = authorize(request)
        body = await body_of(request)
        asked = parse_chat_completion(body, max_tokens_cap=settings.max_tokens_cap)
        target = target_for(asked.model, grant)
        messages = await run_in_threadpool(target.prompt, asked.messages)
        job = Generation(target.adapter, messages, asked.params, asked.json_schema)
        reply_id = f"chatcmpl-{uuid.uuid4().hex}"
        if not asked.stream:
            response = await scheduler.complete(job)
            return JSONResponse(_completion(reply_id, asked.model, response, job.fingerprint))
        events = scheduler.stream(job)
        first = await events.get()
        if first[0] == "error":
            job.cancelled.set()
            raise first[1]
        return StreamingResponse(
            _chunks(reply_id, asked, first, events, job),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def recall(request: Request) -> Response:
        grant = authorize(request)
        body = await body_of(request)
        asked = parse_recall(body)
        target = target_for(asked.model, grant)
        if target.memory is None:
            raise ApiError(
                400,
                f"`{asked.model}` is the base model, which holds no memory to recall from.",
                param="model",
            )
        memory = target.memory
        job = Generation(
            memory.adapter,
            Target(memory.name, memory).prompt(
                [{"role": "user", "content": recall_question(asked.query)}]
            ),
            GenerationParams(max_tokens=settings.recall_tokens),
        )
        response = await scheduler.complete(job)
        found = await run_in_threadpool(memory.sources.find, response.text, asked.query, asked.k)
        return JSONResponse(
            {
                "object": "list",
                "model": memory.name,
                "recalled": response.text,
                "data": [
                    {"object": "recollection", "text": item.text, "score": item.score}
                    | item.metadata()
                    for item in found
                ],
                "usage": _usage(response.usage),
            }
        )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        scheduler.start()
        try:
            yield
        finally:
            scheduler.stop()
            shelf.close()

    app = Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/v1/models/{model:path}", get_model, methods=["GET"]),
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/recall", recall, methods=["POST"]),
        ],
        exception_handlers={
            ApiError: _api_error,
            ContextLengthError: _context_length_error,
            HTTPException: _http_error,
            Exception: _server_error,
        },
        lifespan=lifespan,
    )
    app.state.scheduler = scheduler
    app.state.shelf = shelf
    return app


def _too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        f"The request body is larger than this server's limit of {limit:,} bytes.",
        code="request_too_large",
    )


def _usage(usage: TokenUsage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def _completion(
    reply_id: str, model: str, response: ChatResponse, fingerprint: str | None
) -> dict[str, Any]:
    if response.error is not None:
        raise ApiError(
            500,
            f"The model did not answer with JSON matching the schema: {response.error}",
            kind="server_error",
            code="schema_not_matched",
        )
    return {
        "id": reply_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": fingerprint,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": response.text, "refusal": None},
                "finish_reason": response.finish_reason,
                "logprobs": None,
            }
        ],
        "usage": _usage(response.usage),
    }


async def _chunks(
    reply_id: str,
    asked: ChatCompletionRequest,
    first: Event,
    events: Any,
    job: Generation,
) -> AsyncIterator[str]:
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        body: dict[str, Any] = {
            "id": reply_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": asked.model,
            "system_fingerprint": job.fingerprint,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }
        if asked.include_usage:
            body["usage"] = None
        return f"data: {json.dumps(body)}\n\n"

    finished = False
    try:
        yield chunk({"role": "assistant", "content": ""})
        event = first
        while True:
            kind, value = event
            if kind == "piece":
                yield chunk({"content": value})
            elif kind == "done":
                finished = True
                reason = "length" if value.completion_tokens >= asked.params.max_tokens else "stop"
                yield chunk({}, reason)
                if asked.include_usage:
                    last = {
                        "id": reply_id,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": asked.model,
                        "system_fingerprint": job.fingerprint,
                        "choices": [],
                        "usage": _usage(value),
                    }
                    yield f"data: {json.dumps(last)}\n\n"
                yield "data: [DONE]\n\n"
                return
            else:  # an error after the stream began: OpenAI's clients raise it
                finished = True
                logger.error("stream failed: %s", value)
                payload = error_payload(
                    "The server had an error while generating the answer.", "server_error"
                )
                yield f"data: {json.dumps(payload)}\n\n"
                return
            event = await events.get()
    finally:
        if not finished:  # the client went away: stop generating for it
            job.cancelled.set()


async def _api_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, ApiError)
    return JSONResponse(error.payload(), status_code=error.status)


async def _context_length_error(request: Request, error: Exception) -> Response:
    return JSONResponse(
        error_payload(
            str(error), "invalid_request_error", code="context_length_exceeded", param="messages"
        ),
        status_code=400,
    )


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    message = {404: f"No route {request.url.path}.", 405: "Method not allowed."}.get(
        error.status_code, str(error.detail)
    )
    return JSONResponse(
        error_payload(message, "invalid_request_error"),
        status_code=error.status_code,
        headers=getattr(error, "headers", None),
    )


async def _server_error(request: Request, error: Exception) -> Response:
    if isinstance(error, RagtuneError):
        logger.error("%s %s: %s", request.method, request.url.path, error)
    else:
        logger.exception("%s %s failed", request.method, request.url.path)
    return JSONResponse(
        error_payload("The server had an error while processing your request.", "server_error"),
        status_code=500,
    )
