"""A memory that grows and forgets, measured on LoCoMo conversations split by sessions.

    python bench/memory_updates.py ../shared/data/locomo/locomo_dev.json OUT conv-30 [conv-41 ...]
        [--replay 0.25 --replay 0] [--forget-session N] [KEY=VALUE ...]

For each conversation (its sessions 1..n; the first half is sessions 1..ceil(n/2)):

- **grown**: a memory built from the first half (v1), then the second half added with
  ``ragtune index`` + ``ragtune synthesize`` + ``ragtune train --update`` (v2), once per
  ``--replay`` value (each from a copy of the same v1);
- **rebuilt**: a memory built from scratch on every session (the full rebuild);
- **forget**: the grown memory (first ``--replay``) forgets one session of the second half
  (``ragtune forget --source``; default the one with the most questions whose evidence lies in it
  alone), against a memory rebuilt from scratch without that session.

Questions (categories 1–4) are grouped by where their evidence lies: ``old`` (first half only),
``new`` (second half only), ``forgotten`` (the forgotten session only); questions with evidence
on both sides are left out. Every memory answers greedily with no retrieval (`MemoryModel`, 48
tokens), the untuned base model (the same model with the adapter off, same prompt) answers the
forgotten questions too. Writes ``OUT/report.json`` and ``OUT/report.md``: F1 per group and model,
paired 95% bootstrap intervals (conversations, then questions), wall times and teacher calls of
each command.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RAGTUNE = str(Path(sys.executable).with_name("ragtune"))
_SESSION = re.compile(r"^session_(\d+)$")
MAX_TOKENS = 48


@dataclass
class Step:
    """One command: what it was, its wall time and teacher calls."""

    name: str
    seconds: float
    teacher_calls: int = 0


@dataclass
class Conversation:
    """The measurements of one conversation."""

    sample_id: str
    sessions: int
    first_half: int
    forgotten_session: int
    questions: dict[str, int] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    scores: dict[str, list[float]] = field(default_factory=dict)
    ids: dict[str, list[str]] = field(default_factory=dict)
    abstained: dict[str, float] = field(default_factory=dict)
    records: dict[str, Any] = field(default_factory=dict)
    leftovers: list[str] = field(default_factory=list)


def run(command: Sequence[str], name: str, steps: list[Step], workspace: Path) -> None:
    """Run a ragtune command, timed; record its teacher calls (index.json, synth card)."""
    before = _teacher_calls(workspace)
    started = time.perf_counter()
    done = subprocess.run(
        [RAGTUNE, "-q", *command], capture_output=True, text=True, check=False, env=_env()
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    print(f"  {name}: {seconds:.0f} s  {done.stdout.strip().splitlines()[:1]}", flush=True)
    steps.append(Step(name, round(seconds, 1), max(0, _teacher_calls(workspace) - before)))


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1"}


def _teacher_calls(workspace: Path) -> int:
    total = 0
    for path, key in (
        (workspace / "index.json", "teacher_calls"),
        (workspace / "synth/card.json", "teacher"),
    ):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        value = data.get(key, 0)
        total += int(value.get("calls", 0) if isinstance(value, dict) else value or 0)
    return total


def sessions_of(record: dict[str, Any]) -> list[int]:
    """The session numbers of a LoCoMo record."""
    return sorted(int(m.group(1)) for key in record["conversation"] if (m := _SESSION.match(key)))


def with_sessions(record: dict[str, Any], keep: set[int]) -> dict[str, Any]:
    """`record` with only the sessions `keep` (their dates too)."""
    conversation = {}
    for key, value in record["conversation"].items():
        match = re.match(r"^session_(\d+)", key)
        if match is None or int(match.group(1)) in keep:
            conversation[key] = value
    return {**record, "conversation": conversation}


def evidence_sessions(qa: dict[str, Any]) -> set[int]:
    """The sessions a question's evidence lies in (``D3:5`` → 3)."""
    found = set()
    for item in qa.get("evidence", []):
        for part in re.findall(r"D(\d+):", str(item)):
            found.add(int(part))
    return found


def write_corpus(path: Path, record: dict[str, Any]) -> None:
    """Write a one-conversation LoCoMo file."""
    path.write_text(json.dumps([record], ensure_ascii=False), encoding="utf-8")


