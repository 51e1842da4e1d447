"""`ragtune serve --engine llama.cpp`: the embedded model's GGUF run by llama.cpp with each
memory's adapter as a LoRA GGUF, switched per request, behind the same OpenAI-compatible API —
answering as the transformers path does, streaming, and refusing what it cannot serve."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from notes import QUESTION
from ragtune.model import MemoryModel
from support import error_line, memory_questions, run_ragtune

TEN = 10


@pytest.fixture(scope="module")
def served(embedded_memory: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    pytest.importorskip(
        "llama_cpp", reason="needs llama-cpp-python (pip install 'ragtune[llamacpp]')"
    )
    from ragtune.serve import MemoryShelf, ServeSettings, create_app
    from ragtune.serve.background import BackgroundServer

    root = tmp_path_factory.mktemp("llamacpp-serve")
    notes = shutil.copytree(embedded_memory, root / "notes")
    other = shutil.copytree(embedded_memory, root / "other")
    shelf = MemoryShelf.load([notes, other], device="cpu", engine="llama.cpp")
    app = create_app(shelf, settings=ServeSettings(max_tokens_cap=64))
    with BackgroundServer(app) as server:
        yield server, shelf


def ask(client: openai.OpenAI, model: str, question: str) -> str:
    reply = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": question}],
        max_tokens=32,
        temperature=0,
    )
    return str(reply.choices[0].message.content)


@pytest.mark.slow
def test_llama_cpp_answers_each_memory_as_the_transformers_path(
    served: Any, embedded_memory: Path
) -> None:
    server, shelf = served
    client = openai.OpenAI(base_url=server.base_url, api_key="none", max_retries=0)
    model = MemoryModel.from_workspace(embedded_memory, device="cpu", dtype="float32")
    questions = memory_questions(embedded_memory, TEN)
    reference = [model.answer(q, max_new_tokens=32) for q in questions]
    first = [ask(client, "notes", q) for q in questions]
    base = [ask(client, shelf.base_name, q) for q in questions]
    again = [ask(client, "other", q) for q in questions]  # the same adapter, switched back on
    # llama.cpp computes on the Q4_1 blocks, transformers on their float32 dequantization: a
    # near tie may go the other way, most answers may not
    assert sum(a == b for a, b in zip(first, reference, strict=True)) >= TEN // 2 + 1
    assert again == first  # switching adapters leaves nothing of the previous one behind
    assert base != first  # the base model is the base model
    assert all(m.adapter_bytes > 1_000_000 for m in shelf.memories.values())


@pytest.mark.slow
def test_llama_cpp_streams_the_same_answer_with_usage(served: Any) -> None:
    server, _ = served
    client = openai.OpenAI(base_url=server.base_url, api_key="none", max_retries=0)
    chunks = list(
        client.chat.completions.create(
            model="notes",
            messages=[{"role": "user", "content": QUESTION}],
            max_tokens=32,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == ask(client, "notes", QUESTION)
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens >= 1 and usage.prompt_tokens > 5


@pytest.mark.slow
def test_a_prompt_over_llama_cpps_context_is_a_400(served: Any) -> None:
    server, _ = served
    client = openai.OpenAI(base_url=server.base_url, api_key="none", max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:
        ask(client, "notes", "kayak " * 3000)
    assert caught.value.code == "context_length_exceeded"


def test_the_llama_cpp_engine_refuses_a_base_other_than_the_embedded_model(
    tiny_notes_memory: Path,
) -> None:
    pytest.importorskip(
        "llama_cpp", reason="needs llama-cpp-python (pip install 'ragtune[llamacpp]')"
    )
    line = error_line(run_ragtune("serve", tiny_notes_memory, "--engine", "llama.cpp"))
    assert "the llama.cpp engine serves memories of the embedded base model" in line
