"""`CachedChatBackend`: an on-disk (SQLite) response cache in front of any `ChatBackend`.

Keys are a hash of the backend's fingerprint, the messages, the decoding parameters and the JSON
schema, so re-running a stage with unchanged inputs makes zero model calls.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ragtune.hashing import canonical_json, content_hash
from ragtune.llm.base import chat_one
from ragtune.llm.types import (
    BackendStats,
    ChatBackend,
    ChatRequest,
    ChatResponse,
    GenerationParams,
    Message,
    TokenUsage,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    request TEXT NOT NULL,
    response TEXT NOT NULL,
    created REAL NOT NULL
)
"""


class CachedChatBackend:
    """A `ChatBackend` that answers repeated requests from a SQLite file.

    Args:
        backend: The backend that answers what the cache does not hold.
        path: The SQLite file (a workspace's `cache/llm.sqlite`); created when the first
            answer is stored (a run whose teacher never answers leaves no file behind).

    Attributes:
        hits: Requests answered from the cache so far.
        misses: Requests passed to `backend` so far.
    """

    def __init__(self, backend: ChatBackend, path: str | Path) -> None:
        self.backend = backend
        self.path = Path(path)
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _connection(self, *, create: bool) -> sqlite3.Connection | None:
        """The open SQLite file; None when it does not exist and `create` is False."""
        if self._db is None:
            if not create and not self.path.is_file():
                return None
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False)
            with self._db:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute(_SCHEMA)
        return self._db

    @property
    def model_name(self) -> str:
        """The wrapped backend's model name."""
        return self.backend.model_name

    @property
    def fingerprint(self) -> str:
        """The wrapped backend's fingerprint."""
        return self.backend.fingerprint

    @property
    def stats(self) -> BackendStats:
        """The wrapped backend's stats: what the model really did (cache hits excluded)."""
        return self.backend.stats

    def close(self) -> None:
        """Close the SQLite file."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def key(self, request: ChatRequest) -> str:
        """The cache key of `request` for this backend."""
        return content_hash(
            canonical_json(
                {
                    "model": self.backend.fingerprint,
                    "messages": [dict(m) for m in request.messages],
                    "params": dataclasses.asdict(request.params),
                    "schema": request.json_schema,
                }
            ),
            length=64,
        )

    def chat(
        self,
        messages: Sequence[Message],
        *,
        params: GenerationParams | None = None,
        json_schema: Mapping[str, Any] | None = None,
    ) -> ChatResponse:
        """Answer one chat, from the cache if it holds the answer; see `ChatBackend.chat`."""
        return chat_one(self, messages, params, json_schema)

    def chat_batch(
        self, requests: Sequence[ChatRequest], *, progress: bool = False
    ) -> list[ChatResponse]:
        """Answer many chats: cached ones from the file, the rest from the backend."""
        keys = [self.key(request) for request in requests]
        found = self._lookup(keys)
        # Each distinct missing request goes to the model once, however often the batch holds it.
        missing: dict[str, int] = {}
        for index, key in enumerate(keys):
            if key not in found:
                missing.setdefault(key, index)
        answers = self.backend.chat_batch(
            [requests[i] for i in missing.values()], progress=progress
        )
        fresh = dict(zip(missing, answers, strict=True))
        self._store([(key, requests[missing[key]], answer) for key, answer in fresh.items()])
        with self._lock:
            self.hits += len(requests) - len(fresh)
            self.misses += len(fresh)
        return [fresh.get(key) or found[key] for key in keys]

    def _lookup(self, keys: list[str]) -> dict[str, ChatResponse]:
        found: dict[str, ChatResponse] = {}
        unique = list(dict.fromkeys(keys))
        with self._lock:
            db = self._connection(create=False)
            if db is None:
                return found
            for start in range(0, len(unique), 500):
                chunk = unique[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = db.execute(
                    f"SELECT key, response FROM responses WHERE key IN ({marks})", chunk
                ).fetchall()
                for key, text in rows:
                    found[key] = _response_from_json(text)
        return found

    def _store(self, entries: list[tuple[str, ChatRequest, ChatResponse]]) -> None:
        if not entries:
            return
        rows = [
            (
                key,
                answer.model,
                canonical_json(
                    {
                        "messages": [dict(m) for m in request.messages],
                        "params": dataclasses.asdict(request.params),
                        "schema": request.json_schema,
                    }
                ),
                _response_to_json(answer),
                time.time(),
            )
            for key, request, answer in entries
        ]
        with self._lock:
            db = self._connection(create=True)
            assert db is not None
            with db:
                db.executemany("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?)", rows)


def _response_to_json(response: ChatResponse) -> str:
    record = dataclasses.asdict(response)
    record.pop("cached")
    return json.dumps(record, ensure_ascii=False)


def _response_from_json(text: str) -> ChatResponse:
    record = json.loads(text)
    usage = TokenUsage(**record.pop("usage"))
    return ChatResponse(usage=usage, cached=True, **record)


def purge_responses(path: str | Path, mentions: Sequence[str]) -> int:
    """Delete every cached request and response that mentions one of `mentions` (compared in
    the decoded messages, so quotes and line breaks match as written), then compact the file so
    that nothing of them is left on disk. Returns how many responses were deleted (0 when the
    file does not exist).

    This is how `ragtune forget` removes a forgotten document's text from the teacher's cache.
    """
    path = Path(path)
    wanted = [text for text in mentions if text]
    if not path.is_file() or not wanted:
        return 0
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA secure_delete=ON")  # deleted rows are overwritten, not just unlinked
        doomed = []
        for key, request, response in db.execute("SELECT key, request, response FROM responses"):
            text = "\n".join(_strings(json.loads(request)) + _strings(json.loads(response)))
            if any(mention in text for mention in wanted):
                doomed.append((key,))
        with db:
            db.executemany("DELETE FROM responses WHERE key = ?", doomed)
        if doomed:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            db.execute("VACUUM")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    return len(doomed)


def _strings(value: Any) -> list[str]:
    """Every string inside a JSON value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []
