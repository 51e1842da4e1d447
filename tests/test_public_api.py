"""`ragtune`'s public names: the stage entry points, pinned, loaded on first use."""

from __future__ import annotations

import importlib

import pytest

import ragtune
from support import modules_after

#: Each public name and the module that defines it.
PUBLIC = {
    "AdapterVersions": "ragtune.adapters",
    "MemoryConfig": "ragtune.config",
    "MemoryModel": "ragtune.model.memory_model",
    "RagtuneError": "ragtune.errors",
    "Workspace": "ragtune.workspace",
    "build_index": "ragtune.index.pipeline",
    "evaluate": "ragtune.eval.evaluation",
    "forget": "ragtune.forgetting",
    "ingest": "ragtune.ingestion",
    "load_config": "ragtune.config",
    "synthesize": "ragtune.synth.pipeline",
    "train_adapter": "ragtune.train.trainer",
    "tune_memory": "ragtune.pipeline",
}


def test_public_names_are_pinned() -> None:
    assert sorted(ragtune.__all__) == sorted([*PUBLIC, "__version__"])


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_each_public_name_is_its_modules_object(name: str) -> None:
    defined = getattr(importlib.import_module(PUBLIC[name]), name)
    assert getattr(ragtune, name) is defined
    assert name in dir(ragtune)


def test_ingest_stays_the_function_once_its_module_is_imported() -> None:
    import ragtune.ingestion

    assert ragtune.ingest is ragtune.ingestion.ingest
    assert callable(ragtune.ingest)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'indexer'"):
        ragtune.indexer  # noqa: B018


def test_importing_ragtune_loads_no_stage() -> None:
    loaded = modules_after("import ragtune")
    assert [m for m in loaded if m.startswith("ragtune.")] == ["ragtune.errors"]
