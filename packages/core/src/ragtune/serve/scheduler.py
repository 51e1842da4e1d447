"""`Scheduler`: the one thread that generates, fed by every request, batching where it can.

PEFT activates one adapter at a time on the shared model, so generation runs on a single worker
thread. Requests wait in one queue in arrival order; the worker takes the oldest and, when it is
not streamed, the other waiting non-streamed requests for the same model (up to `batch_size`),
which it answers in one left-padded batch. A streamed request is generated alone, its pieces
handed to the request's event loop as they come; a client that goes away cancels its generation
at the next token.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ragtune.errors import ContextLengthError
from ragtune.llm.base import stripped_pieces
from ragtune.llm.types import ChatRequest, ChatResponse, GenerationParams, Message, TokenUsage
from ragtune.serve.errors import ApiError
from ragtune.serve.memories import MemoryShelf

logger = logging.getLogger(__name__)

#: A streamed event: ``("piece", text)``, ``("done", TokenUsage)`` or ``("error", exception)``.
Event = tuple[str, Any]


@dataclass
class Generation:
    """One request's generation.

    Attributes:
        adapter: The adapter to generate with (None: the base model).
        messages: The prompt (already in the target's form).
        params: How to generate.
        json_schema: The schema a non-streamed answer must match, or None.
        stream: Whether the answer is streamed (`deliver` receives its events).
        future: A non-streamed answer's `ChatResponse` (or the error).
        deliver: Where a streamed answer's events go.
        cancelled: Set when the client is gone: generation stops at the next token.
        fingerprint: What answered, set by the worker: the memory and its adapter version
            (``notes@v3``), or the base model's name; OpenAI's ``system_fingerprint``.
    """

    adapter: str | None
    messages: list[Message]
    params: GenerationParams
    json_schema: dict[str, Any] | None = None
    stream: bool = False
    future: concurrent.futures.Future[ChatResponse] = field(
        default_factory=concurrent.futures.Future
    )
    deliver: Callable[[Event], None] | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    fingerprint: str | None = None


@dataclass
class SchedulerStats:
    """What the worker has done: requests answered, batches run, the largest batch."""

    requests: int = 0
    batches: int = 0
    largest_batch: int = 0


class Scheduler:
    """The generation worker of a `MemoryShelf`.

    Args:
        shelf: The model and its memories.
        batch_size: The most non-streamed requests for one model answered together (1: none
            batched).
        max_waiting: The most requests that may wait; more are refused with 503.
    """

    def __init__(self, shelf: MemoryShelf, *, batch_size: int = 8, max_waiting: int = 256) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.shelf = shelf
        self.batch_size = batch_size
        self.max_waiting = max_waiting
        self.stats = SchedulerStats()
        self._waiting: deque[Generation] = deque()
        self._condition = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._work, name="ragtune-generate", daemon=True)

    def start(self) -> None:
        """Start the worker thread."""
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Refuse what still waits (503), cancel what runs, and end the worker."""
        with self._condition:
            self._stopping = True
            refused = list(self._waiting)
            self._waiting.clear()
            self._condition.notify_all()
        for job in refused:
            _fail(job, _shutting_down())
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def waiting(self) -> int:
        """How many requests wait for the worker."""
        return len(self._waiting)

    async def complete(self, job: Generation) -> ChatResponse:
        """The answer to a non-streamed `job`, once the worker has generated it.

        Raises:
            ApiError: the queue is full, the server is stopping, or the prompt does not fit.
        """
        self._submit(job)
        try:
            return await asyncio.wrap_future(job.future)
        except asyncio.CancelledError:
            job.cancelled.set()
            raise

    def stream(self, job: Generation) -> asyncio.Queue[Event]:
        """Queue a streamed `job`; its events arrive in the returned queue (on the calling
        event loop) as the worker generates."""
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[Event] = asyncio.Queue()

        def deliver(event: Event) -> None:
            try:
                loop.call_soon_threadsafe(events.put_nowait, event)
            except RuntimeError:  # the event loop is gone: nobody reads this stream
                job.cancelled.set()

        job.stream = True
        job.deliver = deliver
        self._submit(job)
        return events

    def _submit(self, job: Generation) -> None:
        with self._condition:
            if self._stopping:
                raise _shutting_down()
            if len(self._waiting) >= self.max_waiting:
                raise ApiError(
                    503,
                    f"The server is busy ({len(self._waiting)} requests waiting); retry later.",
                    kind="server_error",
                    code="server_busy",
                )
            self._waiting.append(job)
            self._condition.notify()

    def _next(self) -> list[Generation] | None:
        with self._condition:
            while not self._waiting and not self._stopping:
                self._condition.wait()
            if self._stopping:
                return None
            first = self._waiting.popleft()
            batch = [first]
            if not first.stream:
                for job in list(self._waiting):
                    if len(batch) >= self.batch_size:
                        break
                    if not job.stream and job.adapter == first.adapter:
                        self._waiting.remove(job)
                        batch.append(job)
            return batch

    def _work(self) -> None:
        while (batch := self._next()) is not None:
            batch = [job for job in batch if not job.cancelled.is_set()]
            if not batch:
                continue
            fingerprint = self.shelf.follow(batch[0].adapter)
            for job in batch:
                job.fingerprint = fingerprint
            try:
                with self.shelf.active(batch[0].adapter):
                    if batch[0].stream:
                        self._stream(batch[0])
                    else:
                        self._answer(batch)
            except ContextLengthError as error:  # the client's error: no traceback logged
                for job in batch:
                    _fail(job, error)
            except Exception as error:  # each request gets the error; the worker goes on
                logger.exception("generation failed")
                for job in batch:
                    _fail(job, error)
            self.stats.requests += len(batch)
            self.stats.batches += 1
            self.stats.largest_batch = max(self.stats.largest_batch, len(batch))

    def _answer(self, batch: list[Generation]) -> None:
        fitting = []
        for job in batch:
            try:
                self._check_fits(job)
            except ContextLengthError as error:
                _fail(job, error)
            else:
                fitting.append(job)
        if not fitting:
            return
        requests = [ChatRequest(job.messages, job.params, job.json_schema) for job in fitting]
        responses = self.shelf.backend.chat_batch(requests)
        for job, response in zip(fitting, responses, strict=True):
            if not job.future.done():
                job.future.set_result(response)

    def _stream(self, job: Generation) -> None:
        assert job.deliver is not None
        used: list[TokenUsage] = []
        pieces = self.shelf.backend.stream(
            job.messages, job.params, on_usage=used.append, cancelled=job.cancelled.is_set
        )
        for piece in stripped_pieces(pieces):
            job.deliver(("piece", piece))
        job.deliver(("done", used[0] if used else TokenUsage()))

    def _check_fits(self, job: Generation) -> None:
        backend = self.shelf.backend
        prompt = backend.render_prompt(job.messages)
        tokens = len(backend.tokenizer(prompt, add_special_tokens=False)["input_ids"])
        backend.check_fits(tokens, job.params.max_tokens)


def _fail(job: Generation, error: BaseException) -> None:
    if job.stream:
        if job.deliver is not None:
            job.deliver(("error", error))
    elif not job.future.done():
        job.future.set_exception(error)


def _shutting_down() -> ApiError:
    return ApiError(
        503, "The server is shutting down; retry later.", kind="server_error", code="shutting_down"
    )
