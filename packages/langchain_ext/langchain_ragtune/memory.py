"""`RagTuneMemory`: an existing LangChain corpus made into a tuned memory in one call, then used
as a chat model and a retriever."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel

from langchain_ragtune.chat_models import ChatRagTune
from langchain_ragtune.retrievers import RagTuneRetriever


class RagTuneMemory:
    """A ragtune workspace with a trained memory adapter.

    Build one from documents with `RagTuneMemory.from_documents`, or open a trained workspace
    with `RagTuneMemory(path)`.

    Args:
        workspace: The workspace folder.
        adapter: The adapter's name.
    """

    def __init__(self, workspace: str | Path, adapter: str = "default") -> None:
        self.workspace = Path(workspace)
        self.adapter = adapter

    @classmethod
    def from_documents(
        cls,
        documents: Sequence[Document] | BaseLoader,
        workspace: str | Path,
        *,
        base_model: str = "embedded",
        teacher: BaseChatModel | None = None,
        settings: Sequence[str] = (),
        progress: bool = False,
    ) -> RagTuneMemory:
        """Index `documents` the GraphRAG way, synthesize question/answer data from the index
        and train the memory adapter of `base_model` (a ragtune model spec) in `workspace`.

        Args:
            documents: LangChain documents, or a loader of them; metadata is kept.
            workspace: The workspace folder to build (created if missing).
            base_model: The model to tune (``embedded``, ``hf:<repo-or-path>``).
            teacher: A LangChain chat model that extracts the graph and writes the questions;
                without one, ragtune's heuristic extractor and template writers are used.
            settings: More ``KEY=VALUE`` settings (``train.epochs=4``, ...).
            progress: Whether to show progress bars.

        Raises:
            CorpusError: there are no documents with text.
            RagtuneError: a stage fails (bad setting, model not available, ...).
        """
        from langchain_ragtune.documents import ingest_documents
        from langchain_ragtune.teacher import LangChainTeacher
        from ragtune.pipeline import tune_memory

        chosen = [f"model={base_model}", *settings]
        root = ingest_documents(documents, workspace, chosen, progress=progress)
        backend = LangChainTeacher(teacher) if teacher is not None else None
        report = tune_memory(root, chosen, teacher=backend, progress=progress)
        return cls(root, report.adapter.name)

    def as_chat_model(self, **kwargs: Any) -> ChatRagTune:
        """The tuned model as a LangChain chat model (`ChatRagTune` keyword arguments)."""
        return ChatRagTune(workspace=str(self.workspace), adapter=self.adapter, **kwargs)

    def as_retriever(self, **kwargs: Any) -> RagTuneRetriever:
        """The model's recall as a LangChain retriever (`RagTuneRetriever` keyword arguments)."""
        return RagTuneRetriever(workspace=str(self.workspace), adapter=self.adapter, **kwargs)
