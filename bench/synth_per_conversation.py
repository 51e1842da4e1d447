"""Synthesize training data for each LoCoMo conversation and report what `ragtune synthesize`
made, and how much of what LoCoMo will ask the data covers.

    python bench/synth_per_conversation.py ../shared/data/locomo/locomo_dev.json OUT_DIR

Each conversation becomes its own memory: `ragtune index` (heuristic, no model) then
`ragtune synthesize` (the console scripts, so wall times are what a user sees). Prints, per
conversation, the card (records per kind, tokens, time) and the coverage of LoCoMo's gold
evidence turns (the `evidence` dia_ids of its QA):

- by source unit: the turn lies in a text unit that is a source of at least one training
  record (what the issue asks);
- by cited turn: the turn is in the `evidence` of at least one training record (the record's
  answer quotes or dates that very turn) — a stricter measure.

Writes ten sampled training records per kind to OUT_DIR/samples-<conversation>.md.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from index_per_conversation import index_conversation


def main(locomo_file: Path, out: Path, *extra: str) -> None:
    """Index and synthesize every conversation of `locomo_file` under `out`; print tables."""
    conversations = json.loads(locomo_file.read_text(encoding="utf-8"))
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for conversation in conversations:
        name = conversation["sample_id"]
        workspace, _ = index_conversation(conversation, out)
        started = time.perf_counter()
        subprocess.run(["ragtune", "-q", "synthesize", str(workspace), *extra], check=True)
        wall = time.perf_counter() - started
        card = json.loads((workspace / "synth" / "card.json").read_text(encoding="utf-8"))
        train = _records(workspace / "synth" / "train.jsonl")
        coverage = _coverage(conversation["qa"], workspace, train)
        _write_samples(out / f"samples-{name}.md", name, train)
        rows.append((name, card, wall, coverage))
    _print_cards(rows)
    _print_coverage(rows)


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _coverage(
    qa: list[dict[str, Any]], workspace: Path, train: list[dict[str, Any]]
) -> dict[str, Any]:
    from ragtune.corpus.tables import read_text_units

    units_of_turn: dict[str, set[str]] = defaultdict(set)
    for unit in read_text_units(workspace / "text_units.parquet"):
        for turn in unit.turn_ids:
            units_of_turn[turn].add(unit.id)
    sources = {unit for record in train for unit in record["source_ids"]}
    cited = {turn for record in train for turn in record["evidence"]}
    by_category: dict[int, list[str]] = defaultdict(list)
    for item in qa:
        for turn in item.get("evidence", []):
            for part in str(turn).replace(",", ";").split(";"):  # a few ids are "D8:6; D9:17"
                if part.strip():
                    by_category[int(item["category"])].append(part.strip())
    result: dict[str, Any] = {}
    every = sorted({t for turns in by_category.values() for t in turns})
    for label, turns in [("all", every)] + [
        (f"cat {c}", sorted(set(t))) for c, t in sorted(by_category.items())
    ]:
        known = [t for t in turns if t in units_of_turn]
        by_unit = sum(bool(units_of_turn[t] & sources) for t in known)
        by_turn = sum(t in cited for t in known)
        result[label] = (len(turns), len(known), by_unit, by_turn)
    return result


def _write_samples(path: Path, name: str, train: list[dict[str, Any]]) -> None:
    by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in train:
        by_kind[record["kind"]].append(record)
    rng = random.Random(0)
    lines = [f"# Ten sampled training records per kind: {name}", ""]
    for kind, records in sorted(by_kind.items()):
        lines += [f"## {kind} ({len(records)} records)", ""]
        for record in rng.sample(records, min(10, len(records))):
            answer = record["completion"][0]["content"].replace("\n", " ⏎ ")
            if len(answer) > 400:
                answer = answer[:400] + " …"
            lines.append(f"- **Q:** {record['prompt'][0]['content']}  ")
            lines.append(f"  **A:** {answer}  ")
            lines.append(
                f"  *sources:* {len(record['source_ids'])} units; *evidence:* "
                f"{', '.join(record['evidence'][:6]) or '—'}"
            )
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")


def _print_cards(rows: list[tuple[str, dict[str, Any], float, dict[str, Any]]]) -> None:
    kinds = sorted({kind for _, card, _, _ in rows for kind in card["kinds"]})
    print(
        "| conversation | records (train/val) | facts | " + " | ".join(kinds) + " | tokens "
        "| dropped | synth s | wall s |"
    )
    print("|---" * (len(kinds) + 7) + "|")
    for name, card, wall, _ in rows:
        per_kind = " | ".join(str(sum(card["kinds"].get(k, {}).values())) for k in kinds)
        dropped = sum(n for reasons in card["dropped"].values() for n in reasons.values())
        print(
            f"| {name} | {card['records']} ({card['train']}/{card['val']}) | {card['facts']} | "
            f"{per_kind} | {card['tokens']['total']} | {dropped} | {card['seconds']:.1f} "
            f"| {wall:.1f} |"
        )
    print()
    for name, card, _, _ in rows:
        print(f"{name} dropped: {json.dumps(card['dropped'])}; skipped: {list(card['skipped'])}")
    print()


def _print_coverage(rows: list[tuple[str, dict[str, Any], float, dict[str, Any]]]) -> None:
    labels = list(rows[0][3]) if rows else []
    print("| conversation | " + " | ".join(labels) + " |")
    print("|---" * (len(labels) + 1) + "|")
    for name, _, _, coverage in rows:
        cells = []
        for label in labels:
            _turns, known, by_unit, by_turn = coverage.get(label, (0, 0, 0, 0))
            share_unit = by_unit / known if known else 0
            share_turn = by_turn / known if known else 0
            cells.append(f"{by_unit}/{known} = {share_unit:.0%} (turn {share_turn:.0%})")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), *sys.argv[3:])
