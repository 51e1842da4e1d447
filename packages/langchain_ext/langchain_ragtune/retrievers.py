"""`RagTuneRetriever`: the passages a memory-tuned model recalls, as LangChain documents."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, model_validator

from ragtune.model.shared import memory_or_shared, require_memory_source


class RagTuneRetriever(BaseRetriever):
    """The source passages a ragtune memory model recalls for a query.

    The model is asked to recall the passage that answers the query (as its training taught
    it), and what it writes is matched to the workspace's text units, so every document is a
    real source passage: its text, and in `metadata` its `source`, `timestamp`, `unit_id`,
    `document_id`, `turn_ids`, match `score` and what the model `recalled`.

    Example:
        ```python
        from langchain_ragtune import RagTuneRetriever

        retriever = RagTuneRetriever(workspace=".demo/memory", k=2)
        for document in retriever.invoke("Who coaches me at the kayak club?"):
            print(document.metadata["source"], document.page_content[:60])
        ```

    Args:
        workspace: The ragtune workspace whose adapter to load (or pass `memory`).
        memory: An already loaded `ragtune.model.MemoryModel`.
        adapter: The adapter's name in the workspace.
        k: How many documents to return (also ``invoke(query, k=...)``).
        max_tokens: The longest recollection the model writes.
        device: Where the model runs.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    workspace: str | None = None
    memory: Any = Field(default=None, exclude=True)
    adapter: str = "default"
    k: int = Field(default=3, ge=1)
    max_tokens: int = Field(default=256, ge=1)
    device: str = "auto"

    @model_validator(mode="after")
    def _check(self) -> RagTuneRetriever:
        require_memory_source(self.memory, self.workspace)
        return self

    @property
    def model(self) -> Any:
        """The `MemoryModel`, loaded on first use (shared with every other user of the same
        workspace adapter in this process)."""
        return memory_or_shared(self.memory, self.workspace, self.adapter, self.device)

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        k: int | None = None,
    ) -> list[Document]:
        found = self.model.recall(query, k or self.k, max_new_tokens=self.max_tokens)
        return [
            Document(
                page_content=passage.text,
                id=passage.unit_id,
                metadata={**passage.metadata(), "score": passage.score},
            )
            for passage in found
        ]
