"""ragtune: give a small LLM an LLM-native memory of a corpus.

Stages, one module each: `ragtune.corpus` (documents and text units), `ragtune.llm` (model
backends behind `ChatBackend`), `ragtune.ingest` (corpus → workspace tables), `ragtune.index`
(the GraphRAG-style index), `ragtune.synth` (training data), `ragtune.train` (LoRA/QLoRA
adapters), `ragtune.model` (`MemoryModel`), `ragtune.cli` (the `ragtune` command).
Importing `ragtune` loads no heavy library; torch and transformers load when a model does.
"""

import logging

from ragtune.errors import RagtuneError

# bitsandbytes warns on every import that the `kernels` package is missing. Installing it would
# fetch kernels from the Hugging Face hub at run time, and its CPU path works without it.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)

__version__ = "0.1.0"

__all__ = ["RagtuneError", "__version__"]
