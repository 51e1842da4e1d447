"""The LLM index path end to end with the embedded SmolLM2 as the teacher (slow).

A 135M model is not a capable extractor: most of its answers do not fit the schema even after
repairs. The pipeline must still finish, count and explain every failed unit, and cache every
teacher call.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ragtune.config import load_config
from ragtune.corpus.tables import read_text_units, write_text_units
from ragtune.index.pipeline import build_index
from ragtune.index.tables import read_index
from ragtune.ingestion import ingest
from ragtune.workspace import Workspace

SAMPLE_CORPUS = Path(__file__).resolve().parent.parent / "examples" / "sample_corpus"

pytestmark = pytest.mark.slow


def test_embedded_teacher_indexes_a_unit(tmp_path: Path, embedded_model: object) -> None:
    workspace = Workspace.at(tmp_path / "memory", create=True)
    config = load_config(
        None,
        [
            f"corpus.path={SAMPLE_CORPUS}",
            "index.extractor=llm",
            "index.gleanings=1",
            "index.max_tokens=64",
            "index.reports=extractive",
            "index.summaries=extractive",
        ],
    )
    ingest(workspace, config, progress=False)
    units = read_text_units(workspace.text_units_path)[:1]
    write_text_units(workspace.text_units_path, units)

    first = build_index(workspace, config, progress=False)

    assert first.extractor == "llm"
    assert first.text_units == first.extracted == 1
    assert first.teacher_calls >= 1  # one extraction request per unit, plus repairs/gleanings
    assert all(reason for _, reason in first.failures)
    assert {unit for unit, _ in first.failures} <= {unit.id for unit in units}
    index = read_index(workspace)
    unit_ids = {unit.id for unit in units}
    assert all(set(entity.text_unit_ids) <= unit_ids for entity in index.entities)
    assert f"{first.failed_units} failed" in first.summary_line()

    workspace.extractions_path.unlink()  # only the response cache is left to avoid the model
    again = build_index(workspace, config, progress=False)
    assert again.teacher_calls == 0
    assert again.cache_hits >= 1
    assert again.failures == first.failures
    assert read_index(workspace).entities == index.entities
