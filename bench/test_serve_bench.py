"""Load on `ragtune serve`: 1, 4 and 16 concurrent loopback clients asking two memories on one
base model for a bounded time, with the generation worker's batching on and off, and with
clients sending bad requests beside the good ones.

Each benchmark is one load level (`drive`): every client posts chat completions back to back,
alternating the two memories, until the time is up; `extra_info` holds requests/s, generated
tokens/s, latency p50/p95, errors (0 is asserted), the batches the worker ran and the
resident memory of the process (the server's, with the clients' threads beside it). With
``RAGTUNE_BENCH_REPORT`` set each level adds its row to the table ``serve.md`` there.

`make bench` serves the first two of its trained LoCoMo memories (``RAGTUNE_BENCH_WORKSPACES``:
the embedded SmolLM2 tuned on each conversation) for ``RAGTUNE_SERVE_BENCH_SECONDS`` (default 20)
a level. Without them (`make test`) two tiny memories on the tiny random model are served for a
second and a half a level, to keep the path working.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.benchmark, pytest.mark.slow]

WORKSPACES = os.environ.get("RAGTUNE_BENCH_WORKSPACES", "").split()[:2]
SECONDS = float(os.environ.get("RAGTUNE_SERVE_BENCH_SECONDS", "20" if WORKSPACES else "1.5"))
MAX_TOKENS = 32
KEY = "sk-bench-0123456789abcdef"
QUESTIONS = (
    "What did I do last weekend?",
    "Who did I meet at the conference?",
    "When did I start my new job?",
    "What is the name of my dog?",
    "Where did I go on vacation?",
    "What book am I reading?",
    "What sport do I play?",
    "Who is my best friend?",
)
#: Requests a server must refuse with a 4xx JSON error, each a different way to get it wrong.
BAD_REQUESTS: tuple[tuple[str, bytes | dict[str, Any]], ...] = (
    ("malformed JSON", b'{"model": "alice", "messages": ['),
    ("no messages", {"model": "alice"}),
    ("max_tokens over the cap", {"model": "alice", "max_tokens": 10**6, "messages": [{}]}),
    ("unknown model", {"model": "carol", "messages": [{"role": "user", "content": "hi"}]}),
    (
        "tools",
        {
            "model": "bob",
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "f"}}],
        },
    ),
)


@dataclass
class Load:
    """What one load level measured."""

    clients: int
    batching: bool
    bad_clients: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    tokens: int = 0
    errors: list[str] = field(default_factory=list)
    refused: int = 0

    def summary(self, scheduler: Any) -> dict[str, Any]:
        from ragtune.serve.memories import resident_bytes

        ordered = sorted(self.latencies)
        return {
            "clients": self.clients,
            "batching": self.batching,
            "bad_clients": self.bad_clients,
            "requests": len(ordered),
            "seconds": round(self.seconds, 2),
            "requests_per_s": round(len(ordered) / self.seconds, 3),
            "tokens_per_s": round(self.tokens / self.seconds, 1),
            "p50_s": round(statistics.median(ordered), 3),
            "p95_s": round(ordered[max(0, round(0.95 * len(ordered)) - 1)], 3),
            "errors": len(self.errors),
            "bad_refused": self.refused,
            "batches": scheduler.stats.batches,
            "largest_batch": scheduler.stats.largest_batch,
            "server_rss_mib": round(resident_bytes() / 2**20, 1),
        }


@pytest.fixture(scope="module")
def shelf(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Two memories on one base model: `make bench`'s first two, or two tiny ones."""
    from ragtune.serve import MemoryShelf
    from ragtune.testing import build_tiny_memory, tiny_locomo_conversation

    if WORKSPACES:
        paths = [Path(w) for w in WORKSPACES]
        if len(paths) < 2:
            paths.append(paths[0])
    else:
        import json

        folder = tmp_path_factory.mktemp("serve-bench")
        questions = folder / "tiny.json"
        questions.write_text(json.dumps([tiny_locomo_conversation()]), encoding="utf-8")
        memory = build_tiny_memory(folder / "memory", tiny_model_dir, questions)
        paths = [memory, memory]
    loaded = MemoryShelf.load(paths, names=["alice", "bob"], device="cpu")
    yield loaded
    loaded.close()


