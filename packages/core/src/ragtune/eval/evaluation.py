"""`evaluate`: the workspace's memory against the baselines on a question set — the systems
opened once around one shared reader, each run over the questions, the judge if one is given."""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragtune.baselines.embedding import DEFAULT_EMBEDDING_MODEL
from ragtune.baselines.systems import SYSTEM_NAMES, MemorySystem
from ragtune.eval.judge import JudgeReport
from ragtune.eval.questions import Question, load_questions, pick
from ragtune.eval.runner import SystemRun, run_system
from ragtune.extras import require_extra
from ragtune.workspace import Workspace


@dataclass(frozen=True)
class EvalSettings:
    """How to evaluate.

    Attributes:
        systems: The systems to compare, in report order.
        limit: Ask at most this many questions (every category keeps its share).
        store: The RAG vector store: ``qdrant-edge``, ``qdrant-local`` or ``qdrant-server``.
        qdrant_url: The server of a ``qdrant-server`` store.
        k: Passages retrieved per question (rag, hybrid).
        adapter: The memory adapter (native, hybrid).
        max_new_tokens: The longest answer.
        embedding_model: The RAG embedding model.
        device: Where the reader runs (``auto``, ``cpu``, ``cuda``).
    """

    systems: tuple[str, ...] = SYSTEM_NAMES
    limit: int | None = None
    store: str = "qdrant-edge"
    qdrant_url: str | None = None
    k: int = 5
    adapter: str = "default"
    max_new_tokens: int = 48
    embedding_model: str = DEFAULT_EMBEDDING_MODEL
    device: str = "auto"


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
) -> tuple[list[MemorySystem], dict[str, Any]]:
    """The systems of `settings` sharing one reader (with the adapter only if a tuned system
    is among them), and the setup to report (reader, store, k, window, sizes).

    Raises:
        RagtuneError: a system is unknown, the adapter or text units are missing.
        MissingExtraError: the ``eval`` extra is not installed.
    """
    require_extra("eval", needed_for="ragtune eval")
    from ragtune.baselines.reader import Reader
    from ragtune.baselines.retrieval import UnitIndex
    from ragtune.baselines.systems import build_systems, check_system_names
    from ragtune.corpus.tables import read_text_units

    check_system_names(settings.systems)  # before loading anything
    tuned = any(name in ("native", "hybrid") for name in settings.systems)
    reader = Reader.from_workspace(
        workspace, adapter=settings.adapter if tuned else None, device=settings.device
    )
    index = None
    if any(name in ("rag", "hybrid") for name in settings.systems):
        index = UnitIndex.open(
            workspace,
            store=settings.store,
            url=settings.qdrant_url,
            embedding_model=settings.embedding_model,
            progress=progress,
        )
    units = (
        read_text_units(workspace.text_units_path) if workspace.text_units_path.is_file() else []
    )
    systems = build_systems(
        settings.systems,
        reader,
        index=index,
        units=units,
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
    return systems, setup


def evaluate(
    workspace_path: str | Path,
    questions_path: Path,
    settings: EvalSettings | None = None,
    *,
    judge: Any = None,
    progress: bool = False,
) -> Evaluation:
    """Ask every system of `settings` the questions of `questions_path` about the workspace's
    memory; score, time and (with a `judge` backend) judge the answers.

    Raises:
        MissingExtraError: the ``eval`` extra is not installed."""
    require_extra("eval", needed_for="ragtune eval")
    from ragtune.eval.judge import judge_runs

    settings = settings or EvalSettings()
    workspace = Workspace.at(workspace_path)
    questions = pick(
        load_questions(questions_path, conversations=workspace_conversations(workspace)),
        settings.limit,
    )
    systems, setup = open_systems(workspace, settings, progress=progress)
    setup["questions"] = f"{len(questions)} from {questions_path.name}"
    runs = [run_system(system, questions, progress=progress) for system in systems]
    report = judge_runs(judge, runs, progress=progress) if judge is not None else None
    return Evaluation(runs, setup, report, questions)


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def system_names(text: str) -> tuple[str, ...]:
    """``"native,rag"`` → ``("native", "rag")``."""
    return tuple(name.strip() for name in text.split(",") if name.strip())
