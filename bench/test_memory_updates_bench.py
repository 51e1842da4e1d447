"""Growing and forgetting a memory, timed and scored (`bench/memory_updates.py`): a LoCoMo
conversation built from its first half of sessions, grown with the second half by
`ragtune train --update` (against a full rebuild), then made to forget one session (against a
rebuild without it).

`make bench` runs it on ``RAGTUNE_UPDATES_BENCH_CONVERSATIONS`` (default there: conv-30) of
``RAGTUNE_BENCH_QUESTIONS`` (the LoCoMo file), with the replay shares of
``RAGTUNE_UPDATES_BENCH_REPLAYS`` (default ``0.25 0``). It trains five memories per conversation
(~35 minutes on 2 cores for conv-30). Without those variables (`make test`) it is skipped: the
commands it runs are tested in tests/test_adapter_versions.py, tests/test_synth_increments.py
and tests/test_forget.py.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.benchmark, pytest.mark.slow]

CONVERSATIONS = os.environ.get("RAGTUNE_UPDATES_BENCH_CONVERSATIONS", "").split()
REPLAYS = os.environ.get("RAGTUNE_UPDATES_BENCH_REPLAYS", "0.25 0").split()


def test_growing_and_forgetting(benchmark: Any, tmp_path: Path) -> None:
    if not CONVERSATIONS or not os.environ.get("RAGTUNE_BENCH_QUESTIONS"):
        pytest.skip(
            "set RAGTUNE_UPDATES_BENCH_CONVERSATIONS and RAGTUNE_BENCH_QUESTIONS (make bench)"
        )
    sys.path.insert(0, str(Path(__file__).parent))
    from memory_updates import main

    report = Path(os.environ.get("RAGTUNE_BENCH_REPORT", tmp_path)) / "memory-updates"
    arguments = [os.environ["RAGTUNE_BENCH_QUESTIONS"], str(report), *CONVERSATIONS]
    for replay in REPLAYS:
        arguments += ["--replay", replay]
    benchmark.pedantic(main, args=(arguments,), rounds=1, iterations=1)
    results = json.loads((report / "report.json").read_text(encoding="utf-8"))
    for conversation in results["conversations"]:
        # forgetting is exact: no file of the workspace holds the forgotten session's text
        assert conversation["leftovers"] == [], conversation["leftovers"]
        benchmark.extra_info[conversation["sample_id"]] = {
            "questions": conversation["questions"],
            "records": conversation["records"],
            "steps": conversation["steps"],
        }
    benchmark.extra_info["paired"] = results["paired"]
