"""`evaluate`: memories against the baselines on a question set — for each workspace, the
systems opened once around one shared reader and run over its questions; the runs of several
workspaces pooled per system (reports show each conversation and the pool); the judge if one is
given."""

from __future__ import annotations

import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragtune.baselines.embedding import DEFAULT_EMBEDDING_MODEL
from ragtune.baselines.oracle import TurnKey
from ragtune.baselines.systems import SYSTEM_NAMES, MemorySystem
from ragtune.eval.judge import JudgeReport
from ragtune.eval.questions import Question, load_questions, pick
from ragtune.eval.runner import SystemRun, run_system
from ragtune.extras import require_extra
from ragtune.stages import settle
from ragtune.workspace import Workspace


@dataclass(frozen=True)
class EvalSettings:
    """How to evaluate.

    Attributes:
        systems: The systems to compare, in report order; empty for every system (the oracle
            only when the memory holds conversation turns).
        limit: Ask at most this many questions of each workspace (every category keeps its
            share).
        system_limits: A lower limit for some systems (``{"long-context": 30}``): they answer
            only the first questions of that many (categories kept), per workspace.
        store: The RAG vector store: ``qdrant-edge``, ``qdrant-local`` or ``qdrant-server``.
        qdrant_url: The server of a ``qdrant-server`` store.
        k: Passages retrieved per question (rag, hybrid).
        adapter: The memory adapter (native, hybrid).
        max_new_tokens: The longest answer.
        embedding_model: The RAG embedding model.
        device: Where the reader runs (``auto``, ``cpu``, ``cuda``).
    """

    systems: tuple[str, ...] = ()
    limit: int | None = None
    system_limits: Mapping[str, int] = field(default_factory=dict)
    store: str = "qdrant-edge"
    qdrant_url: str | None = None
    k: int = 5
    adapter: str = "default"
    max_new_tokens: int = 48
    embedding_model: str = DEFAULT_EMBEDDING_MODEL
    device: str = "auto"


@dataclass
class OpenSystems:
    """A workspace's systems around one reader, ready to answer.

    Attributes:
        systems: The systems, in report order.
        setup: What to report about them (reader, store, k, window, sizes).
        unit_turns: Each text unit's conversation turns, to check retrieved evidence.
    """

    systems: list[MemorySystem]
    setup: dict[str, Any]
    unit_turns: dict[str, frozenset[TurnKey]]


@dataclass
class Evaluation:
    """An evaluation's results: one run per system, the setup, the judge's report."""

    runs: list[SystemRun]
    setup: dict[str, Any]
    judge: JudgeReport | None = None
    questions: list[Question] = field(default_factory=list)


def workspace_conversations(workspace: Workspace) -> set[str]:
    """The LoCoMo conversations (``sample_id``s) the workspace's documents come from."""
    from ragtune.corpus.tables import read_documents

    if not workspace.documents_path.is_file():
        return set()
    return {
        str(document.metadata["sample_id"])
        for document in read_documents(workspace.documents_path)
        if document.metadata.get("sample_id")
    }


def open_systems(
    workspace: Workspace, settings: EvalSettings, *, progress: bool = False
) -> OpenSystems:
    """The systems of `settings` sharing one reader (with the adapter only if a tuned system
    is among them), what to report about them, and the units' turns.

    Raises:
        RagtuneError: a system is unknown, the adapter, text units or (for the oracle)
            conversation turns are missing.
        MissingExtraError: the ``eval`` extra is not installed.
    """
    require_extra("eval", needed_for="ragtune eval")
    from ragtune.baselines.oracle import GoldTurns, turn_keys
    from ragtune.baselines.reader import Reader
    from ragtune.baselines.retrieval import UnitIndex
    from ragtune.baselines.systems import build_systems, check_system_names, require_turns
    from ragtune.corpus.tables import read_documents, read_text_units

    check_system_names(settings.systems)  # before loading anything
    units = (
        read_text_units(workspace.text_units_path) if workspace.text_units_path.is_file() else []
    )
    documents = (
        read_documents(workspace.documents_path) if workspace.documents_path.is_file() else []
    )
    gold = GoldTurns.from_documents(documents)
    names = settings.systems or tuple(
        name for name in SYSTEM_NAMES if name != "oracle" or len(gold)
    )
    if "oracle" in names:
        require_turns(gold)  # before loading anything
    tuned = any(name in ("native", "hybrid") for name in names)
    reader = Reader.from_workspace(
        workspace, adapter=settings.adapter if tuned else None, device=settings.device
    )
    index = None
    if any(name in ("rag", "hybrid") for name in names):
        index = UnitIndex.open(
            workspace,
            store=settings.store,
            url=settings.qdrant_url,
            embedding_model=settings.embedding_model,
            progress=progress,
        )
    systems = build_systems(
        names,
        reader,
        index=index,
        units=units,
        gold=gold,
        memory_text_bytes=sum(len(unit.text.encode("utf-8")) for unit in units),
        k=settings.k,
        max_new_tokens=settings.max_new_tokens,
    )
    setup = {
        "workspace": str(workspace.root),
        "reader": reader.base_name,
        "adapter": settings.adapter if tuned else None,
        "context_window": reader.context_window,
        "vector_store": settings.store if index else None,
        "embedding_model": settings.embedding_model if index else None,
        "k": settings.k if index else None,
        "text_units": len(units),
        "max_new_tokens": settings.max_new_tokens,
        "device": str(reader.backend.device),
        "machine": f"{platform.machine()}, {_cpu_count()} CPUs",
    }
    return OpenSystems(systems, setup, turn_keys(units, documents))


