"""The stages after ingest in one call: index → synthesize → train, as `make demo` runs them
one command at a time (what the integrations' one-call paths use)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ragtune.llm.types import ChatBackend
    from ragtune.train.trainer import TrainReport


def tune_memory(
    workspace: str | Path,
    settings: Sequence[str] = (),
    *,
    teacher: ChatBackend | None = None,
    progress: bool = False,
) -> TrainReport:
    """Index the ingested workspace `workspace`, synthesize its training data and train its
    memory adapter, with its memory.yaml and the ``KEY=VALUE`` `settings`. With a `teacher`,
    the teacher extracts the graph and writes the questions (``index.extractor=llm``,
    ``synth.writer=llm`` unless `settings` say otherwise).

    Raises:
        RagtuneError: a stage fails (no text units, bad setting, model not available, ...).
    """
    from ragtune.config import load_config
    from ragtune.index.pipeline import build_index
    from ragtune.synth.pipeline import synthesize
    from ragtune.train.trainer import train_adapter
    from ragtune.workspace import Workspace

    folder = Workspace.at(workspace)
    with_teacher = ["index.extractor=llm", "synth.writer=llm"] if teacher is not None else []
    config = load_config(folder.config_path, [*with_teacher, *settings])
    build_index(folder, config, teacher=teacher, progress=progress)
    synthesize(folder, config, teacher=teacher, progress=progress)
    return train_adapter(folder, config, progress=progress)
