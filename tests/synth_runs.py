"""Helpers of the synthesis strategy tests (`test_synth_strategies.py`, `test_synth_local_qa.py`,
`test_synth_global_qa.py`): a fake teacher answering every synthesis prompt, each strategy run in
the pipeline's order on a workspace (`Run`; the fixtures `heuristic` and `taught` of conftest.py
hold one run each), and ways to look into the records (imported as `synth_runs`; tests/ is on
sys.path)."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from ragtune.config import MemoryConfig
from ragtune.corpus.tables import read_documents, read_text_units
from ragtune.index.tables import read_index
from ragtune.llm import ChatRequest
from ragtune.synth.context import SynthContext
from ragtune.synth.prompts import SYSTEM
from ragtune.synth.records import QARecord
from ragtune.synth.strategies import STRATEGIES, Generated
from ragtune.workspace import Workspace
from support import FunctionChatBackend

DIA_ID = re.compile(r"^D\d+:\d+$")
NOT_JSON = "Sure! Here is what I think about it, in prose rather than JSON."


# --- the fake teacher ------------------------------------------------------------------------


@dataclass
class TeacherRules:
    """Which requests the fake teacher answers badly (filled in from the index)."""

    not_json_entity: str = ""
    unnamed_entity: str = ""
    not_json_unit: str = ""
    not_json_sentence: str = "lake sunrise"
    not_json_reduce: str = "necklace"
    no_points_question: str = "What are the main themes of your memory?"
    prompts: list[str] = field(default_factory=list)


def _first_user(request: ChatRequest) -> str:
    return next(m["content"] for m in request.messages if m["role"] == "user")


def _quoted(prompt: str) -> str:
    start = prompt.index('"""\n') + 4
    return prompt[start : prompt.index('\n"""', start)]


def _first_sentence(unit_text: str) -> str:
    line = next(line for line in unit_text.splitlines() if line.strip())
    body = re.sub(r"^(?:Caroline|Melanie): ", "", line.strip())
    return re.split(r"(?<=[.!?])\s", body)[0]


def fake_teacher(rules: TeacherRules) -> FunctionChatBackend:
    """A teacher answering each synthesis prompt with JSON that fits its schema (except where
    `rules` says to answer with prose), chosen by the request's first user message."""

    def respond(request: ChatRequest) -> str:
        assert request.messages[0]["content"] == SYSTEM
        prompt = _first_user(request)
        rules.prompts.append(prompt)
        if prompt.startswith("Here is an entity from the memories."):
            name = re.search(r"^Entity: (.+)$", prompt, re.MULTILINE)
            assert name is not None
            title = name.group(1)
            if title == rules.not_json_entity:
                return NOT_JSON
            question = (
                "What happened to them?"
                if title == rules.unnamed_entity
                else f"What do the memories say about {title}?"
            )
            return json.dumps(
                {
                    "question": question,
                    "reasoning": f"The passages mention {title}.",
                    "answer": f"{title} is in the memories.",
                }
            )
        if prompt.startswith("Here is a relationship between two entities"):
            ends = re.search(r"^Between: (.+) and (.+)$", prompt, re.MULTILINE)
            assert ends is not None
            a, b = ends.groups()
            return json.dumps(
                {
                    "question": f"How are {a} and {b} related?",
                    "reasoning": f"{a} and {b} appear together.",
                    "answer": f"{a} is related to {b}.",
                }
            )
        if prompt.startswith("Here is a passage from the memories"):
            text = _quoted(prompt)
            if text == rules.not_json_unit:
                return NOT_JSON
            quote = _first_sentence(text)
            return json.dumps(
                {
                    "questions": [
                        {
                            "question": f"What was said first in: {quote}?",
                            "paraphrases": [f"Which words open: {quote}?", f"Opening: {quote}?"],
                            "answer": quote,
                            "quote": quote,
                        },
                        {
                            "question": "What did the astronaut eat on the moon?",
                            "paraphrases": [],
                            "answer": "Cheese",
                            "quote": "The astronaut ate cheese on the moon.",
                        },
                    ]
                }
            )
        if prompt.startswith("In a conversation on"):
            said = re.search(r'^In a conversation on .+?, (.+?) said: "(.+)"$', prompt, re.M)
            assert said is not None
            speaker, sentence = said.groups()
            if rules.not_json_sentence in sentence:
                return NOT_JSON
            return json.dumps(
                {
                    "question": f"When did {speaker} say this happened: {sentence}",
                    "paraphrases": [f"On what day, by {speaker}'s words: {sentence}"],
                }
            )
        if prompt.startswith("Question: ") and "\nHere is a report" in prompt:
            question = prompt.split("\n", 1)[0][len("Question: ") :]
            if question == rules.no_points_question:
                return json.dumps({"points": []})
            report = prompt.split("Here is a report about part of the memories:\n", 1)[1]
            title = report.split("\n", 1)[0].lstrip("# ").strip()
            return json.dumps(
                {
                    "points": [
                        {"description": f"Point from {title}", "score": 80},
                        {"description": "A useless point", "score": 0},
                    ]
                }
            )
        if prompt.startswith("Question: ") and "\nKey points from reports" in prompt:
            question = prompt.split("\n", 1)[0][len("Question: ") :]
            if rules.not_json_reduce in question:
                return NOT_JSON
            points = [line[2:] for line in prompt.splitlines() if line.startswith("- ")]
            return json.dumps({"answer": f"Reduced: {points[0]}"})
        raise AssertionError(f"unexpected request: {prompt[:200]}")

    return FunctionChatBackend(respond, native=True)


