"""LangChain integration for ragtune.

The chat model (`ChatRagtune`) and retriever (`RagtuneRetriever`) over a memory-tuned model arrive
in their own issue; for now the package pins its version and its dependency on `ragtune`.
"""

from importlib.metadata import version

__version__ = version("langchain-ragtune")

__all__ = ["__version__"]