def serve(shelf: Any, batching: bool) -> tuple[Any, Any]:
    """A server of `shelf` on loopback (not yet started) and its generation worker."""
    from ragtune.serve import ApiKeys, ServeSettings, create_app
    from ragtune.serve.background import BackgroundServer

    app = create_app(
        shelf,
        keys=ApiKeys.parse(f"{KEY} *", origin="bench keys"),
        settings=ServeSettings(max_tokens_cap=MAX_TOKENS, batch_size=8 if batching else 1),
    )
    return BackgroundServer(app), app.state.scheduler


def drive(url: str, load: Load, seconds: float) -> None:
    """Run `load.clients` good clients (and `load.bad_clients` bad ones) for `seconds`."""
    import httpx

    headers = {"Authorization": f"Bearer {KEY}"}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def good(index: int) -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=300) as client:
            turn = 0
            while time.monotonic() < deadline:
                model = ("alice", "bob")[(index + turn) % 2]
                question = QUESTIONS[(index * 3 + turn) % len(QUESTIONS)]
                body = {
                    "model": model,
                    "messages": [{"role": "user", "content": question}],
                    "max_tokens": MAX_TOKENS,
                }
                started = time.perf_counter()
                try:
                    response = client.post("/chat/completions", json=body)
                    took = time.perf_counter() - started
                    reply = response.json()
                    ok = response.status_code == 200 and reply["model"] == model
                    tokens = reply["usage"]["completion_tokens"] if ok else 0
                    problem = "" if ok else f"{response.status_code} {response.text[:200]}"
                except (httpx.HTTPError, ValueError, KeyError) as error:
                    took, tokens, problem = time.perf_counter() - started, 0, repr(error)
                with lock:
                    if problem:
                        load.errors.append(problem)
                    else:
                        load.latencies.append(took)
                        load.tokens += tokens
                turn += 1

    def bad(index: int) -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
            turn = index
            while time.monotonic() < deadline:
                what, body = BAD_REQUESTS[turn % len(BAD_REQUESTS)]
                if isinstance(body, bytes):
                    response = client.post(
                        "/chat/completions",
                        content=body,
                        headers={"Content-Type": "application/json"},
                    )
                else:
                    response = client.post("/chat/completions", json=body)
                refused = 400 <= response.status_code < 500 and "error" in response.json()
                with lock:
                    if refused:
                        load.refused += 1
                    else:
                        load.errors.append(f"{what}: {response.status_code} {response.text[:200]}")
                turn += 1
                time.sleep(0.05)

    threads = [threading.Thread(target=good, args=(i,)) for i in range(load.clients)]
    threads += [threading.Thread(target=bad, args=(i,)) for i in range(load.bad_clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    load.seconds = time.perf_counter() - started


LEVELS = [
    pytest.param(
        clients,
        batching,
        bad,
        id=f"{clients}-{'batched' if batching else 'one-by-one'}" + ("-with-bad" if bad else ""),
    )
    for clients, batching, bad in (
        (1, True, 0),
        (4, True, 0),
        (16, True, 0),
        (4, False, 0),
        (16, False, 0),
        (4, True, 4),
    )
]


@pytest.mark.parametrize(("clients", "batching", "bad_clients"), LEVELS)
def test_concurrent_clients_are_all_answered(
    benchmark: Any, shelf: Any, clients: int, batching: bool, bad_clients: int
) -> None:
    server, scheduler = serve(shelf, batching)
    with server:
        load = Load(clients, batching, bad_clients)
        benchmark.pedantic(drive, args=(server.base_url, load, SECONDS), rounds=1, iterations=1)
    assert load.errors == []
    assert len(load.latencies) >= clients  # every client was answered at least once
    if bad_clients:
        assert load.refused >= bad_clients
    if batching and clients >= 16:  # sixteen waiting clients always leave some to batch
        assert scheduler.stats.largest_batch > 1
    if not batching:
        assert scheduler.stats.largest_batch == 1
    row = load.summary(scheduler)
    benchmark.extra_info.update(row)
    report = os.environ.get("RAGTUNE_BENCH_REPORT")
    if report:
        table = Path(report) / "serve.md"
        table.parent.mkdir(parents=True, exist_ok=True)
        with table.open("a", encoding="utf-8") as out:
            if out.tell() == 0:
                out.write("| " + " | ".join(row) + " |\n|" + "---|" * len(row) + "\n")
            out.write("| " + " | ".join(str(v) for v in row.values()) + " |\n")