def build(
    workspace: Path, corpus: Path, settings: Sequence[str], steps: list[Step], tag: str
) -> None:
    """index → synthesize → train from scratch."""
    run(
        ["index", str(workspace), "--corpus", str(corpus), *settings],
        f"{tag} index",
        steps,
        workspace,
    )
    run(["synthesize", str(workspace), *settings], f"{tag} synthesize", steps, workspace)
    run(["train", str(workspace), *settings], f"{tag} train", steps, workspace)


def answers(
    workspace: Path, questions: Sequence[dict[str, Any]], *, base: bool = False
) -> list[str]:
    """The memory's (or, with `base`, the untuned model's) greedy answers."""
    from ragtune.model.memory_model import MemoryModel

    model = MemoryModel.from_workspace(workspace, follow_versions=False)
    found = []
    for qa in questions:
        if base:
            with model.backend.model.disable_adapter():
                found.append(model.answer(qa["question"], max_new_tokens=MAX_TOKENS))
        else:
            found.append(model.answer(qa["question"], max_new_tokens=MAX_TOKENS))
    return found


def score(questions: Sequence[dict[str, Any]], said: Sequence[str]) -> list[float]:
    from ragtune.eval.locomo_scoring import score_answer

    return [
        score_answer(text, qa.get("answer"), int(qa["category"]))
        for qa, text in zip(questions, said, strict=True)
    ]


def abstention(said: Sequence[str]) -> float:
    from ragtune.eval.locomo_scoring import abstains

    return sum(abstains(text) for text in said) / len(said) if said else 0.0


def measure(
    locomo: list[dict[str, Any]],
    sample_id: str,
    out: Path,
    replays: Sequence[float],
    forget_session: int | None,
    settings: Sequence[str],
    *,
    limit: int | None = None,
) -> Conversation:
    """All the builds, updates and answers of one conversation."""
    record = next(r for r in locomo if r["sample_id"] == sample_id)
    sessions = sessions_of(record)
    half = sessions[: math.ceil(len(sessions) / 2)]
    later = [s for s in sessions if s not in half]
    qas = [qa for qa in record["qa"] if qa.get("category") in (1, 2, 3, 4)]
    for number, qa in enumerate(qas):
        qa["id"] = f"{sample_id}#{number}"
    groups = {
        "old": [qa for qa in qas if evidence_sessions(qa) and evidence_sessions(qa) <= set(half)],
        "new": [qa for qa in qas if evidence_sessions(qa) and evidence_sessions(qa) <= set(later)],
    }
    alone = {s: sum(evidence_sessions(qa) == {s} for qa in qas) for s in later}
    forgotten = forget_session or max(later, key=lambda s: (alone[s], -s))
    groups["forgotten"] = [qa for qa in qas if evidence_sessions(qa) == {forgotten}]
    groups["new_kept"] = [qa for qa in groups["new"] if forgotten not in evidence_sessions(qa)]
    if limit is not None:
        groups = {name: items[:limit] for name, items in groups.items()}
    found = Conversation(sample_id, len(sessions), len(half), forgotten)
    found.questions = {name: len(items) for name, items in groups.items()}
    found.ids = {name: [qa["id"] for qa in items] for name, items in groups.items()}
    print(
        f"{sample_id}: {len(sessions)} sessions, first half 1–{half[-1]}, forgetting "
        f"session {forgotten}; questions {found.questions}",
        flush=True,
    )

    root = out / sample_id
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    first, full = root / "first.json", root / "all.json"
    without = root / "without.json"
    write_corpus(first, with_sessions(record, set(half)))
    write_corpus(full, with_sessions(record, set(sessions)))
    write_corpus(without, with_sessions(record, set(sessions) - {forgotten}))
    steps = found.steps

    # The first half, then the update (its corpus file grows in place, as a user's would).
    # (each memory's corpus file is named corpus.json, in a folder of its own: a document's id
    # hashes its source, which names the file, so the grown file must keep the name)
    seed = root / "seed"
    corpus = root / "seed-corpus" / "corpus.json"
    corpus.parent.mkdir()
    shutil.copy(first, corpus)
    build(seed, corpus, settings, steps, "first half")
    found.scores["v1 old"] = score(groups["old"], answers(seed, groups["old"]))
    grown: dict[float, Path] = {}
    corpora: dict[float, Path] = {}
    for replay in replays:
        workspace = root / f"grown-replay{replay:g}"
        shutil.copytree(seed, workspace, symlinks=True)
        own = root / f"corpus-replay{replay:g}" / "corpus.json"
        own.parent.mkdir()
        shutil.copy(full, own)
        tag = f"update replay={replay:g}"
        run(
            ["index", str(workspace), "--corpus", str(own), *settings],
            f"{tag} index",
            steps,
            workspace,
        )
        run(["synthesize", str(workspace), *settings], f"{tag} synthesize", steps, workspace)
        card = json.loads((workspace / "synth/card.json").read_text(encoding="utf-8"))
        found.records[tag] = card.get("changes", {})
        run(
            ["train", str(workspace), "--update", "--replay", str(replay), *settings],
            f"{tag} train",
            steps,
            workspace,
        )
        grown[replay] = workspace
        corpora[replay] = own
        for name in ("old", "new"):
            found.scores[f"{tag} {name}"] = score(groups[name], answers(workspace, groups[name]))

    rebuilt = root / "rebuilt"
    build(rebuilt, full, settings, steps, "rebuild")
    for name in ("old", "new"):
        found.scores[f"rebuild {name}"] = score(groups[name], answers(rebuilt, groups[name]))

    # Forgetting one session of the second half.
    workspace = grown[replays[0]]
    source = f"{corpora[replays[0]].name}#{sample_id}/session_{forgotten}"
    run(["forget", str(workspace), "--source", source, *settings], "forget", steps, workspace)
    said = answers(workspace, groups["forgotten"])
    found.scores["forget forgotten"] = score(groups["forgotten"], said)
    found.abstained["forget forgotten"] = abstention(said)
    for name in ("old", "new_kept"):
        found.scores[f"forget {name}"] = score(groups[name], answers(workspace, groups[name]))
    before = answers(seed, groups["forgotten"])  # v1 never saw the session either
    found.scores["v1 forgotten"] = score(groups["forgotten"], before)
    if len(replays) > 1:
        grown_said = answers(grown[replays[1]], groups["forgotten"])
        found.scores["grown forgotten"] = score(groups["forgotten"], grown_said)
        found.abstained["grown forgotten"] = abstention(grown_said)
    base_said = answers(workspace, groups["forgotten"], base=True)
    found.scores["base forgotten"] = score(groups["forgotten"], base_said)
    found.abstained["base forgotten"] = abstention(base_said)
    rebuilt_without = root / "rebuilt-without"
    build(rebuilt_without, without, settings, steps, "rebuild without")
    for name in ("old", "new_kept", "forgotten"):
        found.scores[f"rebuild-without {name}"] = score(
            groups[name], answers(rebuilt_without, groups[name])
        )
    found.leftovers = find_mentions_in(workspace, record, forgotten, sessions)
    return found


