"""Benchmarks of the synthesis stage on the LoCoMo dev conversations (heuristic writer).

`make bench` times them; `make test` runs each once as a smoke test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.benchmark, pytest.mark.slow]


@pytest.fixture(scope="module")
def indexed_locomo(embedded_model: Any, locomo_dev: Path, tmp_path_factory: Any) -> Any:
    """A workspace of the LoCoMo dev file, ingested (embedded tokenizer) and indexed, set to
    run every strategy (the default runs two)."""
    from ragtune.config import load_config
    from ragtune.index.pipeline import build_index
    from ragtune.ingestion import ingest
    from ragtune.synth import STRATEGY_NAMES
    from ragtune.workspace import Workspace

    workspace = Workspace.at(tmp_path_factory.mktemp("synth-bench") / "locomo", create=True)
    strategies = f"synth.strategies=[{','.join(STRATEGY_NAMES)}]"
    config = load_config(None, [f"corpus.path={locomo_dev}", strategies])
    ingest(workspace, config, progress=False)
    build_index(workspace, config, progress=False)
    return workspace, config


def test_synthesize_locomo(benchmark: Any, indexed_locomo: Any) -> None:
    """The whole `synthesize`: every heuristic strategy, grounding, dedup, split, files."""
    from ragtune.synth.pipeline import synthesize

    workspace, config = indexed_locomo
    card = benchmark.pedantic(
        lambda: synthesize(workspace, config, progress=False), rounds=3, iterations=1
    )
    benchmark.extra_info.update(
        records=card.records, facts=card.facts, tokens=card.tokens["total"], kinds=card.kinds
    )
    assert card.train > 0 and card.val > 0
    assert card.units["sources_of_training_records"] == card.units["total"]


def test_grounding_filter(benchmark: Any, indexed_locomo: Any) -> None:
    """Grounding every record of the synthesized data against its sources."""
    from ragtune.corpus.tables import read_text_units
    from ragtune.synth.grounding import GroundingFilter
    from ragtune.synth.pipeline import read_records, synthesize

    workspace, config = indexed_locomo
    synthesize(workspace, config, progress=False)
    records = read_records(workspace.train_path)
    units = {unit.id: unit.text for unit in read_text_units(workspace.text_units_path)}
    grounding = GroundingFilter(units, config.synth.min_support)
    scored = benchmark.pedantic(
        lambda: [grounding.score(record) for record in records], rounds=3, iterations=1
    )
    benchmark.extra_info.update(records=len(records))
    assert len(scored) == len(records)
