"""Community reports: by a teacher model (GraphRAG's report shape), or extractively.

An extractive report is built from the community itself: its most connected entities, its
heaviest relationships and the sentences of its text units that mention the most members. A
teacher report asks the model for a title, summary, rating and findings from tables of the
community's entities and relationships; a report the teacher fails to write falls back to the
extractive one (and is counted).
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ragtune.hashing import content_hash
from ragtune.index.prompts import REPORT_SCHEMA, REPORT_SYSTEM, REPORT_USER
from ragtune.index.types import Community, CommunityReport, Entity, Finding, Relationship
from ragtune.llm.types import ChatBackend, ChatRequest, GenerationParams, Message
from ragtune.text.shorten import shorten

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_TOP_ENTITIES = 5
_TOP_RELATIONSHIPS = 5
_PASSAGES = 3
_CONTEXT_CHARS = 6000


@dataclass(frozen=True)
class CommunityContext:
    """What a report is written from: the community and its members, strongest first."""

    community: Community
    entities: list[Entity]
    relationships: list[Relationship]
    rank: float


@dataclass(frozen=True)
class ReportsResult:
    """The reports, and how many the teacher failed to write."""

    reports: list[CommunityReport]
    failed: int


def community_contexts(
    communities: Sequence[Community],
    entities: Sequence[Entity],
    relationships: Sequence[Relationship],
) -> list[CommunityContext]:
    """Each community with its entities (by degree) and relationships (by weight), and a rank
    from 0 to 10: its internal weight against the heaviest community of its level, on a log
    scale."""
    entity_by_id = {e.id: e for e in entities}
    relationship_by_id = {r.id: r for r in relationships}
    weights = {
        c.community: sum(relationship_by_id[r].weight for r in c.relationship_ids)
        for c in communities
    }
    heaviest: dict[int, float] = defaultdict(float)
    for c in communities:
        heaviest[c.level] = max(heaviest[c.level], weights[c.community])
    contexts = []
    for c in communities:
        members = sorted(
            (entity_by_id[e] for e in c.entity_ids), key=lambda e: (-e.degree, e.title)
        )
        inside = sorted(
            (relationship_by_id[r] for r in c.relationship_ids),
            key=lambda r: (-r.weight, r.source, r.target),
        )
        top = heaviest[c.level]
        rank = 10 * math.log1p(weights[c.community]) / math.log1p(top) if top > 0 else 0.0
        contexts.append(CommunityContext(c, members, inside, round(rank, 1)))
    return contexts


def extractive_report(context: CommunityContext, unit_texts: Mapping[str, str]) -> CommunityReport:
    """The report on a community made of its own data, with no model."""
    community = context.community
    top = context.entities[:_TOP_ENTITIES]
    names = [e.title for e in top[:3]]
    title = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    central = ", ".join(f"{e.title} ({e.type}, {e.degree} relationships)" for e in top)
    strongest = context.relationships[:_TOP_RELATIONSHIPS]
    ties = "; ".join(f"{r.source} – {r.target} (weight {r.weight:g})" for r in strongest[:3])
    summary = (
        f"A community of {len(context.entities)} entities and "
        f"{len(context.relationships)} relationships centred on {central}."
        + (f" Its strongest ties: {ties}." if ties else "")
    )
    findings = [Finding(f"About {e.title}", shorten(e.description, 400)) for e in top[:3]]
    findings += [
        Finding(f"{r.source} and {r.target}", shorten(r.description, 400)) for r in strongest
    ]
    passages = representative_sentences(context, unit_texts)
    explanation = (
        f"Rank {context.rank:g} of 10 from the total weight of its relationships, compared with "
        f"the heaviest community of level {community.level}."
    )
    content = {
        "title": title,
        "summary": summary,
        "rating": context.rank,
        "rating_explanation": explanation,
        "findings": [vars(f) for f in findings],
        "passages": passages,
    }
    return _report(community, content, findings, "extractive", passages)


def representative_sentences(
    context: CommunityContext, unit_texts: Mapping[str, str], limit: int = _PASSAGES
) -> list[str]:
    """The sentences of the community's text units that name the most of its members."""
    members = [e.title.lower() for e in context.entities[:50] if len(e.title) > 2]
    scored: list[tuple[int, int, str]] = []
    seen: set[str] = set()
    for order, unit_id in enumerate(context.community.text_unit_ids):
        for sentence in _SENTENCE_END.split(unit_texts.get(unit_id, "")):
            text = sentence.strip()
            lowered = text.lower()
            if len(text) < 20 or lowered in seen:
                continue
            seen.add(lowered)
            hits = sum(name in lowered for name in members)
            if hits >= 2:
                scored.append((-hits, order, text))
    return [shorten(text, 300) for _, _, text in sorted(scored)[:limit]]


