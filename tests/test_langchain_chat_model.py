"""`ChatRagTune` and `RagTuneRetriever` beyond the standard suites, on the tiny model's memory:
hybrid prompts, stop strings across streamed pieces, usage, the shared model, bad input."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.retrievers import BaseRetriever

from langchain_ragtune import ChatRagTune, RagTuneRetriever
from langchain_ragtune.chat_models import cut_at_stop
from langchain_ragtune.messages import to_ragtune_messages
from ragtune.corpus.tables import read_text_units


class NotesRetriever(BaseRetriever):
    """A LangChain retriever over two fixed notes."""

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [
            Document("Clara moved to Porto.", metadata={"timestamp": "2024-03-02T10:00:00"}),
            Document("Rui coaches kayak."),
        ]


def test_stop_strings_are_cut_even_across_streamed_pieces() -> None:
    pieces = ["Hel", "lo wo", "rld. E", "ND and more", " tokens"]
    assert "".join(cut_at_stop(iter(pieces), ["END"])) == "Hello world. "
    assert "".join(cut_at_stop(iter(pieces), [])) == "".join(pieces)
    assert "".join(cut_at_stop(iter(pieces), ["absent"])) == "".join(pieces)
    consumed = iter(pieces)
    list(cut_at_stop(consumed, ["lo"]))
    assert list(consumed) == []  # generation runs to its end, so its usage is recorded


def test_hybrid_mode_puts_the_retrieved_documents_before_the_question(tiny_memory: Any) -> None:
    llm = ChatRagTune(
        workspace=str(tiny_memory.root), mode="hybrid", retriever=NotesRetriever(), device="cpu"
    )
    messages = [SystemMessage("Be brief."), HumanMessage("Where did Clara move?")]
    prompt = llm._prompt(messages)
    assert prompt[0] == {"role": "system", "content": "Be brief."}
    content = prompt[1]["content"]
    assert "[2024-03-02 10:00]\nClara moved to Porto.\n\nRui coaches kayak." in content
    assert content.endswith("Question: Where did Clara move?")
    native = ChatRagTune(workspace=str(tiny_memory.root), device="cpu", max_tokens=4)
    assert native._prompt(messages)[1]["content"] == "Where did Clara move?"
    hybrid_answer = llm.invoke(messages, max_tokens=4)
    native_answer = native.invoke(messages)
    assert (
        hybrid_answer.usage_metadata["input_tokens"] > native_answer.usage_metadata["input_tokens"]
    )


def test_streaming_joins_to_the_answer_and_ends_with_usage(tiny_memory: Any) -> None:
    llm = ChatRagTune(workspace=str(tiny_memory.root), device="cpu", max_tokens=6)
    answer = llm.invoke("Who teaches Bob the cello?")
    chunks = list(llm.stream("Who teaches Bob the cello?"))
    assert "".join(str(c.content) for c in chunks) == answer.content
    last = chunks[-1]
    assert last.chunk_position == "last"
    assert last.usage_metadata == answer.usage_metadata
    assert answer.usage_metadata["output_tokens"] <= 6 + 1  # the end token counts
    assert answer.response_metadata["model_name"] == llm.model_name
    assert answer.response_metadata["adapter_version"] == 1  # which version answered


def test_a_chat_model_and_a_retriever_of_one_workspace_share_one_model(tiny_memory: Any) -> None:
    llm = ChatRagTune(workspace=str(tiny_memory.root), device="cpu")
    retriever = RagTuneRetriever(workspace=str(tiny_memory.root), device="cpu", k=2)
    assert llm.model is retriever.model
    documents = retriever.invoke("What is the name of Ann's cat?")
    assert len(documents) == 2
    units = read_text_units(tiny_memory.text_units_path)
    assert {d.metadata["unit_id"] for d in documents} <= {u.id for u in units}
    assert len(retriever.invoke("What is the name of Ann's cat?", k=1)) == 1


def test_bad_settings_and_content_get_clear_errors(tiny_memory: Any) -> None:
    with pytest.raises(ValueError, match="give a ragtune workspace path"):
        ChatRagTune()
    with pytest.raises(ValueError, match="hybrid mode puts retrieved passages"):
        ChatRagTune(workspace=str(tiny_memory.root), mode="hybrid")
    image = HumanMessage(content=[{"type": "image_url", "image_url": {"url": "x"}}])
    with pytest.raises(ValueError, match="ragtune models read text only, not 'image_url'"):
        to_ragtune_messages([image])
