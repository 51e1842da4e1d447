"""Every prompt and JSON schema the synthesis stage sends to a teacher model, as data.

The chain-of-thought prompt follows the official RAG-Tuned-LLM data preparation (the teacher
sees an entity or relationship, its description and its source chunks, and writes a question
and a reasoned answer), asking for JSON and for a concise final answer at the end. Global
questions are answered map-reduce, as GraphRAG's global search does.
"""

from __future__ import annotations

from typing import Any

SYSTEM = (
    "You write training questions and answers about a person's memories (their chats, notes "
    "and documents). Every answer uses only the information given: never add facts. "
    "You answer with JSON only."
)

COT_ENTITY_USER = """Here is an entity from the memories.

Entity: {name}
Type: {type}
Description: {description}

Passages that mention it:
{context}

Write one question that names "{name}" and asks about it, and answer it with chain-of-thought \
reasoning: first restate the relevant facts from the passages, then reason over them, then end \
with a concise final answer. Use only facts from the description and the passages."""

COT_RELATIONSHIP_USER = """Here is a relationship between two entities from the memories.

Between: {source} and {target}
Description: {description}

Passages that state it:
{context}

Write one question that names both "{source}" and "{target}" and asks how they are related, \
and answer it with chain-of-thought reasoning: first restate the relevant facts from the \
passages, then reason over them, then end with a concise final answer. Use only facts from the \
description and the passages."""

COT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "question": {"type": "string"},
        "reasoning": {"type": "string"},
        "answer": {"type": "string"},
    },
    "required": ["question", "reasoning", "answer"],
}

TEXT_UNIT_USER = """Here is a passage from the memories{dated}.

\"\"\"
{text}
\"\"\"

Write {count} specific factual questions that this passage answers: who did what, with whom, \
where, when, what something is called, how many. Each answer is short: a span of the passage \
or a short fact it states. For each question give {paraphrases} other ways to ask it, the \
answer, and the sentence of the passage that supports the answer, copied exactly. Name people \
instead of using pronouns."""

TEXT_UNIT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "questions": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "question": {"type": "string"},
                    "paraphrases": {"type": "array", "items": {"type": "string"}},
                    "answer": {"type": "string"},
                    "quote": {"type": "string"},
                },
                "required": ["question", "paraphrases", "answer", "quote"],
            },
        }
    },
    "required": ["questions"],
}

TEMPORAL_USER = """In a conversation on {day}, {speaker} said: "{sentence}"
The time it mentions ("{expression}") is {date}.

Write a question asking when this happened, naming {speaker} and the event (not the date), and \
{paraphrases} other ways to ask it."""

TEMPORAL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "question": {"type": "string"},
        "paraphrases": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["question", "paraphrases"],
}

GLOBAL_MAP_USER = """Question: {question}

Here is a report about part of the memories:
{report}

List the key points of this report that help answer the question, each with a score from 0 \
(useless) to 100 (essential). Reply with an empty list if nothing helps."""

GLOBAL_MAP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "points": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "description": {"type": "string"},
                    "score": {"type": "number"},
                },
                "required": ["description", "score"],
            },
        }
    },
    "required": ["points"],
}

GLOBAL_REDUCE_USER = """Question: {question}

Key points from reports about the memories, the most important first:
{points}

Answer the question in a few paragraphs using only these key points."""

GLOBAL_REDUCE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
}
