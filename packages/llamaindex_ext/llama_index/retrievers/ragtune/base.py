"""`RagTuneRetriever`: the passages a memory-tuned model recalls, as LlamaIndex nodes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.callbacks.base import CallbackManager
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from ragtune.model.shared import memory_or_shared, require_memory_source

#: The file `persist` writes.
PERSIST_FILE = "ragtune_retriever.json"


class RagTuneRetriever(BaseRetriever):
    """The source passages a ragtune memory model recalls for a query, as `TextNode`s.

    The model is asked to recall the passage that answers the query and what it writes is
    matched to the workspace's text units, so every node is a real source passage, with its
    `source`, `timestamp`, `document_id`, `turn_ids` and what the model `recalled` as metadata,
    the text unit id as node id and the match score as the node's score.

    Example:
        ```python
        from llama_index.retrievers.ragtune import RagTuneRetriever

        retriever = RagTuneRetriever(workspace=".demo/memory", similarity_top_k=2)
        for found in retriever.retrieve("Who coaches me at the kayak club?"):
            print(found.score, found.node.metadata["source"])
        ```

    Args:
        workspace: The ragtune workspace whose adapter to load (or pass `memory`).
        memory: An already loaded `ragtune.model.MemoryModel`.
        adapter: The adapter's name.
        similarity_top_k: How many nodes to return.
        max_tokens: The longest recollection the model writes.
        device: Where the model runs.
        callback_manager: LlamaIndex callbacks.
        verbose: LlamaIndex's verbose flag.
    """

    def __init__(
        self,
        workspace: str | Path | None = None,
        *,
        memory: Any = None,
        adapter: str = "default",
        similarity_top_k: int = 3,
        max_tokens: int = 256,
        device: str = "auto",
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
    ) -> None:
        require_memory_source(memory, workspace)
        if similarity_top_k < 1:
            raise ValueError(f"similarity_top_k must be at least 1, got {similarity_top_k}")
        self.workspace = None if workspace is None else str(Path(workspace).resolve())
        self.memory = memory
        self.adapter = adapter
        self.similarity_top_k = similarity_top_k
        self.max_tokens = max_tokens
        self.device = device
        super().__init__(callback_manager=callback_manager, verbose=verbose)

    @property
    def model(self) -> Any:
        """The `MemoryModel`, loaded on first use (shared in the process)."""
        return memory_or_shared(self.memory, self.workspace, self.adapter, self.device)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        found = self.model.recall(
            query_bundle.query_str, self.similarity_top_k, max_new_tokens=self.max_tokens
        )
        return [
            NodeWithScore(
                node=TextNode(
                    id_=passage.unit_id,
                    text=passage.text,
                    metadata={k: v for k, v in passage.metadata().items() if k != "unit_id"},
                    excluded_llm_metadata_keys=["recalled", "turn_ids", "document_id"],
                    excluded_embed_metadata_keys=["recalled", "turn_ids", "document_id"],
                ),
                score=passage.score,
            )
            for passage in found
        ]

    def persist(self, persist_dir: str | Path) -> None:
        """Write the retriever's settings (its workspace, adapter and top k) to `persist_dir`;
        the memory itself stays in the workspace.

        Raises:
            ValueError: the retriever was given a loaded model rather than a workspace.
        """
        if self.workspace is None:
            raise ValueError("only a retriever built from a workspace path can be persisted")
        from ragtune.fileio import atomic_write_text

        settings = {
            "workspace": self.workspace,
            "adapter": self.adapter,
            "similarity_top_k": self.similarity_top_k,
            "max_tokens": self.max_tokens,
        }
        atomic_write_text(Path(persist_dir) / PERSIST_FILE, json.dumps(settings, indent=2) + "\n")

    @classmethod
    def from_persist_dir(cls, persist_dir: str | Path, **kwargs: Any) -> RagTuneRetriever:
        """The retriever `persist` wrote to `persist_dir` (`kwargs` override its settings).

        Raises:
            ValueError: `persist_dir` holds no persisted ragtune retriever.
        """
        path = Path(persist_dir) / PERSIST_FILE
        try:
            settings = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ValueError(f"{path}: no persisted ragtune retriever ({error})") from None
        return cls(**{**settings, **kwargs})
