"""The shared scenario of the LLM index-path tests: three one-unit notes about Rui and Ana Matos,
the fake teacher's canned answers for them, and small helpers (the fixtures that ingest them are
in `tests/conftest.py`).

Chunking uses the tiny test model's tokenizer, so nothing loads a real model.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ragtune.config import MemoryConfig
from ragtune.index.pipeline import IndexReport, build_index
from ragtune.index.types import Entity, MemoryIndex, Relationship
from ragtune.llm import ChatRequest
from ragtune.llm.cache import CachedChatBackend
from ragtune.workspace import Workspace
from support import (
    FunctionChatBackend,
    extraction_json,
    report_json,
    request_kind,
    unit_text,
)

TABLES = ("entities", "relationships", "communities", "community_reports")

#: One short note per file; each is one text unit. The marker words pick the fake's answers.
DOCS = {
    "01-founding.md": "Rui Matos founded Tidewater Kayaks in Porto.",
    "02-sister.md": "RUI MATOS's sister Ana Matos paddles with Tidewater Kayaks.",
    "03-market.md": "Ana Matos sells cheese at the Bolhao Market.",
}
FOUNDING, SISTER, MARKET = "founded", "sister", "cheese"

GOOD = {
    FOUNDING: extraction_json(
        [
            ("Rui Matos", "person", "Founded Tidewater Kayaks."),
            ("Tidewater Kayaks", "organization", "A kayak company in Porto."),
            ("Porto", "geo", "The city of Tidewater Kayaks."),
        ],
        [
            ("Rui Matos", "Tidewater Kayaks", "Rui Matos founded it.", 8),
            ("Tidewater Kayaks", "Porto", "It is based in Porto.", 6),
        ],
    ),
    SISTER: extraction_json(
        [
            ("RUI MATOS's", "person", "Has a sister, Ana Matos."),
            ("Ana Matos", "person", "Rui's sister."),
            ("Tidewater Kayaks", "organization", "Ana paddles with it."),
        ],
        [
            ("Ana Matos", "RUI MATOS's", "They are siblings.", 9),
            # Named as in unit 1, not as in this unit's entity list: still the same entity.
            ("Tidewater Kayaks", "Rui Matos", "Rui's company.", 5),
            ("Ana Matos", "Tidewater Kayaks", "Ana paddles with it.", 4),
        ],
    ),
    MARKET: extraction_json(
        [
            ("Ana Matos", "person", "Sells cheese."),
            ("Bolhao Market", "geo", "A market in Porto."),
        ],
        [("Ana Matos", "Bolhao Market", "Ana sells cheese there.", 7)],
    ),
}
NOTHING = extraction_json()
NOT_JSON = "Sure! Rui Matos is a person and Tidewater Kayaks is a company."
ENTITY_NAMES = ["Ana Matos", "Bolhao Market", "Porto", "Rui Matos", "Tidewater Kayaks"]


def marker(request: ChatRequest) -> str:
    """Which note an extraction request is about."""
    text = unit_text(request)
    [found] = [m for m in (FOUNDING, SISTER, MARKET) if m in text]
    return found


def answers(
    extract: Callable[[ChatRequest], str] | None = None,
    *,
    glean: Callable[[ChatRequest], str] | None = None,
    summarize: Callable[[ChatRequest], str] | None = None,
    report: Callable[[ChatRequest], str] | None = None,
) -> Callable[[ChatRequest], str]:
    """A fake teacher's `respond`: good extractions, empty gleanings, and a named summary and
    report, unless replaced."""

    def respond(request: ChatRequest) -> str:
        kind = request_kind(request)
        if kind == "extract":
            return extract(request) if extract else GOOD[marker(request)]
        if kind == "glean":
            return glean(request) if glean else NOTHING
        if kind == "summarize":
            return summarize(request) if summarize else "TEACHER: " + summarized_name(request)
        if kind == "report":
            return report(request) if report else report_json("Teacher report")
        raise AssertionError(f"unexpected request {request.messages!r}")

    return respond


def summarized_name(request: ChatRequest) -> str:
    """The entity (or relationship) a summary request names."""
    prompt = request.messages[-1]["content"]
    found = re.search(r'of (?:the entity|the relationship between) "(.*)" into one', prompt)
    assert found, request
    return found.group(1)


def by_title(index: MemoryIndex) -> dict[str, Entity]:
    return {entity.title: entity for entity in index.entities}


def pairs(index: MemoryIndex) -> dict[frozenset[str], Relationship]:
    return {frozenset((r.source, r.target)): r for r in index.relationships}


def build(
    workspace: Workspace, config: MemoryConfig, teacher: FunctionChatBackend | CachedChatBackend
) -> IndexReport:
    return build_index(workspace, config, teacher=teacher, progress=False)
