"""The index stage: text units → entities, relationships, communities and community reports.

Extraction runs in batches that are saved as they finish (`ExtractionJournal`), so a killed run
resumes and a run after new documents were added extracts only their units; every teacher call
goes through the workspace's response cache. Merging, communities and reports are then
recomputed over all units (they are cheap next to extraction).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ragtune.corpus.tables import read_text_units
from ragtune.corpus.types import TextUnit
from ragtune.extras import require_extra
from ragtune.fileio import atomic_write_text
from ragtune.index.communities import detect_communities
from ragtune.index.heuristic import HeuristicExtractor
from ragtune.index.journal import ExtractionJournal
from ragtune.index.llm_extractor import LLMExtractor
from ragtune.index.merging import merge_extractions
from ragtune.index.reports import (
    CommunityContext,
    TeacherReportWriter,
    community_contexts,
    extractive_report,
)
from ragtune.index.settings import IndexInputs
from ragtune.index.summaries import TeacherSummarizer
from ragtune.index.tables import write_index
from ragtune.index.types import CommunityReport, MemoryIndex, UnitExtraction
from ragtune.llm.types import ChatBackend
from ragtune.progress import progress_bar
from ragtune.stages import runs_as_stage
from ragtune.workspace import Workspace


@dataclass(frozen=True)
class IndexReport:
    """What an index run did.

    Attributes:
        text_units: Units in the workspace.
        extracted: Units extracted in this run (the others were saved by an earlier run).
        failures: Units whose extraction failed, with the reason, as ``(unit id, reason)``.
        entities: Merged entities.
        relationships: Merged relationships.
        communities_per_level: Communities by level.
        reports: Community reports.
        failed_reports: Reports the teacher failed to write (made extractively instead).
        reports_kept: Reports of the earlier index kept as they were: their community has the
            same members, with the same descriptions and relationships (the others were
            written now).
        dropped_relationships: Relationships dropped for naming an entity the unit lacks.
        summarized: Descriptions combined by the teacher.
        teacher_calls: Completions the teacher generated (repairs included).
        cache_hits: Teacher requests answered from the response cache.
        seconds: Wall time.
        extractor: ``"llm"``, ``"heuristic"`` or ``"graphrag"`` (adopted).
    """

    text_units: int
    extracted: int
    failures: list[tuple[str, str]]
    entities: int
    relationships: int
    communities_per_level: dict[int, int]
    reports: int
    failed_reports: int = 0
    reports_kept: int = 0
    dropped_relationships: int = 0
    summarized: int = 0
    teacher_calls: int = 0
    cache_hits: int = 0
    seconds: float = 0.0
    extractor: str = "heuristic"
    top_entities: list[tuple[str, int]] = field(default_factory=list)

    @property
    def failed_units(self) -> int:
        """How many units failed."""
        return len(self.failures)

    def summary_line(self) -> str:
        """The one-line summary `ragtune index` prints."""
        levels = "/".join(str(n) for n in self.communities_per_level.values()) or "0"
        return (
            f"indexed {self.text_units} text units ({self.extracted} extracted now, "
            f"{self.failed_units} failed) with the {self.extractor} extractor: "
            f"{self.entities} entities, {self.relationships} relationships, "
            f"{sum(self.communities_per_level.values())} communities (per level {levels}), "
            f"{self.reports} reports ({self.reports - self.reports_kept} written, "
            f"{self.reports_kept} unchanged); teacher calls {self.teacher_calls}, "
            f"cache hits {self.cache_hits}; {self.seconds:.1f} s"
        )

    def to_json(self) -> dict[str, Any]:
        """The report as JSON (what `index.json` holds)."""
        record = asdict(self)
        record["failed_units"] = self.failed_units
        record["communities_per_level"] = {
            str(level): count for level, count in self.communities_per_level.items()
        }
        return record


@runs_as_stage("index")
def build_index(
    workspace: Workspace,
    config: IndexInputs,
    *,
    teacher: ChatBackend | None = None,
    progress: bool = True,
) -> IndexReport:
    """Build the memory index of `workspace` and write its four tables and `index.json`.

    Args:
        workspace: A workspace with text units (`ragtune ingest` ran).
        config: The settings (`index.*` and `teacher`).
        teacher: The teacher model; loaded from `config.teacher` (with the workspace's response
            cache) when a step needs it and none is given.
        progress: Whether to show progress bars.

    Raises:
        RagtuneError: the workspace has no text units.
        ModelNotAvailableError: the teacher cannot be loaded.
        MissingExtraError: the ``train`` extra is not installed.
    """
    require_extra("train", "networkx", "graspologic_native", needed_for="ragtune index")
    started = time.perf_counter()
    config.validate()
    settings = config.index
    units = read_text_units(workspace.text_units_path)
    extractor_kind = settings.extractor_for(config.teacher)
    summaries = settings.step_for(settings.summaries, config.teacher)
    report_kind = settings.step_for(settings.reports, config.teacher)
    if teacher is None and "llm" in (extractor_kind, summaries, report_kind):
        from ragtune.llm.specs import load_backend

        teacher = load_backend(config.teacher, cache=workspace.llm_cache_path)
    calls_before = teacher.stats.model_calls if teacher else 0
    hits_before = int(getattr(teacher, "hits", 0))

    extractor: HeuristicExtractor | LLMExtractor
    if extractor_kind == "llm":
        assert teacher is not None
        extractor = LLMExtractor(
            teacher,
            settings.entity_types,
            gleanings=settings.gleanings,
            max_tokens=settings.max_tokens,
        )
    else:
        extractor = HeuristicExtractor(settings.entity_types)
    extractions, extracted = _extract(workspace, units, extractor, settings.batch_size, progress)

    merged = merge_extractions(
        extractions,
        {unit.id: n for n, unit in enumerate(units)},
        max_description_chars=settings.max_description_chars,
        summarizer=TeacherSummarizer(teacher, progress=progress)
        if summaries == "llm" and teacher
        else None,
    )
    communities = detect_communities(
        merged.entities,
        merged.relationships,
        max_cluster_size=settings.max_cluster_size,
        seed=settings.seed,
        period=dt.date.today().isoformat(),
    )
    contexts = community_contexts(communities, merged.entities, merged.relationships)
    unit_texts = {unit.id: unit.text for unit in units}
    failed_reports = 0
    earlier = reusable_reports(workspace, contexts, report_kind)
    changed = [context for context in contexts if context.community.id not in earlier]
    if report_kind == "llm" and teacher:
        written = TeacherReportWriter(teacher).write(changed, unit_texts, progress=progress)
        fresh, failed_reports = written.reports, written.failed
    else:
        fresh = [extractive_report(context, unit_texts) for context in changed]
    by_community = {report.community: report for report in fresh}
    reports = [
        by_community[c.community.community]
        if c.community.id not in earlier
        else _renumbered(earlier[c.community.id], c)
        for c in contexts
    ]
    index = MemoryIndex(merged.entities, merged.relationships, communities, reports)
    write_index(workspace, index)

    report = IndexReport(
        text_units=len(units),
        extracted=extracted,
        failures=[(e.text_unit_id, e.error) for e in extractions if e.error is not None],
        entities=len(index.entities),
        relationships=len(index.relationships),
        communities_per_level=index.communities_per_level(),
        reports=len(reports),
        failed_reports=failed_reports,
        reports_kept=len(contexts) - len(changed),
        dropped_relationships=merged.dropped_relationships + sum(e.dropped for e in extractions),
        summarized=merged.summarized,
        teacher_calls=(teacher.stats.model_calls - calls_before) if teacher else 0,
        cache_hits=int(getattr(teacher, "hits", 0)) - hits_before,
        seconds=time.perf_counter() - started,
        extractor=extractor.kind,
        top_entities=_top_entities(index),
    )
    write_index_summary(workspace, report)
    return report


@runs_as_stage("index")
def adopt_graphrag_index(workspace: Workspace, source: Path) -> IndexReport:
    """Adopt the Microsoft GraphRAG output folder `source` as the index of `workspace` (its
    documents and text units too), and write `index.json`.

    Raises:
        RagtuneError: `source` is not a GraphRAG output folder or one of its tables is bad.
        MissingExtraError: the ``train`` extra is not installed.
    """
    require_extra("train", "networkx", "graspologic_native", needed_for="ragtune index")
    from ragtune.index.graphrag_import import adopt_graphrag

    started = time.perf_counter()
    adopted = adopt_graphrag(workspace, source)
    workspace.extractions_path.unlink(missing_ok=True)  # extractions of other units
    index = adopted.index
    report = IndexReport(
        text_units=adopted.text_units,
        extracted=0,
        failures=[],
        entities=len(index.entities),
        relationships=len(index.relationships),
        communities_per_level=index.communities_per_level(),
        reports=len(index.reports),
        seconds=time.perf_counter() - started,
        extractor="graphrag",
        top_entities=_top_entities(index),
    )
    write_index_summary(workspace, report)
    return report


def reusable_reports(
    workspace: Workspace, contexts: Sequence[CommunityContext], kind: str
) -> dict[str, CommunityReport]:
    """The earlier index's reports (by community id) that still describe their community: the
    same members with the same descriptions and relationships, written the same way (``llm``
    or extractive). Empty when there is no earlier index or it cannot be read."""
    from ragtune.errors import RagtuneError
    from ragtune.index.tables import read_index

    if not workspace.community_reports_path.is_file():
        return {}
    try:
        before = read_index(workspace)
    except RagtuneError:
        return {}
    entities = {e.id: e for e in before.entities}
    relationships = {r.id: r for r in before.relationships}
    communities = {c.community: c.id for c in before.communities}
    reports = {communities.get(r.community): r for r in before.reports}
    wanted = "llm" if kind == "llm" else "extractive"
    kept = {}
    for context in contexts:
        report = reports.get(context.community.id)
        if report is None or report.generated_by != wanted:
            continue
        if all(entities.get(e.id) == e for e in context.entities) and all(
            relationships.get(r.id) == r for r in context.relationships
        ):
            kept[context.community.id] = report
    return kept


def _renumbered(report: CommunityReport, context: CommunityContext) -> CommunityReport:
    """An earlier report placed at its community's number and rank in the new hierarchy."""
    community = context.community
    return dataclasses.replace(
        report,
        community=community.community,
        level=community.level,
        parent=community.parent,
        children=community.children,
        size=community.size,
        period=community.period,
        rank=report.rank if report.generated_by == "llm" else context.rank,
    )