# --- every strategy run once, in the pipeline's order ----------------------------------------


@dataclass
class Run:
    """What every strategy wrote (`run_all`) on one context, and what each was given."""

    context: SynthContext
    config: MemoryConfig
    generated: dict[str, Generated]
    earlier: dict[str, list[QARecord]]
    rules: TeacherRules | None = None

    def records(self, name: str) -> list[QARecord]:
        return self.generated[name].records

    @property
    def prompts(self) -> list[str]:
        """The user prompts the fake teacher was sent (repairs included)."""
        assert self.rules is not None
        return self.rules.prompts


def context_of(
    workspace: Workspace,
    config: MemoryConfig,
    teacher: FunctionChatBackend | None = None,
) -> SynthContext:
    """The synthesis context of `workspace`: heuristic, or written by `teacher` if given."""
    return SynthContext(
        read_text_units(workspace.text_units_path),
        read_documents(workspace.documents_path),
        read_index(workspace),
        config.synth,
        teacher=teacher,
        writer="llm" if teacher else "heuristic",
    )


def run_all(
    context: SynthContext, config: MemoryConfig
) -> tuple[dict[str, Generated], dict[str, list[QARecord]]]:
    """Every strategy in the pipeline's order, each given the records of those before it."""
    generated: dict[str, Generated] = {}
    earlier: dict[str, list[QARecord]] = {}
    kept: list[QARecord] = []
    for name, cls in STRATEGIES.items():
        earlier[name] = list(kept)
        generated[name] = cls(getattr(config.synth, name)).generate(context, kept)
        kept += generated[name].records
    return generated, earlier


# --- looking into the records ----------------------------------------------------------------


def group_by_fact(records: Sequence[QARecord]) -> dict[str, list[QARecord]]:
    groups: dict[str, list[QARecord]] = defaultdict(list)
    for record in records:
        groups[record.fact_id].append(record)
    return groups


def record_asking(records: Sequence[QARecord], question: str) -> QARecord:
    found = [r for r in records if r.question == question]
    assert len(found) == 1, (question, [r.question for r in records])
    return found[0]


def turn_speakers(context: SynthContext) -> dict[str, str]:
    return {t.id: t.speaker for d in context.documents.values() for t in d.turns}
