"""The clients people point at an OpenAI-compatible server, pointed at `ragtune serve` on
loopback (the tiny memories of `serve_support`): LangChain's `ChatOpenAI`, LlamaIndex's
`OpenAILike` and `curl`, plain and streamed. Each gets the answer the official `openai` client
gets from the same memory."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from serve_support import ADMIN_KEY, ALICE_KEY, Served, serving
from tiny_notes import QUESTION

MAX_TOKENS = 12


@pytest.fixture(scope="module")
def served(tiny_notes_memory: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(tiny_notes_memory, tmp_path_factory.mktemp("serve-clients")) as running:
        yield running


@pytest.fixture(scope="module")
def expected(served: Served) -> dict[str, str]:
    """What the official client gets from each memory."""
    answers = {}
    for model in ("alice", "bob"):
        completion = served.client().chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": QUESTION}],
            max_tokens=MAX_TOKENS,
            temperature=0,
        )
        answers[model] = completion.choices[0].message.content or ""
    assert answers["alice"] != answers["bob"]
    return answers


def test_langchain_chat_openai_answers_from_the_memory(
    served: Served, expected: dict[str, str]
) -> None:
    from langchain_openai import ChatOpenAI

    for model, key in (("alice", ALICE_KEY), ("bob", ADMIN_KEY)):
        chat = ChatOpenAI(
            model=model,
            base_url=served.url,
            api_key=key,  # type: ignore[arg-type]
            temperature=0,
            max_completion_tokens=MAX_TOKENS,
            max_retries=0,
        )
        reply = chat.invoke(QUESTION)
        assert reply.content == expected[model]
        assert reply.usage_metadata is not None and reply.usage_metadata["output_tokens"] > 0
        streamed = list(chat.stream(QUESTION))
        assert "".join(str(chunk.content) for chunk in streamed) == expected[model]


def test_langchain_chat_openai_with_a_key_for_another_memory_fails(served: Served) -> None:
    import openai
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(model="bob", base_url=served.url, api_key=ALICE_KEY, max_retries=0)  # type: ignore[arg-type]
    with pytest.raises(openai.NotFoundError):
        chat.invoke(QUESTION)


def test_llamaindex_openai_like_answers_from_the_memory(
    served: Served, expected: dict[str, str]
) -> None:
    from llama_index.core.llms import ChatMessage
    from llama_index.llms.openai_like import OpenAILike

    llm = OpenAILike(
        model="alice",
        api_base=served.url,
        api_key=ALICE_KEY,
        is_chat_model=True,
        context_window=2048,
        max_tokens=MAX_TOKENS,
        temperature=0,
        max_retries=0,
    )
    message = [ChatMessage(role="user", content=QUESTION)]
    assert llm.chat(message).message.content == expected["alice"]
    pieces = [chunk.delta or "" for chunk in llm.stream_chat(message)]
    assert "".join(pieces) == expected["alice"]
    assert llm.complete(QUESTION).text == expected["alice"]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_gets_an_answer_and_a_stream(served: Served, expected: dict[str, str]) -> None:
    body = {
        "model": "alice",
        "messages": [{"role": "user", "content": QUESTION}],
        "max_tokens": MAX_TOKENS,
        "temperature": 0,
    }

    def curl(payload: dict[str, object], *extra: str) -> str:
        run = subprocess.run(
            [
                "curl",
                "-sS",
                *extra,
                f"{served.url}/chat/completions",
                "-H",
                "Content-Type: application/json",
                "-H",
                f"Authorization: Bearer {ALICE_KEY}",
                "-d",
                json.dumps(payload),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return run.stdout

    answer = json.loads(curl(body))
    assert answer["choices"][0]["message"]["content"] == expected["alice"]
    events = [line for line in curl({**body, "stream": True}, "-N").splitlines() if line]
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == expected["alice"]
    refused = json.loads(curl({**body, "model": "bob"}))
    assert refused["error"]["code"] == "model_not_found"
