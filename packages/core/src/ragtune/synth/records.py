"""Training records: one question, its answer, and where the answer comes from.

A record is written as one line of TRL's conversational prompt-completion format, with the
fields that make it traceable alongside::

    {"prompt": [{"role": "user", "content": "When did Caroline go to ...?"}],
     "completion": [{"role": "assistant", "content": "7 May 2023."}],
     "kind": "temporal", "query_scope": "local", "source_ids": ["tu-..."],
     "fact_id": "fact-...", "evidence": ["D1:3"]}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ragtune.errors import RagtuneError
from ragtune.hashing import content_hash
from ragtune.prompts import answer_messages, memory_messages
from ragtune.text.dates import when_phrase

Scope = Literal["local", "global"]

#: Every record kind the built-in strategies write.
KINDS = (
    "entity_template",
    "relationship_template",
    "entity_cot",
    "relationship_cot",
    "text_unit",
    "global",
    "temporal",
    "unanswerable",
    "profile",
    "recall",
)


@dataclass(frozen=True)
class Statement:
    """A fact said as a sentence about someone by name, with its date: what profiles restate.

    Attributes:
        about: Who the fact is about (None: the memory's owner, "you").
        body: The fact, without a final stop ("Caroline went to a LGBTQ support group").
        when: The time the fact's sentence names, resolved ("7 May 2023", "the week before
            9 June 2023"), else the day it was told, if known.
    """

    about: str | None
    body: str
    when: str | None = None

    @property
    def text(self) -> str:
        """The statement as a sentence: "On 7 May 2023, Caroline went to ..."."""
        body = self.body.rstrip(" .")
        return f"{when_phrase(self.when)}, {body}." if self.when else f"{body}."


@dataclass(frozen=True)
class QARecord:
    """One synthesized question and answer.

    Attributes:
        question: What the user asks.
        answer: What the tuned model should answer.
        kind: The strategy's record kind (``entity_template``, ``temporal``, ...).
        query_scope: ``local`` (a specific fact) or ``global`` (the whole memory or a theme).
        source_ids: The text units the answer comes from, in corpus order (empty for
            unanswerable questions).
        fact_id: Records that state the same fact in other words share it (paraphrases).
        evidence: The conversation turns (LoCoMo ``dia_id``s) the answer quotes, when known.
        support: The context the grounding filter checks the answer against, when it is not
            just the source units' text (an entity's description); not written out.
        statements: The fact said as sentences about the person it concerns, when the
            strategy knows them (profiles restate them); not written out.
    """

    question: str
    answer: str
    kind: str
    query_scope: Scope
    source_ids: tuple[str, ...]
    fact_id: str
    evidence: tuple[str, ...] = ()
    support: str | None = field(default=None, compare=False)
    statements: tuple[Statement, ...] = field(default=(), compare=False)

    def to_json(self) -> dict[str, Any]:
        """The record as a line of `train.jsonl` (TRL conversational prompt-completion)."""
        return {
            "prompt": memory_messages(answer_messages(self.question)),
            "completion": [{"role": "assistant", "content": self.answer}],
            "kind": self.kind,
            "query_scope": self.query_scope,
            "source_ids": list(self.source_ids),
            "fact_id": self.fact_id,
            "evidence": list(self.evidence),
        }

    @classmethod
    def from_json(cls, record: dict[str, Any], *, where: str = "record") -> QARecord:
        """The record `to_json` wrote.

        Raises:
            RagtuneError: the record lacks a field or a field has the wrong shape.
        """
        try:
            prompt, completion = record["prompt"], record["completion"]
            return cls(
                question=str(prompt[-1]["content"]),
                answer=str(completion[-1]["content"]),
                kind=str(record["kind"]),
                query_scope=record["query_scope"],
                source_ids=tuple(record["source_ids"]),
                fact_id=str(record["fact_id"]),
                evidence=tuple(record.get("evidence", ())),
            )
        except (KeyError, IndexError, TypeError) as error:
            raise RagtuneError(f"{where} is not a training record ({error!r})") from None


def paraphrase_records(
    questions: Sequence[str],
    answer: str,
    *,
    kind: str,
    fact: str,
    source_ids: tuple[str, ...],
    query_scope: Scope = "local",
    evidence: tuple[str, ...] = (),
    support: str | None = None,
    statements: tuple[Statement, ...] = (),
) -> list[QARecord]:
    """One record per question, all stating the same fact (`fact`, a `fact_id`) with `answer`."""
    return [
        QARecord(
            question=question,
            answer=answer,
            kind=kind,
            query_scope=query_scope,
            source_ids=source_ids,
            fact_id=fact,
            evidence=evidence,
            support=support,
            statements=statements,
        )
        for question in questions
    ]


def fact_id(kind: str, *parts: str | Sequence[str]) -> str:
    """The id shared by the paraphrases of one fact: a hash of its kind and what defines it."""
    flat = [part if isinstance(part, str) else "\x1f".join(part) for part in parts]
    return "fact-" + content_hash(kind, *flat)