def evaluate(
    workspaces: str | Path | Sequence[str | Path],
    questions_path: Path,
    settings: EvalSettings | None = None,
    *,
    judge: Any = None,
    progress: bool = False,
) -> Evaluation:
    """Ask every system of `settings` the questions of `questions_path` about each workspace's
    memory (a LoCoMo file: each workspace its own conversations' questions); score, time and
    (with a `judge` backend) judge the answers. The runs of several workspaces are pooled per
    system.

    Raises:
        RagtuneError: a workspace has no questions in the file, or what a system needs is
            missing.
        MissingExtraError: the ``eval`` extra is not installed."""
    require_extra("eval", needed_for="ragtune eval")
    from ragtune.eval.judge import judge_runs

    settings = settings or EvalSettings()
    paths = [workspaces] if isinstance(workspaces, (str, Path)) else list(workspaces)
    asked: list[Question] = []
    per_workspace: list[list[SystemRun]] = []
    setups: list[dict[str, Any]] = []
    for path in paths:
        workspace = Workspace.at(path)
        settle(workspace)  # a stage killed while publishing: finish it first
        questions = pick(
            load_questions(questions_path, conversations=workspace_conversations(workspace)),
            settings.limit,
        )
        opened = open_systems(workspace, settings, progress=progress)
        per_workspace.append(
            [
                run_system(
                    system,
                    pick(questions, settings.system_limits.get(system.name)),
                    unit_turns=opened.unit_turns,
                    progress=progress,
                )
                for system in opened.systems
            ]
        )
        setups.append(opened.setup)
        asked.extend(questions)
        del opened  # one reader at a time
    runs = pool_runs(per_workspace)
    setup = pooled_setup(setups)
    setup["questions"] = f"{len(asked)} from {questions_path.name}"
    limited = {n: v for n, v in settings.system_limits.items() if any(r.system == n for r in runs)}
    if limited:
        setup["system_limits"] = ", ".join(f"{n} {v} per workspace" for n, v in limited.items())
    report = judge_runs(judge, runs, progress=progress) if judge is not None else None
    return Evaluation(runs, setup, report, asked)


def pool_runs(per_workspace: Sequence[Sequence[SystemRun]]) -> list[SystemRun]:
    """The runs of several workspaces as one run per system (in first-seen order): answers
    concatenated, the highest peak memory, the memories' sizes summed."""
    grouped: dict[str, list[SystemRun]] = {}
    for runs in per_workspace:
        for run in runs:
            grouped.setdefault(run.system, []).append(run)
    return [
        SystemRun(
            name,
            runs[0].model,
            [answer for run in runs for answer in run.answers],
            max(run.peak_rss_bytes for run in runs),
            sum(run.memory_bytes for run in runs),
        )
        for name, runs in grouped.items()
    ]


def pooled_setup(setups: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One setup for the runs of several workspaces: the first's, naming every workspace and
    counting all their text units."""
    if len(setups) == 1:
        return dict(setups[0])
    setup = dict(setups[0])
    setup["workspace"] = ", ".join(str(s["workspace"]) for s in setups)
    setup["text_units"] = sum(int(s["text_units"]) for s in setups)
    return setup


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def parse_system_limits(items: Sequence[str]) -> dict[str, int]:
    """``["long-context=30"]`` → ``{"long-context": 30}``.

    Raises:
        RagtuneError: an item is not ``SYSTEM=N`` with a known system and N ≥ 1.
    """
    from ragtune.baselines.systems import check_system_names
    from ragtune.errors import RagtuneError

    limits: dict[str, int] = {}
    for item in items:
        name, _, count = item.partition("=")
        if not count.strip().isdigit() or int(count) < 1:
            raise RagtuneError(f"system limit {item!r} is not SYSTEM=N with N at least 1")
        check_system_names([name.strip()])
        limits[name.strip()] = int(count)
    return limits


def system_names(text: str) -> tuple[str, ...]:
    """``"native,rag"`` → ``("native", "rag")``."""
    return tuple(name.strip() for name in text.split(",") if name.strip())
