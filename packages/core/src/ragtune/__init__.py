"""ragtune: give a small LLM an LLM-native memory of a corpus.

Stages, one module each: `ragtune.corpus` (documents and text units), `ragtune.llm` (model
backends behind `ChatBackend`), `ragtune.ingest` (corpus → workspace tables), `ragtune.cli` (the
`ragtune` command). Importing `ragtune` loads no heavy library; torch and transformers load when
a model does.
"""

from ragtune.errors import RagtuneError

__version__ = "0.1.0"

__all__ = ["RagtuneError", "__version__"]
