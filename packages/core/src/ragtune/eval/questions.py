"""The questions an evaluation asks: LoCoMo QA (of the conversations the workspace holds) or
JSONL records ``{"question", "answer", "category"}``; and a smaller set that keeps every
category (`pick`)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragtune.errors import RagtuneError
from ragtune.eval.locomo_scoring import CATEGORY_NAMES
from ragtune.fileio import json_lines

_TURN_ID = re.compile(r"D\d+:\d+")

#: The category of JSONL questions that give none: scored by plain token F1.
DEFAULT_CATEGORY = 4


@dataclass(frozen=True)
class Question:
    """One question with its gold answer.

    Attributes:
        id: Where it comes from (``conv-30#12``, ``questions.jsonl:3``).
        question: The question.
        answer: The gold answer ("" for LoCoMo's adversarial questions, which have none).
        category: Its LoCoMo category (1 multi-hop, 2 temporal, 3 open-domain, 4 single-hop,
            5 adversarial).
        evidence: The turns (LoCoMo ``dia_id``s) holding the answer, if known.
        conversation: The conversation it is about (LoCoMo's ``sample_id``; a JSONL record's
            ``"conversation"``), if known: reports group questions by it.
    """

    id: str
    question: str
    answer: str
    category: int
    evidence: tuple[str, ...] = ()
    conversation: str | None = None


def load_questions(path: Path, *, conversations: Collection[str] | None = None) -> list[Question]:
    """The questions in `path`: a LoCoMo JSON file (only the QA of `conversations`, when given:
    a workspace's, which may be none) or a JSONL file.

    Raises:
        RagtuneError: the file is missing or malformed (naming the record), or it holds no QA
            of `conversations`.
    """
    if not path.is_file():
        raise RagtuneError("no such questions file", path=path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise RagtuneError(
            f"is not UTF-8 text (byte {error.start}); give LoCoMo JSON or a .jsonl file",
            path=path,
        ) from None
    if path.suffix == ".jsonl":
        return _jsonl_questions(path, text)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise RagtuneError(
            f"is not JSON ({error.msg}); give LoCoMo JSON or a .jsonl file",
            path=path,
            location=f"line {error.lineno}",
        ) from None
    return _locomo_questions(path, data, conversations)


def _locomo_questions(
    path: Path, data: Any, conversations: Collection[str] | None
) -> list[Question]:
    if conversations is not None and not conversations:
        raise RagtuneError(
            "is LoCoMo QA, but the workspace holds no LoCoMo conversation (its documents have "
            "no sample_id), so no question is about it; give a .jsonl questions file",
            path=path,
        )
    records = data if isinstance(data, list) else [data]
    found: list[Question] = []
    names = []
    for number, record in enumerate(records, start=1):
        if not isinstance(record, dict) or not isinstance(record.get("qa"), list):
            raise RagtuneError(
                'is not LoCoMo: it has no "qa" list', path=path, location=f"record {number}"
            )
        name = str(record.get("sample_id", f"record {number}"))
        names.append(name)
        if conversations is not None and name not in conversations:
            continue
        for index, qa in enumerate(record["qa"]):
            where = f"{name} qa {index}"
            found.append(_question(path, qa, where, f"{name}#{index}", conversation=name))
    if not found:
        wanted = ", ".join(sorted(conversations or ())) or "any"
        raise RagtuneError(
            f"has no QA of the workspace's conversations ({wanted}); it has {', '.join(names)}",
            path=path,
        )
    return found


def _jsonl_questions(path: Path, text: str) -> list[Question]:
    found = [
        _question(path, record, f"line {number}", f"{path.name}:{number}")
        for number, record in json_lines(path, text.splitlines())
    ]
    if not found:
        raise RagtuneError("holds no questions", path=path)
    return found


def _question(
    path: Path, record: Any, where: str, question_id: str, *, conversation: str | None = None
) -> Question:
    if not isinstance(record, dict):
        raise RagtuneError("is not an object", path=path, location=where)
    question = record.get("question")
    if not isinstance(question, str) or not question.strip():
        raise RagtuneError('has no "question" text', path=path, location=where)
    category = record.get("category", DEFAULT_CATEGORY)
    if (
        not isinstance(category, int)
        or isinstance(category, bool)
        or category not in CATEGORY_NAMES
    ):
        raise RagtuneError(
            f"category {category!r} is not a LoCoMo category (1-5)", path=path, location=where
        )
    answer = record.get("answer", record.get("adversarial_answer", "") if category == 5 else None)
    if not isinstance(answer, (str, int, float)) or isinstance(answer, bool):
        raise RagtuneError('has no "answer"', path=path, location=where)
    evidence = record.get("evidence", ())
    if conversation is None and record.get("conversation") is not None:
        conversation = str(record["conversation"])
    return Question(
        id=question_id,
        question=question.strip(),
        answer=str(answer),
        category=int(category),
        evidence=_turn_ids(evidence),
        conversation=conversation,
    )


def _turn_ids(evidence: Any) -> tuple[str, ...]:
    """The turn ids of an ``evidence`` list. LoCoMo sometimes puts two in one entry
    (``"D8:6; D9:17"``): every ``D<session>:<turn>`` found counts; other entries stay as given."""
    if not isinstance(evidence, list):
        return ()
    found: list[str] = []
    for entry in evidence:
        text = str(entry)
        found.extend(_TURN_ID.findall(text) or [text.strip()])
    return tuple(found)


def pick(questions: Sequence[Question], limit: int | None) -> list[Question]:
    """At most `limit` of `questions`, every category keeping its share (at least one each
    while `limit` allows), the first ones of each category, in the original order."""
    if limit is None or limit >= len(questions):
        return list(questions)
    by_category: dict[int, list[int]] = {}
    for position, question in enumerate(questions):
        by_category.setdefault(question.category, []).append(position)
    shares = {c: len(p) * limit / len(questions) for c, p in by_category.items()}
    quota = {c: min(len(by_category[c]), max(1, math.floor(s))) for c, s in shares.items()}
    while sum(quota.values()) > limit:  # the minimum of one each can overshoot a tiny limit
        largest = max(quota, key=lambda c: quota[c])
        quota[largest] -= 1
    for category in sorted(shares, key=lambda c: shares[c] - math.floor(shares[c]), reverse=True):
        if sum(quota.values()) >= limit:
            break
        if quota[category] < len(by_category[category]):
            quota[category] += 1
    chosen = sorted(p for c, positions in by_category.items() for p in positions[: quota[c]])
    return [questions[p] for p in chosen]
