"""`ragtune serve` in process: two tiny memories (the shared tiny adapter as ``alice`` and a copy
with its LoRA B scaled up as ``bob``, so the two answer differently) on one tiny base model,
behind a real uvicorn server on loopback, asked with the official `openai` client and with raw
HTTP (httpx) for every error a client can cause.

Whatever the tiny model writes, the server must give exactly what the same model gives in
process: greedy answers equal `MemoryModel`'s (and the base model's with the adapter off),
streamed pieces join to the non-streamed answer with the same usage, and concurrent requests
(batched) get the answers they get alone.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from ragtune.model import MemoryModel
from ragtune.serve import ApiKeys
from serve_support import ADMIN_KEY, ALICE_KEY, CAP, Served, serving
from tiny_notes import QUESTION

MAX_TOKENS = 16
QUESTIONS = [QUESTION, "Where did Rex go camping?", "What is fact 4?", "Who adopted a dog?"]


@pytest.fixture(scope="module")
def served(tiny_notes_memory: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(tiny_notes_memory, tmp_path_factory.mktemp("serve")) as running:
        yield running


@pytest.fixture(scope="module")
def alone(served: Served) -> dict[str, MemoryModel]:
    """Each memory loaded on its own, as `ragtune ask` loads it."""
    return {
        "alice": MemoryModel.from_workspace(served.alice, device="cpu"),
        "bob": MemoryModel.from_workspace(served.bob, device="cpu"),
    }


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def base_answer(model: MemoryModel, question: str) -> str:
    """The base model's greedy answer: the same weights with the adapter off."""
    from ragtune.llm.types import GenerationParams, Message

    with model.backend.model.disable_adapter():
        response = model.backend.chat(
            [Message(role="user", content=question)],
            params=GenerationParams(max_tokens=MAX_TOKENS),
        )
    return str(response.text)


# -- one base model, many memories -------------------------------------------------------------


