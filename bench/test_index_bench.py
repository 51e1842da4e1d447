"""Benchmarks of the index stage on the LoCoMo dev conversations (heuristic extractor).

`make bench` times them; `make test` runs each once as a smoke test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.benchmark, pytest.mark.slow]


@pytest.fixture(scope="module")
def locomo_units(embedded_model: Any, locomo_dev: Path) -> list[Any]:
    """The LoCoMo dev conversations as text units (embedded tokenizer, 500/100)."""
    from ragtune.corpus import chunk_documents, load_corpus
    from ragtune.llm.tokenizer import load_tokenizer

    documents = load_corpus(locomo_dev)
    return chunk_documents(documents, load_tokenizer("embedded"), size=500, overlap=100)


def test_heuristic_extraction(benchmark: Any, locomo_units: list[Any]) -> None:
    """Extract entities and relationships from every LoCoMo dev text unit, no model."""
    from ragtune.index.heuristic import HeuristicExtractor
    from ragtune.index.types import DEFAULT_ENTITY_TYPES

    extractor = HeuristicExtractor(DEFAULT_ENTITY_TYPES)
    extractions = benchmark.pedantic(
        lambda: extractor.extract(locomo_units), rounds=3, iterations=1
    )
    entities = sum(len(e.entities) for e in extractions)
    benchmark.extra_info.update(text_units=len(locomo_units), entity_mentions=entities)
    assert entities > len(locomo_units)


def test_merge_and_communities(benchmark: Any, locomo_units: list[Any]) -> None:
    """Merge the extractions and run hierarchical Leiden over the merged graph."""
    from ragtune.index.communities import detect_communities
    from ragtune.index.heuristic import HeuristicExtractor
    from ragtune.index.merging import merge_extractions
    from ragtune.index.types import DEFAULT_ENTITY_TYPES

    extractions = HeuristicExtractor(DEFAULT_ENTITY_TYPES).extract(locomo_units)
    order = {unit.id: n for n, unit in enumerate(locomo_units)}

    def merge_and_cluster() -> tuple[int, int, int]:
        merged = merge_extractions(extractions, order)
        communities = detect_communities(merged.entities, merged.relationships)
        return len(merged.entities), len(merged.relationships), len(communities)

    entities, relationships, communities = benchmark.pedantic(
        merge_and_cluster, rounds=3, iterations=1
    )
    benchmark.extra_info.update(
        entities=entities, relationships=relationships, communities=communities
    )
    assert communities > 0


def test_build_index_locomo(
    benchmark: Any, embedded_model: Any, locomo_dev: Path, tmp_path: Path
) -> None:
    """The whole `build_index` (extraction not journaled yet, merging, Leiden, reports, tables)."""
    from ragtune.config import load_config
    from ragtune.index.pipeline import build_index
    from ragtune.ingestion import ingest
    from ragtune.workspace import Workspace

    workspace = Workspace.at(tmp_path / "locomo", create=True)
    config = load_config(None, [f"corpus.path={locomo_dev}"])
    ingest(workspace, config, progress=False)

    def index() -> Any:
        workspace.extractions_path.unlink(missing_ok=True)  # every round extracts afresh
        return build_index(workspace, config, progress=False)

    report = benchmark.pedantic(index, rounds=3, iterations=1)
    benchmark.extra_info.update(
        entities=report.entities,
        relationships=report.relationships,
        communities=sum(report.communities_per_level.values()),
    )
    assert report.failed_units == 0
    assert report.teacher_calls == 0
