"""A tiny `ragtune serve` for the serve tests (imported as `serve_support`): the shared tiny
adapter as memory ``alice`` and a copy with its LoRA B weights scaled up as ``bob`` (so the two
answer differently), on one tiny base model, served by uvicorn on loopback with two API keys
(alice's, and an admin key reading every memory)."""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai

from ragtune.serve import ApiKeys, MemoryShelf, ServeSettings, create_app
from ragtune.serve.background import BackgroundServer
from ragtune.serve.scheduler import Scheduler, SchedulerStats
from ragtune.workspace import Workspace

ALICE_KEY = "sk-alice-0123456789abcdef"
ADMIN_KEY = "sk-admin-fedcba9876543210"
CAP = 64


@dataclass
class Served:
    server: BackgroundServer
    shelf: MemoryShelf
    scheduler: Scheduler
    alice: Path
    bob: Path

    @property
    def url(self) -> str:
        return self.server.base_url

    def client(self, key: str = ADMIN_KEY) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url, api_key=key, max_retries=0, timeout=60)

    def shelf_stats(self) -> SchedulerStats:
        return dataclasses.replace(self.scheduler.stats)

    def post(self, path: str, body: object, key: str | None = ADMIN_KEY) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.post(f"{self.url}{path}", json=body, headers=headers, timeout=60)


def scaled_copy(source: Path, target: Path, factor: float) -> Path:
    """A copy of the workspace `source` whose adapter's LoRA B weights are scaled by `factor`."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(source, target)
    weights = Workspace.at(target).adapter_path("default") / "adapter_model.safetensors"
    tensors = load_file(str(weights))
    save_file({n: t * factor if ".lora_B." in n else t for n, t in tensors.items()}, str(weights))
    return target


@contextlib.contextmanager
def serving(memory: Path, root: Path) -> Iterator[Served]:
    """Serve alice and bob, copies of the workspace `memory` under `root`, while inside."""
    alice = shutil.copytree(memory, root / "alice")
    bob = scaled_copy(memory, root / "bob", 300.0)
    shelf = MemoryShelf.load([alice, bob], device="cpu")
    keys = ApiKeys.parse(f"{ALICE_KEY} alice\n{ADMIN_KEY} *", origin="test keys")
    keys.check_memories(set(shelf.memories))
    app = create_app(
        shelf,
        keys=keys,
        settings=ServeSettings(max_body_bytes=200_000, max_tokens_cap=CAP, batch_size=8),
    )
    with BackgroundServer(app) as server:
        yield Served(server, shelf, app.state.scheduler, alice, bob)