class TeacherReportWriter:
    """Writes community reports with a teacher model (structured output).

    Args:
        backend: The teacher.
        max_tokens: The most tokens of one report.
    """

    def __init__(self, backend: ChatBackend, *, max_tokens: int = 1024) -> None:
        self.backend = backend
        self.max_tokens = max_tokens

    def write(
        self,
        contexts: Sequence[CommunityContext],
        unit_texts: Mapping[str, str],
        *,
        progress: bool = False,
    ) -> ReportsResult:
        """One report per community; extractive where the teacher's answer never fit."""
        requests = [
            ChatRequest(
                [
                    Message(role="system", content=REPORT_SYSTEM),
                    Message(role="user", content=report_prompt(context)),
                ],
                GenerationParams(max_tokens=self.max_tokens),
                REPORT_SCHEMA,
            )
            for context in contexts
        ]
        answers = self.backend.chat_batch(requests, progress=progress) if requests else []
        reports, failed = [], 0
        for context, answer in zip(contexts, answers, strict=True):
            if answer.error is not None or not isinstance(answer.parsed, dict):
                failed += 1
                reports.append(extractive_report(context, unit_texts))
                continue
            value: dict[str, Any] = answer.parsed
            findings = [Finding(f["summary"], f["explanation"]) for f in value["findings"]]
            reports.append(_report(context.community, value, findings, "llm", []))
        return ReportsResult(reports, failed)


def report_prompt(context: CommunityContext) -> str:
    """The user message asking for a report on one community, its tables cut to fit."""
    entity_lines = ["id,entity,type,description"]
    for n, e in enumerate(context.entities):
        entity_lines.append(f"{n},{e.title},{e.type},{shorten(e.description, 300)}")
    relationship_lines = ["id,source,target,description"]
    for n, r in enumerate(context.relationships):
        relationship_lines.append(f"{n},{r.source},{r.target},{shorten(r.description, 300)}")
    entities = _fit(entity_lines, _CONTEXT_CHARS // 2)
    relationships = _fit(relationship_lines, _CONTEXT_CHARS // 2)
    return REPORT_USER.format(entities=entities, relationships=relationships)


def _report(
    community: Community,
    content: dict[str, Any],
    findings: list[Finding],
    generated_by: str,
    passages: list[str],
) -> CommunityReport:
    title, summary = str(content["title"]).strip(), str(content["summary"]).strip()
    sections = [f"# {title}", summary]
    sections += [f"## {f.summary}\n\n{f.explanation}" for f in findings]
    if passages:
        sections.append("## Representative passages\n\n" + "\n".join(f"> {p}" for p in passages))
    return CommunityReport(
        id="rep-" + content_hash(community.id),
        community=community.community,
        level=community.level,
        parent=community.parent,
        children=community.children,
        title=title,
        summary=summary,
        full_content="\n\n".join(sections),
        rank=float(content["rating"]),
        rating_explanation=str(content["rating_explanation"]),
        findings=tuple(findings),
        full_content_json=json.dumps(content, ensure_ascii=False),
        period=community.period,
        size=community.size,
        generated_by=generated_by,
    )


def _fit(lines: list[str], max_chars: int) -> str:
    kept: list[str] = []
    used = 0
    for line in lines:
        if used + len(line) + 1 > max_chars and kept:
            break
        kept.append(line)
        used += len(line) + 1
    return "\n".join(kept)
