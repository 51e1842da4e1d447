"""Helpers shared by several test modules (imported as `support`; tests/ is on sys.path)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from ragtune.llm import BaseChatBackend, ChatRequest, Completion


def write(path: Path, text: str | bytes) -> Path:
    """Write `text` (UTF-8) or bytes to `path`, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def minimal_locomo_record(sample_id: str = "conv-x") -> dict[str, Any]:
    """A small valid LoCoMo conversation: two sessions of Ann and Bob."""
    return {
        "sample_id": sample_id,
        "conversation": {
            "speaker_a": "Ann",
            "speaker_b": "Bob",
            "session_1_date_time": "9:00 am on 1 January, 2024",
            "session_1": [
                {"speaker": "Ann", "dia_id": "D1:1", "text": "Hi Bob."},
                {"speaker": "Bob", "dia_id": "D1:2", "text": "Hi Ann."},
            ],
            "session_2_date_time": "10:30 pm on 2 February, 2024",
            "session_2": [
                {"speaker": "Bob", "dia_id": "D2:1", "text": "Back again."},
                {"speaker": "Ann", "dia_id": "D2:2", "text": "Welcome."},
                {"speaker": "Bob", "dia_id": "D2:3", "text": "Thanks."},
            ],
        },
    }


class ScriptedChatBackend(BaseChatBackend):
    """A scripted test double: `_complete` returns prepared answer texts instead of generating.

    A random tiny model cannot write valid JSON, so tests of parsed structured answers need a
    backend whose answers are known in advance. `answers` is one text for every request, or
    texts scripted per request, keyed by the first paragraph of the request's first message;
    each `_complete` call takes the next answer of each request in it (the last one repeats).
    Every batch it receives is recorded in `calls`.

    Args:
        answers: One answer for all requests, or a list of answers per request key.
        native: Whether it claims to enforce JSON schemas itself (`native_json_schema`).
        structured_retries: See `BaseChatBackend`.
    """

    def __init__(
        self,
        answers: str | dict[str, list[str]],
        *,
        native: bool = False,
        structured_retries: int = 2,
    ) -> None:
        super().__init__(structured_retries=structured_retries)
        self.native_json_schema = native  # type: ignore[misc]
        self._answers = (
            answers if isinstance(answers, str) else {k: list(v) for k, v in answers.items()}
        )
        self.calls: list[list[ChatRequest]] = []

    @property
    def model_name(self) -> str:
        return "scripted"

    @property
    def fingerprint(self) -> str:
        return "scripted:test"

    @property
    def received(self) -> list[ChatRequest]:
        """Every request it was asked to complete, in order."""
        return [request for batch in self.calls for request in batch]

    def _complete(self, requests: Sequence[ChatRequest], *, progress: bool) -> list[Completion]:
        self.calls.append(list(requests))
        return [self._answer(request) for request in requests]

    def _answer(self, request: ChatRequest) -> Completion:
        if isinstance(self._answers, str):
            text = self._answers
        else:
            answers = self._answers[request.messages[0]["content"].split("\n\n")[0]]
            text = answers.pop(0) if len(answers) > 1 else answers[0]
        return Completion(
            text=text,
            prompt_tokens=10 * len(request.messages),
            completion_tokens=len(text),
            finish_reason="stop",
        )


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


#: Capability gate for tests that need a CUDA GPU (marked `gpu` as well).
requires_gpu = pytest.mark.skipif(
    not _cuda_available(), reason="needs a CUDA GPU; this machine has none"
)
