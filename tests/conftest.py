"""Fixtures of the LLM index-path tests (`test_index_llm.py`, `test_index_teacher_steps.py`):
the notes of `llm_index_scenario` ingested into fresh workspaces. Test modules may define their
own fixtures of the same names (`test_index_resume.py` does)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from llm_index_scenario import DOCS
from ragtune.config import MemoryConfig, load_config
from ragtune.corpus import read_text_units
from ragtune.corpus.types import TextUnit
from ragtune.ingest import ingest
from ragtune.workspace import Workspace


@pytest.fixture(scope="module")
def tiny_overrides(tiny_model_dir: Path) -> list[str]:
    return [f"chunking.tokenizer=hf:{tiny_model_dir}", f"model=hf:{tiny_model_dir}"]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "notes"
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text + "\n", encoding="utf-8")
    return folder


@pytest.fixture
def make_workspace(
    tmp_path: Path, corpus: Path, tiny_overrides: list[str]
) -> Callable[..., tuple[Workspace, MemoryConfig, list[TextUnit]]]:
    """Ingests the corpus into a new workspace with the given `index.*` overrides."""
    made = 0

    def make(*overrides: str) -> tuple[Workspace, MemoryConfig, list[TextUnit]]:
        nonlocal made
        made += 1
        config = load_config(
            None,
            [f"corpus.path={corpus}", "index.extractor=llm", *tiny_overrides, *overrides],
        )
        workspace = Workspace.at(tmp_path / f"memory-{made}", create=True)
        ingest(workspace, config, progress=False)
        units = read_text_units(workspace.text_units_path)
        assert len(units) == len(DOCS)
        return workspace, config, units

    return make
