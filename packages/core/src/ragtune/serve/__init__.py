"""`ragtune serve`: every tuned memory behind one OpenAI-compatible server.

`MemoryShelf` loads the base model once and each workspace's adapter on it; `create_app` is the
ASGI app (chat completions, streamed or not, models, health, recall) with API keys and limits;
`Scheduler` is its generation worker, batching waiting requests for the same memory.
"""

from __future__ import annotations

from ragtune.serve.app import ServeSettings, create_app
from ragtune.serve.keys import ApiKeys, Grant
from ragtune.serve.memories import MemoryShelf, ServedMemory, Target
from ragtune.serve.scheduler import Scheduler

__all__ = [
    "ApiKeys",
    "Grant",
    "MemoryShelf",
    "Scheduler",
    "ServeSettings",
    "ServedMemory",
    "Target",
    "create_app",
]
