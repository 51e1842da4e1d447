"""One tuned memory answered by two engines on the same questions: ragtune's transformers path
(`MemoryModel`) and llama.cpp (`LlamaCppBackend`, as ``ragtune serve --engine llama.cpp`` runs
it) reading `ragtune export --format gguf`'s base.gguf + adapter.gguf, greedy, on 2 CPU threads
each. `extra_info` holds generated tokens/s, median latency per answer, and how many answers of
the two engines are the same.

`make bench` points it at its first trained LoCoMo memory (``RAGTUNE_BENCH_WORKSPACES``) and
asks that memory's first ``RAGTUNE_ENGINES_BENCH_QUESTIONS`` (default 40) LoCoMo questions of
categories 1–4 (``RAGTUNE_BENCH_QUESTIONS``). Without them (`make test`) it is skipped: the
export's round trip is `tests/test_export_gguf.py`.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ragtune.llm.types import Message

pytestmark = [pytest.mark.benchmark, pytest.mark.slow]

WORKSPACES = os.environ.get("RAGTUNE_BENCH_WORKSPACES", "").split()
COUNT = int(os.environ.get("RAGTUNE_ENGINES_BENCH_QUESTIONS", "40"))
MAX_TOKENS = 48
ANSWERS: dict[str, list[str]] = {}


@pytest.fixture(scope="module")
def memory(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    """The workspace, its GGUF export and the questions to ask."""
    if not WORKSPACES:
        pytest.skip("set RAGTUNE_BENCH_WORKSPACES (make bench) to compare engines on a memory")
    pytest.importorskip(
        "llama_cpp", reason="needs llama-cpp-python (pip install 'ragtune[llamacpp]')"
    )
    from ragtune.eval.evaluation import workspace_conversations
    from ragtune.eval.questions import load_questions
    from ragtune.model.gguf_export import export_gguf
    from ragtune.workspace import Workspace

    workspace = Path(WORKSPACES[0])
    questions = [
        q.question
        for q in load_questions(
            Path(os.environ["RAGTUNE_BENCH_QUESTIONS"]),
            conversations=workspace_conversations(Workspace.at(workspace)),
        )
        if q.category in (1, 2, 3, 4)
    ][:COUNT]
    folder = export_gguf(workspace, tmp_path_factory.mktemp("engines") / "gguf").folder
    return workspace, folder, questions


def answerer(engine: str, workspace: Path, folder: Path) -> Callable[[list[Message]], Any]:
    """One engine's way to answer a chat with the memory on: `MemoryModel` (transformers), or
    the `LlamaCppBackend` that ``ragtune serve --engine llama.cpp`` runs, on 2 threads."""
    if engine == "transformers":
        from ragtune.model import MemoryModel

        model = MemoryModel.from_workspace(workspace, device="cpu")
        return lambda messages: model.reply(messages, max_new_tokens=MAX_TOKENS)
    from ragtune.llm.llamacpp_backend import LlamaCppBackend
    from ragtune.llm.types import GenerationParams
    from ragtune.model.memory_model import find_adapter

    backend = LlamaCppBackend(
        folder / "base.gguf", find_adapter(workspace).base_source, name="memory", threads=2
    )
    backend.add_adapter("memory", folder / "adapter.gguf")

    def reply(messages: list[Message]) -> Any:
        with backend.active("memory"):
            return backend.chat(messages, params=GenerationParams(max_tokens=MAX_TOKENS))

    return reply


def answer_all(engine: str, memory: tuple[Path, Path, list[str]]) -> dict[str, Any]:
    from ragtune.prompts import memory_messages

    workspace, folder, questions = memory
    reply = answerer(engine, workspace, folder)
    answers, seconds, tokens = [], [], 0
    for question in questions:
        messages = memory_messages([{"role": "user", "content": question}])
        started = time.perf_counter()
        answer = reply(messages)
        seconds.append(time.perf_counter() - started)
        answers.append(answer.text.strip())
        tokens += answer.usage.completion_tokens
    ANSWERS[engine] = answers
    return {
        "questions": len(questions),
        "tokens": tokens,
        "tokens_per_s": round(tokens / sum(seconds), 1),
        "median_s": round(statistics.median(seconds), 3),
    }


@pytest.mark.parametrize("engine", ["transformers", "llama.cpp"])
def test_each_engine_answers_the_memory(
    benchmark: Any, memory: tuple[Path, Path, list[str]], engine: str
) -> None:
    result = benchmark.pedantic(answer_all, args=(engine, memory), rounds=1, iterations=1)
    if len(ANSWERS) == 2:
        result["same_as_transformers"] = sum(
            a == b for a, b in zip(ANSWERS["transformers"], ANSWERS["llama.cpp"], strict=True)
        )
    benchmark.extra_info.update(result)
    print(engine, result)
    assert all(ANSWERS[engine])
