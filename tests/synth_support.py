"""Helpers of the synthesis pipeline tests (`test_synth_pipeline.py`, `test_synth_filters.py`):
reading what a synthesis wrote, building records, a custom strategy a test scripts, a teacher that
answers every synthesis prompt, and a synthesized copy of the LoCoMo slice (imported as
`synth_support`; tests/ is on sys.path)."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ragtune.config import MemoryConfig, load_config
from ragtune.llm import ChatRequest
from ragtune.synth import DatasetCard
from ragtune.synth.context import SynthContext
from ragtune.synth.pipeline import read_records, synthesize
from ragtune.synth.records import QARecord, fact_id
from ragtune.synth.strategies import Generated, Strategy
from ragtune.workspace import Workspace

# --- helpers ------------------------------------------------------------------------------------


def lines_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def all_records(workspace: Workspace) -> list[QARecord]:
    return read_records(workspace.train_path) + read_records(workspace.val_path)


def files_of(workspace: Workspace) -> tuple[bytes, bytes]:
    return workspace.train_path.read_bytes(), workspace.val_path.read_bytes()


def config_of(workspace: Workspace, *overrides: str) -> MemoryConfig:
    return load_config(workspace.config_path, list(overrides))


def record(
    question: str,
    answer: str,
    sources: Sequence[str] = ("u1",),
    *,
    kind: str = "text_unit",
    fact: str | None = None,
    support_text: str | None = None,
) -> QARecord:
    return QARecord(
        question=question,
        answer=answer,
        kind=kind,
        query_scope="local",
        source_ids=tuple(sources),
        fact_id=fact or fact_id(kind, question),
        support=support_text,
    )


@dataclass
class NoSettings:
    """A custom strategy's (empty) settings section."""


class ScriptedStrategy(Strategy):
    """A custom strategy whose records a test writes, from the context."""

    name: ClassVar[str] = "scripted"
    kinds: ClassVar[tuple[str, ...]] = ("scripted",)
    settings_class = NoSettings

    def __init__(self, make: Callable[[SynthContext], list[QARecord]]) -> None:
        super().__init__()
        self.make = make

    def generate(
        self, context: SynthContext, earlier: Sequence[QARecord], *, progress: bool = False
    ) -> Generated:
        return Generated(records=self.make(context))


def longest_line(context: SynthContext) -> tuple[str, str]:
    """The first unit's id and its longest line (a span of it)."""
    unit = context.units[0]
    return unit.id, max(unit.text.splitlines(), key=len)


def user_message(request: ChatRequest) -> str:
    return next(m["content"] for m in request.messages if m["role"] == "user")


def labelled(text: str, label: str) -> str:
    found = re.search(rf"^{label}: (.*)$", text, re.MULTILINE)
    return found.group(1) if found else ""


def teacher_answer(request: ChatRequest) -> str:
    """What a well-behaved teacher answers to each synthesis prompt, grounded in the prompt."""
    text = user_message(request)
    if text.startswith("Here is an entity"):
        name = labelled(text, "Entity")
        answer = labelled(text, "Description")[:300]
        return json.dumps(
            {
                "question": f"What do the memories say about {name}?",
                "reasoning": "",
                "answer": answer,
            }
        )
    if text.startswith("Here is a relationship"):
        source, target = labelled(text, "Between").split(" and ", 1)
        answer = labelled(text, "Description")[:300]
        question = f"How are {source} and {target} related?"
        return json.dumps({"question": question, "reasoning": "", "answer": answer})
    if text.startswith("Here is a passage"):
        passage = text.split('"""\n', 1)[1].split('\n"""', 1)[0]
        first = passage.splitlines()[0]
        item = {
            "question": f"What was said first in the passage beginning {first[:60]!r}?",
            "paraphrases": [f"Which words open the passage {first[:60]!r}?"],
            "answer": first,
            "quote": first,
        }
        return json.dumps({"questions": [item]})
    if text.startswith("In a conversation on"):
        found = re.search(r'said: "(.*)"\n', text)
        assert found, text
        return json.dumps(
            {"question": f"When did this happen: {found.group(1)}", "paraphrases": []}
        )
    if text.startswith("Question: ") and "Here is a report" in text:
        report = text.split("Here is a report about part of the memories:\n", 1)[1]
        return json.dumps({"points": [{"description": report[:200], "score": 50}]})
    if text.startswith("Question: "):
        points = [line[2:] for line in text.splitlines() if line.startswith("- ")]
        return json.dumps({"answer": " ".join(points)})
    raise AssertionError(f"unexpected synthesis request: {text[:200]}")


# --- a synthesized copy of the slice ------------------------------------------------------------


def synthesized_copy(
    indexed_slice: Path, folder: Path, *overrides: str
) -> tuple[Workspace, DatasetCard]:
    """A copy of the slice in `folder`, synthesized with its memory.yaml and `overrides`."""
    root = folder / "memory"
    shutil.copytree(indexed_slice, root)
    workspace = Workspace.at(root)
    card = synthesize(workspace, config_of(workspace, *overrides), progress=False)
    return workspace, card
