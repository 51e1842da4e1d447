"""LlamaIndex retriever for ragtune (`llama_index.retrievers.ragtune`): the passages a
memory-tuned model recalls (`RagTuneRetriever`), and a workspace from LlamaIndex documents,
nodes or readers (`ingest_documents`)."""

from importlib.metadata import version

from llama_index.retrievers.ragtune.base import RagTuneRetriever
from llama_index.retrievers.ragtune.documents import ingest_documents

__version__ = version("llama-index-ragtune")

__all__ = ["RagTuneRetriever", "__version__", "ingest_documents"]