def _top_entities(index: MemoryIndex) -> list[tuple[str, int]]:
    ranked = sorted(index.entities, key=lambda e: (-e.degree, e.title))
    return [(e.title, e.degree) for e in ranked[:10]]


def write_index_summary(workspace: Workspace, report: IndexReport) -> None:
    """Write `report` to the workspace's `index.json`, atomically."""
    text = json.dumps(report.to_json(), indent=2, ensure_ascii=False)
    atomic_write_text(workspace.index_summary_path, text + "\n")


def _extract(
    workspace: Workspace,
    units: Sequence[TextUnit],
    extractor: HeuristicExtractor | LLMExtractor,
    batch_size: int,
    progress: bool,
) -> tuple[list[UnitExtraction], int]:
    """Every unit's extraction: saved ones from the journal, the rest extracted now in
    batches, each saved as it finishes. Returns them in unit order, and how many were new."""
    journal = ExtractionJournal(workspace.extractions_path, extractor.fingerprint)
    saved = journal.load()
    todo = [unit for unit in units if unit.id not in saved]
    batches = [todo[start : start + batch_size] for start in range(0, len(todo), batch_size)]
    for batch in progress_bar(
        batches, desc=f"extracting ({extractor.kind})", unit="batch", enabled=progress
    ):
        done = extractor.extract(batch)
        journal.append(done)
        saved.update((extraction.text_unit_id, extraction) for extraction in done)
    extractions = [saved[unit.id] for unit in units]
    journal.compact(extractions)
    return extractions, len(todo)
