"""Index each LoCoMo conversation as its own memory and report what `ragtune index` built.

    python bench/index_per_conversation.py ../shared/data/locomo/locomo_dev.json OUT_DIR

Each conversation is written to its own JSON file, indexed with `ragtune index` (the console
script, so the wall time is what a user sees, model loading included) and summarized from its
`index.json`: entities, relationships, communities per level, wall time and the ten entities of
highest degree. Prints a markdown table.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def main(locomo_file: Path, out: Path, *extra: str) -> None:
    """Index every conversation of `locomo_file` under `out` and print the table."""
    conversations = json.loads(locomo_file.read_text(encoding="utf-8"))
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for conversation in conversations:
        name = conversation["sample_id"]
        workspace, wall = index_conversation(conversation, out, *extra)
        summary = json.loads((workspace / "index.json").read_text(encoding="utf-8"))
        rows.append((name, summary, wall))
    print(
        "| conversation | units | entities | relationships | communities per level "
        "| index s | wall s | top-10 entities by degree |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, s, wall in rows:
        levels = ", ".join(f"L{k}: {v}" for k, v in s["communities_per_level"].items())
        top = ", ".join(f"{title} ({degree})" for title, degree in s["top_entities"])
        print(
            f"| {name} | {s['text_units']} | {s['entities']} | {s['relationships']} | {levels} "
            f"| {s['seconds']:.2f} | {wall:.1f} | {top} |"
        )


def index_conversation(conversation: dict[str, Any], out: Path, *extra: str) -> tuple[Path, float]:
    """Write one LoCoMo conversation to `out/<id>.json` and index it into the workspace
    `out/<id>` with `ragtune index`; returns the workspace and the wall time."""
    name = conversation["sample_id"]
    corpus = out / f"{name}.json"
    corpus.write_text(json.dumps([conversation]), encoding="utf-8")
    workspace = out / name
    started = time.perf_counter()
    subprocess.run(
        ["ragtune", "-q", "index", str(workspace), "--corpus", str(corpus), *extra], check=True
    )
    return workspace, time.perf_counter() - started


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), *sys.argv[3:])
