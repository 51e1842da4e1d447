"""An LLM judge, any `ChatBackend` (``--judge SPEC``):

- LoCoMo-style correctness: is the answer correct against the gold answer?
- GraphRAG-style pairwise comparison of two answers on comprehensiveness, diversity,
  empowerment and directness. Each pair is judged in **both** orders; a criterion whose winner
  changes with the order is a tie (the official RAG-Tuned-LLM evaluation asked once).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ragtune.llm.types import ChatRequest, GenerationParams, Message

#: The pairwise criteria and what each asks, after GraphRAG's evaluation.
CRITERIA = {
    "comprehensiveness": "How much detail does the answer give to cover the question fully?",
    "diversity": "How varied and rich is the answer in perspectives and insights?",
    "empowerment": "How well does the answer help the reader understand and judge the topic?",
    "directness": "How specifically and clearly does the answer address the question?",
}

Outcome = Literal["first", "second", "tie"]

CORRECTNESS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "reasoning": {"type": "string"},
        "label": {"type": "string", "enum": ["CORRECT", "WRONG"]},
    },
    "required": ["label"],
}

PAIRWISE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {name: {"type": "integer", "enum": [1, 2]} for name in CRITERIA},
    "required": list(CRITERIA),
}

_PARAMS = GenerationParams(max_tokens=256)


def correctness_request(question: str, gold: str, prediction: str) -> ChatRequest:
    """The judge's correct/incorrect question about one answer (LoCoMo-style: generous about
    wording and length, strict about the fact; a date in another format is the same date)."""
    prompt = (
        "You grade an answer to a question about a conversation against the gold answer.\n"
        "Label it CORRECT if it states the same fact as the gold answer, even in other words, "
        "at another length or with a date in another format; label it WRONG otherwise.\n\n"
        f"Question: {question}\nGold answer: {gold}\nAnswer to grade: {prediction}\n\n"
        'Reply with JSON: {"reasoning": "<one sentence>", "label": "CORRECT" or "WRONG"}.'
    )
    return ChatRequest([Message(role="user", content=prompt)], _PARAMS, CORRECTNESS_SCHEMA)


def pairwise_request(question: str, answer_1: str, answer_2: str) -> ChatRequest:
    """The judge's comparison of two answers, answer 1 shown first."""
    criteria = "\n".join(f"- {name}: {text}" for name, text in CRITERIA.items())
    keys = ", ".join(f'"{name}": 1 or 2' for name in CRITERIA)
    prompt = (
        "Compare two answers to the same question on each criterion below, and say which "
        f"answer is better on it.\n{criteria}\n\nQuestion: {question}\n\n"
        f"Answer 1: {answer_1}\n\nAnswer 2: {answer_2}\n\nReply with JSON: {{{keys}}}."
    )
    return ChatRequest([Message(role="user", content=prompt)], _PARAMS, PAIRWISE_SCHEMA)


def combine_orders(
    shown_first: dict[str, int] | None, shown_second: dict[str, int] | None
) -> dict[str, Outcome]:
    """Per criterion, the winner of a pair judged as (first, second) and as (second, first);
    a tie when the two orders disagree or a verdict is missing."""
    outcomes: dict[str, Outcome] = {}
    for name in CRITERIA:
        a = (shown_first or {}).get(name)
        b = (shown_second or {}).get(name)
        if a == 1 and b == 2:
            outcomes[name] = "first"
        elif a == 2 and b == 1:
            outcomes[name] = "second"
        else:
            outcomes[name] = "tie"
    return outcomes


@dataclass
class PairwiseTally:
    """How one system fared against another, per criterion, over the questions."""

    system: str
    against: str
    wins: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CRITERIA, 0))
    losses: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CRITERIA, 0))
    ties: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CRITERIA, 0))

    def add(self, outcomes: dict[str, Outcome]) -> None:
        """Count one question's outcomes (``first`` is `system`)."""
        for name, outcome in outcomes.items():
            tally = {"first": self.wins, "second": self.losses, "tie": self.ties}[outcome]
            tally[name] += 1

    def to_json(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "against": self.against,
            "wins": self.wins,
            "losses": self.losses,
            "ties": self.ties,
        }


@dataclass
class JudgeReport:
    """What the judge said.

    Attributes:
        judge: The judge model's name.
        correct: Per system, its share of answers judged correct (categories 1–4).
        pairwise: The first system against each other system.
        failures: Judge replies that could not be parsed (counted as no verdict / tie).
    """

    judge: str
    correct: dict[str, float]
    pairwise: list[PairwiseTally]
    failures: int

    def to_json(self) -> dict[str, Any]:
        return {
            "judge": self.judge,
            "correct": {k: round(v, 4) for k, v in self.correct.items()},
            "pairwise": [tally.to_json() for tally in self.pairwise],
            "failures": self.failures,
        }


def judge_runs(judge: Any, runs: Sequence[Any], *, progress: bool = False) -> JudgeReport:
    """Judge every answer of `runs` (`SystemRun`s over the same questions) for correctness
    (categories 1–4) and compare the first run's answers with each other run's, both orders.
    Sets each run's `judged`."""
    from ragtune.eval.locomo_scoring import ANSWERED_CATEGORIES

    requests: list[ChatRequest] = []
    slots: list[tuple[str, int, int]] = []  # (kind, run index, answer index)
    for r, run in enumerate(runs):
        for i, scored in enumerate(run.answers):
            if scored.question.category in ANSWERED_CATEGORIES:
                q = scored.question
                requests.append(correctness_request(q.question, q.answer, scored.answer.text))
                slots.append(("correct", r, i))
    first = runs[0] if runs else None
    for r, run in enumerate(runs[1:], start=1):
        assert first is not None
        for i, (mine, theirs) in enumerate(zip(first.answers, run.answers, strict=True)):
            question = mine.question.question
            requests.append(pairwise_request(question, mine.answer.text, theirs.answer.text))
            slots.append(("forward", r, i))
            requests.append(pairwise_request(question, theirs.answer.text, mine.answer.text))
            slots.append(("reverse", r, i))
    responses = judge.chat_batch(requests, progress=progress) if requests else []
    failures = sum(1 for response in responses if response.parsed is None)
    verdicts: dict[tuple[str, int, int], Any] = {
        slot: response.parsed for slot, response in zip(slots, responses, strict=True)
    }
    correct: dict[str, float] = {}
    for r, run in enumerate(runs):
        run.judged = []
        for i in range(len(run.answers)):
            parsed = verdicts.get(("correct", r, i))
            run.judged.append(None if parsed is None else parsed.get("label") == "CORRECT")
        labels = [v for v in run.judged if v is not None]
        correct[run.system] = sum(labels) / len(labels) if labels else 0.0
    tallies = []
    for r, run in enumerate(runs[1:], start=1):
        assert first is not None
        tally = PairwiseTally(first.system, run.system)
        for i in range(len(run.answers)):
            tally.add(
                combine_orders(verdicts.get(("forward", r, i)), verdicts.get(("reverse", r, i)))
            )
        tallies.append(tally)
    return JudgeReport(str(judge.model_name), correct, tallies, failures)