def find_mentions_in(
    workspace: Path, record: dict[str, Any], session: int, sessions: Sequence[int]
) -> list[str]:
    """Files of `workspace` holding a line of the forgotten session found in no other session
    (an independent check: raw bytes, and parquet tables decoded)."""
    lines = {
        turn["text"].strip()
        for turn in record["conversation"][f"session_{session}"]
        if len(turn["text"].strip()) >= 24
    }
    others = "\n".join(
        turn["text"]
        for s in sessions
        if s != session
        for turn in record["conversation"][f"session_{s}"]
    )
    unique = [line for line in lines if line not in others]
    hits = []
    for path in sorted(workspace.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        data = path.read_bytes()
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            data += json.dumps(
                pq.read_table(path).to_pylist(), ensure_ascii=False, default=str
            ).encode()
        if any(line.encode() in data or json.dumps(line)[1:-1].encode() in data for line in unique):
            hits.append(str(path.relative_to(workspace)))
    return hits


def paired(
    conversations: Sequence[Conversation], first: str, second: str, group: str, seed: int = 0
) -> dict[str, Any] | None:
    """`first` − `second` on the questions of `group`: mean F1 difference and a 95% two-stage
    bootstrap interval (conversations, then questions)."""
    pairs = [
        [a - b for a, b in zip(c.scores[first], c.scores[second], strict=True)]
        for c in conversations
        if first in c.scores and second in c.scores and c.scores[first]
    ]
    if not pairs:
        return None
    rng = random.Random(seed)
    means = []
    for _ in range(5000):
        drawn = [pairs[rng.randrange(len(pairs))] for _ in pairs]
        values = [d[rng.randrange(len(d))] for group_ in drawn for d in [group_] for _ in group_]
        means.append(sum(values) / len(values))
    means.sort()
    flat = [d for group_ in pairs for d in group_]
    return {
        "first": first,
        "second": second,
        "group": group,
        "questions": len(flat),
        "mean": round(sum(flat) / len(flat), 4),
        "ci95": [round(means[125], 4), round(means[4874], 4)],
    }


def share(part: float, whole: float, signed: bool = False) -> str:
    """`part / whole` as a percentage (n/a when `whole` is 0)."""
    if not whole or math.isnan(whole) or math.isnan(part):
        return "n/a"
    return f"{part / whole:+.0%}" if signed else f"{part / whole:.0%}"


def pooled(conversations: Sequence[Conversation], key: str) -> tuple[float, int]:
    values = [v for c in conversations for v in c.scores.get(key, [])]
    return (sum(values) / len(values) if values else float("nan")), len(values)


def abstained(conversations: Sequence[Conversation], key: str) -> float:
    """The share of `key`'s answers that abstained, pooled over the conversations' questions."""
    pairs = [
        (c.abstained[key], len(c.scores.get(key, []))) for c in conversations if key in c.abstained
    ]
    asked = sum(n for _, n in pairs)
    return sum(share * n for share, n in pairs) / asked if asked else float("nan")


def _of(step: Step, tag: str) -> bool:
    """Whether `step` is one of the commands of `tag` (``rebuild`` → ``rebuild index``, ...)."""
    return step.name == tag or step.name.rsplit(" ", 1)[0] == tag


def seconds(conversations: Sequence[Conversation], tag: str) -> float:
    return sum(s.seconds for c in conversations for s in c.steps if _of(s, tag))


def calls(conversations: Sequence[Conversation], tag: str) -> int:
    return sum(s.teacher_calls for c in conversations for s in c.steps if _of(s, tag))


def report(conversations: Sequence[Conversation], replays: Sequence[float], out: Path) -> str:
    """The markdown report (also written with the raw numbers as JSON)."""
    first = f"update replay={replays[0]:g}"
    lines = ["# Growing and forgetting", ""]
    for c in conversations:
        lines.append(
            f"- {c.sample_id}: {c.sessions} sessions, first half 1–{c.first_half}, forgot "
            f"session {c.forgotten_session}; questions {c.questions}; records {c.records}; "
            f"leftover files after forget: {c.leftovers or 'none'}"
        )
    lines += ["", "| model | group | F1 | n |", "|---|---|---|---|"]
    keys = sorted({k for c in conversations for k in c.scores})
    for key in keys:
        model, group = key.rsplit(" ", 1)
        value, n = pooled(conversations, key)
        lines.append(f"| {model} | {group} | {value:.3f} | {n} |")
    lines += ["", "## Goals", ""]
    for replay in replays:
        tag = f"update replay={replay:g}"
        new, _ = pooled(conversations, f"{tag} new")
        full, _ = pooled(conversations, "rebuild new")
        old_after, _ = pooled(conversations, f"{tag} old")
        old_before, _ = pooled(conversations, "v1 old")
        update_time = seconds(conversations, tag)
        rebuild_calls = calls(conversations, "rebuild")
        rebuild_time = seconds(conversations, "rebuild")
        lines.append(
            f"- replay {replay:g}: new-session F1 {new:.3f} vs rebuild {full:.3f} "
            f"(**{share(new, full)}** of it; goal ≥ 90%); old-session F1 {old_before:.3f} → "
            f"{old_after:.3f} (**{share(old_after - old_before, old_before, True)}** relative "
            f"change; goal: a loss of at most 10%, ≥ −10%); time {update_time:.0f} s vs rebuild "
            f"{rebuild_time:.0f} s "
            f"(**{share(update_time, rebuild_time)}**; goal ≤ 40%); teacher calls "
            f"{calls(conversations, tag)} vs {rebuild_calls}"
        )
    kept, _ = pooled(conversations, "forget new_kept")
    kept_full, _ = pooled(conversations, "rebuild-without new_kept")
    old_forget, _ = pooled(conversations, "forget old")
    old_full, _ = pooled(conversations, "rebuild-without old")
    gone, _ = pooled(conversations, "forget forgotten")
    base, _ = pooled(conversations, "base forgotten")
    had, _ = pooled(conversations, "grown forgotten")
    never, _ = pooled(conversations, "rebuild-without forgotten")
    before_all, _ = pooled(conversations, "v1 forgotten")
    forget_time = seconds(conversations, "forget")
    without_time = seconds(conversations, "rebuild without")
    lines.append(
        f"- forget: forgotten-session F1 {had:.3f} before → {gone:.3f} after (untuned base "
        f"{base:.3f}; models that never saw the session: v1 {before_all:.3f}, rebuild without "
        f"it {never:.3f}); abstained {abstained(conversations, 'grown forgotten'):.0%} before → "
        f"{abstained(conversations, 'forget forgotten'):.0%} after (base "
        f"{abstained(conversations, 'base forgotten'):.0%}); remaining new-session F1 "
        f"{kept:.3f} vs rebuild without the session "
        f"{kept_full:.3f}; old-session F1 {old_forget:.3f} vs {old_full:.3f}; time "
        f"{forget_time:.0f} s vs rebuild {without_time:.0f} s "
        f"(**{share(forget_time, without_time)}**)"
    )
    comparisons = [
        paired(conversations, f"{first} new", "rebuild new", "new"),
        paired(conversations, f"{first} old", "v1 old", "old"),
        paired(conversations, "forget forgotten", "base forgotten", "forgotten"),
        paired(conversations, "forget forgotten", "grown forgotten", "forgotten"),
        paired(conversations, "forget forgotten", "rebuild-without forgotten", "forgotten"),
        paired(conversations, "grown forgotten", "v1 forgotten", "forgotten"),
        paired(conversations, "forget new_kept", "rebuild-without new_kept", "new_kept"),
        paired(conversations, "forget old", "rebuild-without old", "old"),
    ]
    if len(replays) > 1:
        for replay in replays[1:]:
            tag = f"update replay={replay:g}"
            comparisons.append(paired(conversations, f"{tag} new", f"{first} new", "new"))
            comparisons.append(paired(conversations, f"{tag} old", f"{first} old", "old"))
    lines += ["", "## Paired differences (95% bootstrap)", ""]
    for item in comparisons:
        if item is not None:
            lines.append(
                f"- {item['first']} − {item['second']}: {item['mean']:+.3f} "
                f"[{item['ci95'][0]:+.3f}, {item['ci95'][1]:+.3f}] ({item['questions']} q)"
            )
    lines += ["", "## Steps (wall seconds, teacher calls)", ""]
    for c in conversations:
        for step in c.steps:
            lines.append(
                f"- {c.sample_id} {step.name}: {step.seconds:.0f} s, {step.teacher_calls} calls"
            )
    text = "\n".join(lines) + "\n"
    (out / "report.md").write_text(text, encoding="utf-8")
    (out / "report.json").write_text(
        json.dumps(
            {"conversations": [asdict(c) for c in conversations], "paired": comparisons},
            indent=1,
        ),
        encoding="utf-8",
    )
    return text


def main(argv: Sequence[str] | None = None) -> str:
    """Measure the conversations named on the command line; returns the markdown report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("locomo", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("conversations", nargs="+")
    parser.add_argument("--replay", type=float, action="append")
    parser.add_argument("--forget-session", type=int)
    parser.add_argument(
        "--limit", type=int, help="Ask at most this many questions of each group (a quick run)."
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="Write the report again from OUT/measured.json (no building, no answering).",
    )
    arguments, settings = parser.parse_known_args(argv)
    conversations = [a for a in arguments.conversations if "=" not in a]
    settings += [a for a in arguments.conversations if "=" in a]
    replays = arguments.replay or [0.25]
    arguments.out.mkdir(parents=True, exist_ok=True)
    raw = arguments.out / "measured.json"
    if arguments.report_only:
        saved = json.loads(raw.read_text(encoding="utf-8"))
        measured = [
            Conversation(**{**c, "steps": [Step(**step) for step in c["steps"]]}) for c in saved
        ]
        text = report(measured, replays, arguments.out)
        print(text)
        return text
    locomo = json.loads(arguments.locomo.read_text(encoding="utf-8"))
    measured = []
    for sample_id in conversations:
        measured.append(
            measure(
                locomo,
                sample_id,
                arguments.out,
                replays,
                arguments.forget_session,
                settings,
                limit=arguments.limit,
            )
        )
        raw.write_text(json.dumps([asdict(c) for c in measured], indent=1), encoding="utf-8")
        text = report(measured, replays, arguments.out)
    print(text)
    return text


if __name__ == "__main__":
    main()
