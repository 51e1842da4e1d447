"""ragtune: give a small LLM an LLM-native memory of a corpus.

The stages, each a function over a workspace folder and the memory's configuration
(`load_config`), in the order they run:

- `ingest`: the corpus → documents and text units (`ragtune.ingestion`);
- `build_index`: the GraphRAG-style index (`ragtune.index`);
- `synthesize`: question/answer training data (`ragtune.synth`);
- `train_adapter`: a LoRA/QLoRA adapter (`ragtune.train`);
- `MemoryModel`: the tuned model, answering and recalling (`ragtune.model`);
- `evaluate`: the tuned model against Qdrant RAG, long context and the base model
  (`ragtune.eval`);
- `tune_memory`: index, synthesize and train in one call;
- `forget`: remove documents for real, the adapter's weights included (`ragtune.forgetting`);
- `AdapterVersions`: an adapter's versions, to list them or switch (`ragtune.adapters`).

Importing `ragtune` loads no heavy library: these names load their modules on first use, and
torch and transformers load when a model does.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ragtune.errors import RagtuneError

if TYPE_CHECKING:
    from ragtune.adapters import AdapterVersions
    from ragtune.config import MemoryConfig, load_config
    from ragtune.eval.evaluation import evaluate
    from ragtune.forgetting import forget
    from ragtune.index.pipeline import build_index
    from ragtune.ingestion import ingest
    from ragtune.model.memory_model import MemoryModel
    from ragtune.pipeline import tune_memory
    from ragtune.synth.pipeline import synthesize
    from ragtune.train.trainer import train_adapter
    from ragtune.workspace import Workspace

__version__ = "0.1.0"

#: Each exported name and the module that defines it (imported on first use).
_EXPORTS = {
    "AdapterVersions": "ragtune.adapters",
    "MemoryConfig": "ragtune.config",
    "MemoryModel": "ragtune.model.memory_model",
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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ragtune' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = [
    "AdapterVersions",
    "MemoryConfig",
    "MemoryModel",
    "RagtuneError",
    "Workspace",
    "__version__",
    "build_index",
    "evaluate",
    "forget",
    "ingest",
    "load_config",
    "synthesize",
    "train_adapter",
    "tune_memory",
]
