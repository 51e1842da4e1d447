"""LangChain integration for ragtune: a memory-tuned model as a chat model (`ChatRagTune`) and
a retriever (`RagTuneRetriever`)."""

from importlib.metadata import version

from langchain_ragtune.chat_models import ChatRagTune
from langchain_ragtune.retrievers import RagTuneRetriever

__version__ = version("langchain-ragtune")

__all__ = ["ChatRagTune", "RagTuneRetriever", "__version__"]
