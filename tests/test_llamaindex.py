"""llama-index-ragtune: `RagTuneLLM` and `RagTuneRetriever` swapped into LlamaIndex's query and
chat engines over a memory built from LlamaIndex documents, against the same engine over a
`llama-index-vector-stores-qdrant` index; `LlamaIndexTeacher` driving a real `ragtune index`;
workspaces from readers and nodes; persisting the retriever."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from llama_index.core import Document, SimpleDirectoryReader, VectorStoreIndex
from llama_index.core.chat_engine import CondensePlusContextChatEngine, SimpleChatEngine
from llama_index.core.llms import ChatMessage, MockLLM
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.query_engine import RetrieverQueryEngine

import notes
from llama_index.llms.ragtune import LlamaIndexTeacher, RagTuneLLM
from llama_index.retrievers.ragtune import RagTuneRetriever, ingest_documents
from notes import QUESTION
from ragtune.corpus.tables import read_documents
from ragtune.errors import CorpusError
from ragtune.prompts import memory_messages
from ragtune.workspace import Workspace
from support import run_readme_section, tune_from_shared_memory

#: The notes of the shared embedded memory, as LlamaIndex documents.
NOTES = [Document(text=text, metadata=dict(metadata)) for text, metadata in notes.NOTES]


def embedded_llm(path: Path, max_new_tokens: int = 24) -> Any:
    """The embedded SmolLM2 as a LlamaIndex LLM (llama-index-llms-huggingface)."""
    from llama_index.llms.huggingface import HuggingFaceLLM

    return HuggingFaceLLM(
        model_name=str(path),
        tokenizer_name=str(path),
        context_window=2048,
        max_new_tokens=max_new_tokens,
        generate_kwargs={"do_sample": False},
        device_map="cpu",
        is_chat_model=True,
    )


@pytest.fixture(scope="module")
def memory(embedded_memory: Path) -> Path:
    """The shared embedded memory of the notes (`ingest_documents` gives the same workspace
    from these documents: `test_documents_and_nodes_become_the_same_workspace`)."""
    return embedded_memory


@pytest.mark.slow
def test_a_query_engine_answers_with_qdrant_and_then_with_ragtune_swapped_in(
    memory: Path, embedded_model: Any
) -> None:
    from llama_index.core import StorageContext
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.qdrant import QdrantVectorStore
    from qdrant_client import QdrantClient

    from ragtune.baselines.embedding import embedding_model_path

    store = QdrantVectorStore(client=QdrantClient(location=":memory:"), collection_name="notes")
    index = VectorStoreIndex.from_documents(
        NOTES,
        storage_context=StorageContext.from_defaults(vector_store=store),
        embed_model=HuggingFaceEmbedding(model_name=str(embedding_model_path())),
    )
    baseline = RetrieverQueryEngine.from_args(
        index.as_retriever(similarity_top_k=1), llm=embedded_llm(embedded_model.path)
    )
    assert "Porto" in str(baseline.query(QUESTION))

    retriever = RagTuneRetriever(memory, similarity_top_k=1)
    llm = RagTuneLLM(workspace=str(memory), max_tokens=24)
    engine = RetrieverQueryEngine.from_args(retriever, llm=llm)
    response = engine.query(QUESTION)
    assert "Porto" in str(response)
    (source,) = response.source_nodes
    assert source.node.get_content() == NOTES[0].text
    assert source.node.metadata["timestamp"] == "2024-03-02T10:00:00"

    streaming = RetrieverQueryEngine.from_args(retriever, llm=llm, streaming=True)
    pieces = list(streaming.query(QUESTION).response_gen)
    assert len(pieces) > 1 and "Porto" in "".join(pieces)


@pytest.mark.slow
def test_chat_engines_hold_a_two_turn_conversation(memory: Path) -> None:
    llm = RagTuneLLM(workspace=str(memory), max_tokens=24)
    simple = SimpleChatEngine.from_defaults(llm=llm)
    assert "Porto" in str(simple.chat(QUESTION))
    second = simple.chat("And what does she do there?")
    assert str(second).strip()
    assert len(simple.chat_history) == 4

    retriever = RagTuneRetriever(memory, similarity_top_k=1)
    engine = CondensePlusContextChatEngine.from_defaults(retriever=retriever, llm=llm)
    assert "Porto" in str(engine.chat(QUESTION))
    follow_up = engine.chat("Who coaches me at the kayak club?")
    assert str(follow_up).strip()
    assert len(engine.chat_history) == 4


@pytest.mark.slow
def test_chat_uses_the_models_chat_template_and_streams(memory: Path) -> None:
    llm = RagTuneLLM(workspace=str(memory), max_tokens=16)
    assert llm.metadata.is_chat_model and llm.metadata.num_output == 16
    assert llm.metadata.context_window == 8192
    messages = [ChatMessage(role="user", content=QUESTION)]
    answer = llm.chat(messages)
    assert "Porto" in str(answer.message.content)
    assert answer.raw["completion_tokens"] > 0
    assert answer.raw["adapter_version"] == llm.model.version == 1  # which version answered
    rendered = llm.model.backend.render_prompt(
        memory_messages([{"role": "user", "content": QUESTION}])
    )
    assert answer.raw["prompt_tokens"] == len(llm.model.backend.tokenizer(rendered)["input_ids"])
    streamed = list(llm.stream_chat(messages))
    assert streamed[-1].message.content == answer.message.content
    assert "".join(r.delta or "" for r in streamed) == answer.message.content


async def test_async_variants_answer_like_the_sync_ones(tiny_memory: Workspace) -> None:
    llm = RagTuneLLM(workspace=str(tiny_memory.root), max_tokens=6, device="cpu")
    messages = [ChatMessage(role="user", content="Who teaches Bob the cello?")]
    sync = llm.chat(messages)
    assert (await llm.achat(messages)).message.content == sync.message.content
    assert (await llm.acomplete("Who teaches Bob the cello?")).text == sync.message.content
    pieces = [r.delta async for r in await llm.astream_chat(messages)]
    assert "".join(p or "" for p in pieces) == sync.message.content


def test_hybrid_mode_puts_retrieved_nodes_before_the_question(tiny_memory: Workspace) -> None:
    retriever = RagTuneRetriever(tiny_memory.root, similarity_top_k=2, device="cpu", max_tokens=8)
    llm = RagTuneLLM(workspace=str(tiny_memory.root), mode="hybrid", retriever=retriever)
    (prompt,) = llm._prompt([ChatMessage(role="user", content="Where did Ann move?")])
    assert prompt["content"].endswith("Question: Where did Ann move?")
    assert prompt["content"].count("[2024-") == 2  # two dated passages
    with pytest.raises(ValueError, match="hybrid mode puts retrieved passages"):
        RagTuneLLM(workspace=str(tiny_memory.root), mode="hybrid")


def test_the_retriever_returns_real_units_and_persists(
    tiny_memory: Workspace, tmp_path: Path
) -> None:
    from llama_index.core.schema import QueryBundle

    from ragtune.corpus.tables import read_text_units

    retriever = RagTuneRetriever(tiny_memory.root, similarity_top_k=2, device="cpu", max_tokens=8)
    found = retriever.retrieve(QueryBundle("What is the name of Ann's cat?"))
    units = {u.id: u for u in read_text_units(tiny_memory.text_units_path)}
    assert len(found) == 2
    for hit in found:
        assert hit.node.get_content() == units[hit.node.node_id].text
        assert hit.score is not None and hit.node.metadata["source"].startswith("tiny.json#")
    retriever.persist(tmp_path / "persisted")
    again = RagTuneRetriever.from_persist_dir(tmp_path / "persisted", device="cpu")
    assert (again.workspace, again.similarity_top_k) == (retriever.workspace, 2)
    assert [h.node.node_id for h in again.retrieve("What is the name of Ann's cat?")] == [
        h.node.node_id for h in found
    ]
    with pytest.raises(ValueError, match="no persisted ragtune retriever"):
        RagTuneRetriever.from_persist_dir(tmp_path / "nothing")


def test_workspaces_from_a_reader_and_from_nodes(tmp_path: Path, tiny_model_dir: Path) -> None:
    tiny = [f"model=hf:{tiny_model_dir}"]  # its tokenizer cuts the text units
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.md").write_text("Ann adopted a cat called Pixel.", encoding="utf-8")
    (notes / "b.md").write_text("Bob plays the cello in Lisbon.", encoding="utf-8")
    root = ingest_documents(SimpleDirectoryReader(str(notes)), tmp_path / "from-reader", tiny)
    documents = read_documents(root / "documents.parquet")
    assert [d.text for d in documents] == [
        "Ann adopted a cat called Pixel.",
        "Bob plays the cello in Lisbon.",
    ]
    assert [d.metadata["file_name"] for d in documents] == ["a.md", "b.md"]

    nodes = SentenceSplitter(chunk_size=64, chunk_overlap=0).get_nodes_from_documents(NOTES)
    root = ingest_documents(nodes, tmp_path / "from-nodes", tiny)
    from_nodes = read_documents(root / "documents.parquet")
    assert [d.text for d in from_nodes] == [n.get_content() for n in nodes]
    assert from_nodes[0].timestamp == "2024-03-02T10:00:00"
    with pytest.raises(CorpusError, match="no documents with text"):
        ingest_documents([Document(text="  ")], tmp_path / "nothing", tiny)


def test_mock_llm_drives_the_llm_index_as_teacher(make_workspace: Any) -> None:
    """MockLLM echoes its prompt, which is no extraction: every unit is asked, repaired twice
    and recorded as failed, and the index is still built."""
    from ragtune.index.pipeline import build_index

    workspace, config, units = make_workspace(
        "index.gleanings=0", "index.summaries=extractive", "index.reports=extractive"
    )
    teacher = LlamaIndexTeacher(MockLLM(max_tokens=32))
    report = build_index(workspace, config, teacher=teacher, progress=False)
    assert report.extractor == "llm" and report.extracted == len(units)
    assert report.teacher_calls == 3 * len(units)  # the first answer and two repairs each
    assert sorted(unit for unit, _ in report.failures) == sorted(u.id for u in units)
    assert teacher.model_name and teacher.fingerprint.startswith("llamaindex:MockLLM:")


@pytest.mark.slow
def test_the_embedded_model_as_a_llamaindex_llm_drives_the_llm_index(
    make_workspace: Any, embedded_model: Any
) -> None:
    from ragtune.corpus.tables import write_text_units
    from ragtune.index.pipeline import build_index

    # One unit, and index.max_tokens bounding each answer: the teacher sets it as the LLM's
    # max_new_tokens (left at its default of 1024, SmolLM2 rambles for minutes per unit).
    workspace, config, units = make_workspace(
        "index.gleanings=0",
        "index.summaries=extractive",
        "index.reports=extractive",
        "index.max_tokens=64",
    )
    units = units[:1]
    write_text_units(workspace.text_units_path, units)
    # No repair turns: one request for the unit (repairs are tested with scripted answers).
    teacher = LlamaIndexTeacher(
        embedded_llm(embedded_model.path, 64), max_concurrency=1, structured_retries=0
    )
    report = build_index(workspace, config, teacher=teacher, progress=False)
    assert report.extractor == "llm" and report.extracted == len(units)
    assert report.teacher_calls >= len(units)
    assert all(unit in {u.id for u in units} for unit, _ in report.failures)


@pytest.mark.slow
def test_the_readme_llamaindex_section_runs_as_written(
    embedded_memory: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """The README's code, as written, with `tune_memory` giving its workspace the adapter the
    session's `embedded_memory` trained from the same notes and settings (checked)."""
    tuned = tune_from_shared_memory(monkeypatch, embedded_memory)
    monkeypatch.chdir(tmp_path)
    run_readme_section("LlamaIndex", tmp_path)
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(tuned) == 1
    assert printed and "Porto" in printed[-1], printed
