"""Global QA: whole-memory questions, answered map-reduce from community reports as GraphRAG's
global search answers them.

Three families: per community ("What are the main themes around Caroline and the LGBTQ
community?", read from the community's report and its sub-communities' reports), across the
top level ("What are the main themes of your memory?", read from the top-level reports), and
people over time ("How has Melanie changed over time?", read from what they said, oldest
first). Map: each report contributes its key points, scored; reduce: the best points make the
answer. With a teacher both steps are the teacher's (GraphRAG's map and reduce prompts); without
one, the points are the reports' findings, ranked by the report's rank.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ragtune.index.types import Community, CommunityReport
from ragtune.synth import prompts
from ragtune.synth.context import SynthContext, UnitSentence
from ragtune.synth.language import first_person_facts
from ragtune.synth.records import QARecord, fact_id, paraphrase_records
from ragtune.synth.settings import GlobalSettings
from ragtune.synth.strategies.base import Generated, Strategy, teacher_answers
from ragtune.text.shorten import shorten

COMMUNITY_QUESTIONS = (
    "What are the main themes around {title}?",
    "What do you remember about {title}, overall?",
    "Summarize what your memory says about {title}.",
    "What are the key points about {title}?",
)
MEMORY_QUESTIONS = (
    "What are the main themes of your memory?",
    "What topics come up most often in your memory?",
    "Give me an overview of everything you remember.",
)
TIMELINE_QUESTIONS = (
    "How has {name} changed over time?",
    "What happened to {name} over time?",
    "How did things develop for {name} over time?",
)


@dataclass(frozen=True)
class _Question:
    questions: list[str]
    reports: list[CommunityReport]
    sources: tuple[str, ...]
    key: str


class GlobalQA(Strategy):
    """Questions about themes and change over time, answered from community reports."""

    name: ClassVar[str] = "global_qa"
    kinds: ClassVar[tuple[str, ...]] = ("global",)
    settings_class = GlobalSettings
    settings: GlobalSettings

    def generate(
        self, context: SynthContext, earlier: Sequence[QARecord], *, progress: bool = False
    ) -> Generated:
        """Community and whole-memory questions (map-reduce over reports) and timelines."""
        rng = context.rng(self.name)
        asked = self._community_questions(context, rng) + self._memory_questions(context)
        result = Generated()
        if context.writer == "llm":
            answers = self._teacher_answers(context, asked, result, progress)
        else:
            answers = [self._extractive_answer(item) for item in asked]
        for item, answer in zip(asked, answers, strict=True):
            if answer:
                support = "\n\n".join(report.full_content for report in item.reports)
                result.records += _records(item.questions, answer, item.sources, item.key, support)
        for name in context.people()[: self.settings.timelines]:
            timeline = self._timeline(context, name)
            if timeline is None:
                continue
            answer, sources, evidence = timeline
            count = min(self.settings.per_community, len(TIMELINE_QUESTIONS))
            questions = [t.format(name=name) for t in rng.sample(TIMELINE_QUESTIONS, count)]
            result.records += _records(
                questions, answer, sources, f"timeline {name}", None, evidence
            )
        return result

    def _community_questions(self, context: SynthContext, rng: Any) -> list[_Question]:
        reports = {report.community: report for report in context.index.reports}
        communities = {c.community: c for c in context.index.communities}
        ranked = sorted(
            (c for c in communities.values() if c.community in reports),
            key=lambda c: (-reports[c.community].rank, c.level, c.community),
        )[: self.settings.max_communities]
        count = min(self.settings.per_community, len(COMMUNITY_QUESTIONS))
        asked = []
        for community in ranked:
            report = reports[community.community]
            children = sorted(
                (reports[n] for n in community.children if n in reports), key=lambda r: -r.rank
            )
            read = [report, *children][: self.settings.max_reports]
            questions = [
                t.format(title=report.title) for t in rng.sample(COMMUNITY_QUESTIONS, count)
            ]
            asked.append(
                _Question(
                    questions,
                    read,
                    context.in_order(community.text_unit_ids),
                    f"community {community.id}",
                )
            )
        return asked

    def _memory_questions(self, context: SynthContext) -> list[_Question]:
        top = sorted(
            (r for r in context.index.reports if r.level == 0), key=lambda r: (-r.rank, r.community)
        )[: self.settings.max_reports]
        if not top:
            return []
        communities = {c.community: c for c in context.index.communities}
        units = [u for r in top for u in _units_of(communities.get(r.community))]
        count = min(self.settings.per_community, len(MEMORY_QUESTIONS))
        return [_Question(list(MEMORY_QUESTIONS[:count]), top, context.in_order(units), "memory")]

    def _extractive_answer(self, item: _Question) -> str | None:
        """The reduce step without a model: the highest-ranked reports' findings."""
        if len(item.reports) > 1 and item.key == "memory":
            lines = [f"- {r.title}: {shorten(r.summary, 240)}" for r in item.reports]
            return "The main themes of the memory are:\n" + "\n".join(lines)
        points = [
            f"- {finding.summary}: {shorten(finding.explanation, 300)}"
            for report in item.reports
            for finding in report.findings
        ][: self.settings.max_points]
        if not points:
            return None
        return f"The main points about {item.reports[0].title} are:\n" + "\n".join(points)

    def _teacher_answers(
        self, context: SynthContext, asked: list[_Question], result: Generated, progress: bool
    ) -> list[str | None]:
        """GraphRAG's global search: map each report to scored points, reduce the best."""
        jobs = [(n, report) for n, item in enumerate(asked) for report in item.reports]
        mapped = teacher_answers(
            context,
            [
                prompts.GLOBAL_MAP_USER.format(
                    question=asked[n].questions[0], report=shorten(report.full_content, 6000)
                )
                for n, report in jobs
            ],
            prompts.GLOBAL_MAP_SCHEMA,
            desc="global QA (map)",
            progress=progress,
        )
        points: list[list[tuple[float, str]]] = [[] for _ in asked]
        for (n, _), answer in zip(jobs, mapped, strict=True):
            if not isinstance(answer, dict) or not isinstance(answer.get("points"), list):
                result.drop("malformed teacher output", "global")
                continue
            for point in answer["points"]:
                if isinstance(point, dict) and str(point.get("description", "")).strip():
                    score = point.get("score")
                    value = float(score) if isinstance(score, int | float) else 0.0
                    if value > 0:
                        points[n].append((value, str(point["description"]).strip()))
        reducible = [n for n in range(len(asked)) if points[n]]
        reduced = teacher_answers(
            context,
            [
                prompts.GLOBAL_REDUCE_USER.format(
                    question=asked[n].questions[0],
                    points="\n".join(
                        f"- {text}"
                        for _, text in sorted(points[n], key=lambda p: -p[0])[
                            : self.settings.max_points * 2
                        ]
                    ),
                )
                for n in reducible
            ],
            prompts.GLOBAL_REDUCE_SCHEMA,
            desc="global QA (reduce)",
            progress=progress,
        )
        answers: list[str | None] = [None] * len(asked)
        for n, answer in zip(reducible, reduced, strict=True):
            text = str(answer.get("answer", "")).strip() if isinstance(answer, dict) else ""
            if text:
                answers[n] = text
            else:
                result.drop("malformed teacher output", "global")
        result.drop("no relevant points", "global", len(asked) - len(reducible))
        return answers

    def _timeline(
        self, context: SynthContext, name: str
    ) -> tuple[str, tuple[str, ...], tuple[str, ...]] | None:
        """What `name` said (or what was said of them), one statement per day, spread over
        the whole time span, oldest first."""
        by_day: dict[str, UnitSentence] = {}
        for unit in context.units:
            if not unit.timestamp:
                continue
            for sentence in context.sentences(unit.id):
                if sentence.caption is not None or sentence.day in by_day or not sentence.day:
                    continue
                if sentence.speaker == name and first_person_facts(sentence.text, name):
                    by_day[sentence.day] = sentence
        if len(by_day) < 2:
            return None
        days = sorted(by_day.values(), key=lambda s: (s.written or "", context.order[s.unit_id]))
        limit = self.settings.max_points
        if len(days) > limit:
            step = (len(days) - 1) / (limit - 1) if limit > 1 else 0
            days = [days[round(n * step)] for n in range(limit)]
        lines = [f"- {s.day}: {name} said “{s.text}”" for s in days]
        answer = f"Over time, {name} said:\n" + "\n".join(lines)
        evidence = tuple(s.turn_id for s in days if s.turn_id)
        return answer, context.in_order(s.unit_id for s in days), evidence


def _units_of(community: Community | None) -> tuple[str, ...]:
    return community.text_unit_ids if community else ()


def _records(
    questions: Sequence[str],
    answer: str,
    sources: tuple[str, ...],
    key: str,
    support: str | None,
    evidence: tuple[str, ...] = (),
) -> list[QARecord]:
    return paraphrase_records(
        questions,
        answer,
        kind="global",
        fact=fact_id("global", key),
        source_ids=sources,
        query_scope="global",
        evidence=evidence,
        support=support,
    )