def test_every_memory_is_an_adapter_on_one_base_model(served: Served, tiny_model_dir: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = served.shelf.backend.model
    assert isinstance(model, PeftModel)
    assert set(model.peft_config) == {"memory0", "memory1"}
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    base_parameters = sum(p.numel() for p in base.parameters())
    shared = sum(p.numel() for n, p in model.named_parameters() if "lora_" not in n)
    assert shared == base_parameters  # the base weights are there once
    memories = served.shelf.memories
    assert list(memories) == ["alice", "bob"]
    assert memories["alice"].adapter_bytes == memories["bob"].adapter_bytes > 0
    assert memories["alice"].resident_bytes is None  # loaded with the base model
    assert memories["bob"].resident_bytes is not None


def test_models_lists_what_the_key_may_read(served: Served, tiny_model_dir: Path) -> None:
    base = tiny_model_dir.name
    every = [m.id for m in served.client(ADMIN_KEY).models.list()]
    assert every == [base, "alice", "alice:hybrid", "bob", "bob:hybrid"]
    assert [m.id for m in served.client(ALICE_KEY).models.list()] == [
        base,
        "alice",
        "alice:hybrid",
    ]
    assert served.client(ALICE_KEY).models.retrieve("alice").id == "alice"
    with pytest.raises(openai.NotFoundError):
        served.client(ALICE_KEY).models.retrieve("bob")


# -- answers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["alice", "bob"])
def test_a_memory_answers_as_it_does_in_process(
    served: Served, alone: dict[str, MemoryModel], name: str
) -> None:
    completion = served.client().chat.completions.create(
        model=name, messages=user(QUESTION), max_tokens=MAX_TOKENS, temperature=0
    )
    expected = alone[name].reply(user(QUESTION), max_new_tokens=MAX_TOKENS)  # type: ignore[arg-type]
    assert completion.model == name
    assert completion.choices[0].message.content == expected.text
    assert completion.choices[0].message.role == "assistant"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == expected.usage.prompt_tokens
    assert completion.usage.completion_tokens == expected.usage.completion_tokens
    assert completion.choices[0].finish_reason in ("stop", "length")


def test_the_memories_and_the_base_model_answer_differently(
    served: Served, alone: dict[str, MemoryModel], tiny_model_dir: Path
) -> None:
    client = served.client()
    answers = {
        model: client.chat.completions.create(
            model=model, messages=user(QUESTION), max_tokens=MAX_TOKENS, temperature=0
        )
        .choices[0]
        .message.content
        for model in ("alice", "bob", tiny_model_dir.name)
    }
    assert answers[tiny_model_dir.name] == base_answer(alone["alice"], QUESTION)
    assert len(set(answers.values())) == 3, answers


def test_a_stream_joins_to_the_answer_with_its_usage(served: Served) -> None:
    client = served.client()
    whole = client.chat.completions.create(
        model="alice", messages=user(QUESTION), max_tokens=MAX_TOKENS, temperature=0
    )
    chunks = list(
        client.chat.completions.create(
            model="alice",
            messages=user(QUESTION),
            max_tokens=MAX_TOKENS,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finished = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finished[-1] == whole.choices[0].finish_reason
    assert all(f is None for f in finished[:-1])
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens  # type: ignore[union-attr]
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens  # type: ignore[union-attr]
    assert len({c.id for c in chunks}) == 1


def test_a_stream_without_usage_ends_with_done(served: Served) -> None:
    with httpx.stream(
        "POST",
        f"{served.url}/chat/completions",
        json={"model": "bob", "messages": user(QUESTION), "max_tokens": 4, "stream": True},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        timeout=60,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line]
    assert events[-1] == "data: [DONE]"
    bodies = [json.loads(line.removeprefix("data: ")) for line in events[:-1]]
    assert all("usage" not in body for body in bodies)
    assert bodies[-1]["choices"][0]["finish_reason"] in ("stop", "length")


def test_hybrid_mode_puts_retrieved_passages_before_the_question(served: Served) -> None:
    client = served.client()
    native = client.chat.completions.create(
        model="alice", messages=user(QUESTION), max_tokens=4, temperature=0
    )
    hybrid = client.chat.completions.create(
        model="alice:hybrid", messages=user(QUESTION), max_tokens=4, temperature=0
    )
    assert hybrid.model == "alice:hybrid"
    assert hybrid.usage is not None and native.usage is not None
    # Every text unit of the tiny memory (4 < k = 5) is in the prompt.
    assert hybrid.usage.prompt_tokens > native.usage.prompt_tokens + 40


def test_recall_returns_the_source_passages_the_model_recalls(
    served: Served, alone: dict[str, MemoryModel]
) -> None:
    response = served.post("/recall", {"model": "alice", "query": QUESTION, "k": 2})
    assert response.status_code == 200, response.text
    body = response.json()
    expected = alone["alice"].recall(QUESTION, 2)
    assert body["model"] == "alice"
    assert body["recalled"] == expected[0].recalled
    assert [item["unit_id"] for item in body["data"]] == [r.unit_id for r in expected]
    first = body["data"][0]
    assert first["text"] == expected[0].text
    assert first["source"] == expected[0].source
    assert first["score"] == expected[0].score
    assert body["usage"]["completion_tokens"] > 0


def test_concurrent_requests_get_the_answers_they_get_alone(served: Served) -> None:
    """Twelve clients at once, on three models: each answer is the one that request gets when
    it is alone, and the worker batched some of them."""
    models = ["alice", "bob", served.shelf.base_name]
    asks = [(models[i % 3], QUESTIONS[i % len(QUESTIONS)]) for i in range(12)]
    client = served.client()
    single = {
        ask: client.chat.completions.create(
            model=ask[0], messages=user(ask[1]), max_tokens=MAX_TOKENS, temperature=0
        )
        .choices[0]
        .message.content
        for ask in set(asks)
    }
    before = served.shelf_stats()

    async def all_at_once() -> list[str | None]:
        together = openai.AsyncOpenAI(base_url=served.url, api_key=ADMIN_KEY, max_retries=0)
        replies = await asyncio.gather(
            *(
                together.chat.completions.create(
                    model=model, messages=user(question), max_tokens=MAX_TOKENS, temperature=0
                )
                for model, question in asks
            )
        )
        await together.close()
        return [reply.choices[0].message.content for reply in replies]

    answers = asyncio.run(all_at_once())
    assert answers == [single[ask] for ask in asks]
    after = served.shelf_stats()
    assert after.requests - before.requests == 12
    assert after.batches - before.batches < 12  # some were answered together


# -- who may read which memory -------------------------------------------------------------------


def test_a_request_without_a_key_or_with_a_wrong_one_is_401(served: Served) -> None:
    body = {"model": "alice", "messages": user(QUESTION), "max_tokens": 2}
    missing = served.post("/chat/completions", body, key=None)
    wrong = served.post("/chat/completions", body, key="sk-alice-0123456789abcdeX")
    assert missing.status_code == wrong.status_code == 401
    assert missing.json()["error"]["code"] == wrong.json()["error"]["code"] == "invalid_api_key"
    assert "sk-alice" not in wrong.text  # a key is never echoed
    with pytest.raises(openai.AuthenticationError):
        served.client("sk-nobody").chat.completions.create(
            model="alice", messages=user(QUESTION), max_tokens=2
        )
    assert served.post("/models", {}, key=None).status_code in (401, 405)
    assert httpx.get(f"{served.url}/models", timeout=10).status_code == 401


def test_a_memory_the_key_does_not_hold_is_404_like_a_missing_one(served: Served) -> None:
    """Alice's key may not read bob: the answer is the one a memory that does not exist gets,
    so the key learns nothing about bob."""
    asks = {}
    for model in ("bob", "bob:hybrid", "carol"):
        response = served.post(
            "/chat/completions", {"model": model, "messages": user(QUESTION)}, key=ALICE_KEY
        )
        assert response.status_code == 404, response.text
        asks[model] = response.json()["error"]
    assert {e["code"] for e in asks.values()} == {"model_not_found"}
    assert asks["bob"]["message"].replace("bob", "carol") == asks["carol"]["message"]
    with pytest.raises(openai.NotFoundError):
        served.client(ALICE_KEY).chat.completions.create(
            model="bob", messages=user(QUESTION), max_tokens=2
        )
    assert (
        served.post("/recall", {"model": "bob", "query": QUESTION}, key=ALICE_KEY).status_code
        == 404
    )
    # Alice's key reads alice, her hybrid mode and the base model.
    for model in ("alice", "alice:hybrid", served.shelf.base_name):
        ok = served.post(
            "/chat/completions",
            {"model": model, "messages": user(QUESTION), "max_tokens": 2},
            key=ALICE_KEY,
        )
        assert ok.status_code == 200, ok.text


def test_keys_parse_grants_and_refuse_bad_lines() -> None:
    from ragtune.errors import ConfigError

    keys = ApiKeys.parse("# comment\nk1 alice bob  # two\n; k2 *", origin="env")
    alice_and_bob = keys.grant_for("k1")
    assert alice_and_bob is not None and alice_and_bob.allows("bob:hybrid")
    assert not alice_and_bob.allows("carol")
    everything = keys.grant_for("k2")
    assert everything is not None and everything.allows("carol")
    assert keys.grant_for("k3") is None and keys.grant_for("") is None
    with pytest.raises(ConfigError, match="grant 1 names no memory"):
        ApiKeys.parse("lonely-key", origin="keys.txt")
    with pytest.raises(ConfigError, match="grant 2 repeats a key") as raised:
        ApiKeys.parse("secret-1 a\nsecret-1 b", origin="keys.txt")
    assert "secret-1" not in str(raised.value)
    with pytest.raises(ConfigError, match="holds no API key"):
        ApiKeys.parse("# nothing\n", origin="keys.txt")
    with pytest.raises(ConfigError, match="does not have: carol"):
        ApiKeys.parse("k alice carol", origin="keys.txt").check_memories({"alice"})


# -- bad requests --------------------------------------------------------------------------------

GOOD = {"model": "alice", "messages": [{"role": "user", "content": QUESTION}], "max_tokens": 4}


def _with(**fields: object) -> dict[str, object]:
    return {**GOOD, **fields}


BAD_REQUESTS = {
    "not json": (b"{not json", 400, None, "not valid JSON"),
    "not an object": (b"[1, 2]", 400, None, "JSON object"),
    "no model": ({"messages": GOOD["messages"]}, 400, "model", "`model` is required"),
    "no messages": ({"model": "alice"}, 400, "messages", "`messages` must be"),
    "empty messages": (_with(messages=[]), 400, "messages", "non-empty list"),
    "bad role": (_with(messages=[{"role": "robot", "content": "x"}]), 400, "messages", "role"),
    "content not text": (_with(messages=[{"role": "user", "content": 5}]), 400, "messages", ""),
    "max_tokens over the cap": (_with(max_tokens=CAP + 1), 400, "max_tokens", f"limit of {CAP}"),
    "max_tokens zero": (_with(max_tokens=0), 400, "max_tokens", "at least 1"),
    "max_tokens text": (_with(max_tokens="10"), 400, "max_tokens", "integer"),
    "completion tokens over the cap": (
        _with(max_completion_tokens=CAP * 2),
        400,
        "max_completion_tokens",
        "limit",
    ),
    "tools": (
        _with(tools=[{"type": "function", "function": {"name": "f"}}]),
        400,
        "tools",
        "tool calls",
    ),
    "n above 1": (_with(n=2), 400, "n", "one choice"),
    "logprobs": (_with(logprobs=True), 400, "logprobs", "log-probabilities"),
    "temperature text": (_with(temperature="hot"), 400, "temperature", "number"),
    "temperature too high": (_with(temperature=7), 400, "temperature", "between"),
    "five stops": (_with(stop=["a", "b", "c", "d", "e"]), 400, "stop", "up to 4"),
    "stream not boolean": (_with(stream="yes"), 400, "stream", "true or false"),
    "schema streamed": (
        _with(stream=True, response_format={"type": "json_object"}),
        400,
        "response_format",
        "cannot be streamed",
    ),
    "unknown model": (_with(model="nobody"), 404, "model", "does not exist"),
    "prompt over the window": (
        _with(messages=[{"role": "user", "content": "word " * 3000}]),
        400,
        "messages",
        "context window",
    ),
    "streamed prompt over the window": (
        _with(messages=[{"role": "user", "content": "word " * 3000}], stream=True),
        400,
        "messages",
        "context window",
    ),
    "oversize body": (
        _with(messages=[{"role": "user", "content": "x" * 250_000}]),
        413,
        None,
        "larger than",
    ),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_a_bad_request_gets_an_openai_style_error(served: Served, case: str) -> None:
    body, status, param, message = BAD_REQUESTS[case]
    headers = {"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = httpx.post(
        f"{served.url}/chat/completions", content=content, headers=headers, timeout=60
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert message in error["message"]
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"
    assert "Traceback" not in response.text


@pytest.mark.parametrize(
    ("method", "path", "status", "body"),
    [
        ("GET", "/nothing", 404, None),
        ("GET", "/chat/completions", 405, None),
        ("POST", "/recall", 400, {"model": "alice"}),
        ("POST", "/recall", 400, {"model": "alice", "query": "q", "k": 100}),
        ("POST", "/recall", 400, {"model": "@base", "query": "q"}),
    ],
)
def test_other_refusals_are_json_errors(
    served: Served, method: str, path: str, status: int, body: dict[str, object] | None
) -> None:
    if body is not None and body.get("model") == "@base":
        body = {**body, "model": served.shelf.base_name}
    response = httpx.request(
        method,
        f"{served.url}{path}",
        json=body,
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        timeout=60,
    )
    assert response.status_code == status, response.text
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_the_server_keeps_answering_between_bad_requests(served: Served) -> None:
    """Bad requests mixed with good ones, all at once: every good one is answered."""

    async def mixed() -> list[int]:
        async with httpx.AsyncClient(
            base_url=served.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=60
        ) as client:
            bad = [
                b"{",
                json.dumps(_with(n=3)).encode(),
                json.dumps(_with(max_tokens=999)).encode(),
            ]
            requests = [
                client.post(
                    "/chat/completions",
                    content=bad[i % 3] if i % 2 else None,
                    json=None if i % 2 else GOOD,
                )
                for i in range(12)
            ]
            return [r.status_code for r in await asyncio.gather(*requests)]

    statuses = asyncio.run(mixed())
    assert statuses[0::2] == [200] * 6
    assert all(status == 400 for status in statuses[1::2])
    health = httpx.get(f"{served.url.removesuffix('/v1')}/health", timeout=10).json()
    assert health["status"] == "ok" and health["memories"] == 2


# -- adapter versions ----------------------------------------------------------------------------


def _version_from(workspace: Path, source: Path, number: int, factor: float) -> None:
    """Write version `number` of `workspace`'s adapter: the weights in `source` with LoRA B
    scaled by `factor`."""
    import json

    from safetensors.torch import load_file, save_file

    target = workspace / "adapters" / ".versions" / "default" / f"v{number}"
    shutil.copytree(source, target)
    tensors = load_file(str(target / "adapter_model.safetensors"))
    save_file(
        {n: t * factor if ".lora_B." in n else t for n, t in tensors.items()},
        str(target / "adapter_model.safetensors"),
    )
    manifest = json.loads((target / "manifest.json").read_text(encoding="utf-8"))
    manifest.update(version=number, parent=1)
    (target / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def test_a_new_adapter_version_answers_the_next_request_and_says_so(
    tiny_notes_memory: Path, tmp_path: Path
) -> None:
    from ragtune.adapters import AdapterVersions
    from ragtune.workspace import Workspace

    with serving(tiny_notes_memory, tmp_path) as running:
        client = running.client()

        def ask(model: str) -> tuple[str, str | None]:
            reply = client.chat.completions.create(
                model=model, messages=user(QUESTION), max_tokens=MAX_TOKENS, temperature=0
            )
            return str(reply.choices[0].message.content), reply.system_fingerprint

        before, fingerprint = ask("alice")
        assert fingerprint == "alice@v1"
        scaled, _ = ask("bob")  # bob's adapter is alice's with LoRA B × 300
        assert scaled != before

        # v2 of alice: bob's weights, switched to while the server runs
        alice = Workspace.at(running.alice)
        _version_from(running.alice, tiny_notes_memory / "adapters" / "default", 2, 300.0)
        AdapterVersions(alice).use(2)
        assert ask("alice") == (scaled, "alice@v2")
        with client.chat.completions.create(
            model="alice", messages=user(QUESTION), max_tokens=MAX_TOKENS, stream=True
        ) as stream:
            chunks = list(stream)
        assert {chunk.system_fingerprint for chunk in chunks} == {"alice@v2"}

        AdapterVersions(alice).use(1)  # rolled back
        assert ask("alice") == (before, "alice@v1")
        assert ask("bob") == (scaled, "bob@v1")  # the other memory was never touched
