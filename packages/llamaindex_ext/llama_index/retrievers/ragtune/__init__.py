"""LlamaIndex retriever for ragtune (`llama_index.retrievers.ragtune`).

The `RagtuneRetriever` (recall from a memory-tuned model) arrives in its own issue; for now the
package holds its place in LlamaIndex's namespace.
"""

from importlib.metadata import version

__version__ = version("llama-index-ragtune")

__all__ = ["__version__"]
