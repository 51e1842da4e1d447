"""LangChain integration for ragtune: a memory-tuned model as a chat model (`ChatRagTune`) and
a retriever (`RagTuneRetriever`), and any LangChain chat model as ragtune's teacher
(`LangChainTeacher`)."""

from importlib.metadata import version

from langchain_ragtune.chat_models import ChatRagTune
from langchain_ragtune.documents import ingest_documents
from langchain_ragtune.memory import RagTuneMemory
from langchain_ragtune.retrievers import RagTuneRetriever
from langchain_ragtune.teacher import LangChainTeacher

__version__ = version("langchain-ragtune")

__all__ = [
    "ChatRagTune",
    "LangChainTeacher",
    "RagTuneMemory",
    "RagTuneRetriever",
    "__version__",
    "ingest_documents",
]
