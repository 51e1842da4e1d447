"""A LangChain RAG chain built the way LangChain's RAG tutorial builds it, first over a
`langchain-qdrant` vector store and the untuned embedded model, then with `RagTuneRetriever` and
`ChatRagTune` swapped in and nothing else changed; the memory comes from LangChain documents
through `RagTuneMemory.from_documents`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough

import notes
from langchain_ragtune import ChatRagTune, RagTuneMemory, RagTuneRetriever, ingest_documents
from notes import QUESTION
from ragtune.corpus.tables import read_documents, read_text_units
from ragtune.errors import CorpusError
from support import run_readme_section, tune_from_shared_memory

#: The notes of the shared embedded memory, as LangChain documents.
NOTES = [Document(text, metadata=dict(metadata)) for text, metadata in notes.NOTES]
PROMPT = ChatPromptTemplate.from_template(
    "Answer the question from the context, in a few words.\n\n"
    "Context:\n{context}\n\nQuestion: {question}"
)


def format_docs(documents: list[Document]) -> str:
    return "\n\n".join(document.page_content for document in documents)


def rag_chain(retriever: Any, llm: Any) -> Any:
    """The tutorial's chain, unchanged whatever retriever and model it is given."""
    return (
        {"context": retriever | format_docs, "question": RunnablePassthrough()}
        | PROMPT
        | llm
        | StrOutputParser()
    )


def test_documents_become_a_workspace_with_their_metadata(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    tiny = [f"model=hf:{tiny_model_dir}"]  # its tokenizer cuts the text units
    metadata = {**NOTES[0].metadata, "mood": 3}
    with_id = Document(NOTES[0].page_content, metadata=metadata, id="clara")
    root = ingest_documents([with_id, NOTES[1]], tmp_path / "memory", tiny)
    documents = read_documents(root / "documents.parquet")
    assert [d.text for d in documents] == [n.page_content for n in NOTES[:2]]
    clara = documents[0]
    again = ingest_documents([with_id, NOTES[1]], tmp_path / "again", tiny)
    assert read_documents(again / "documents.parquet")[0].id == clara.id  # stable from the id
    assert clara.timestamp == "2024-03-02T10:00:00"
    assert clara.metadata["source"] == "notes/clara.md" and clara.metadata["mood"] == 3
    assert len(read_text_units(root / "text_units.parquet")) == 2


class NotesLoader(BaseLoader):
    """A LangChain document loader: the Markdown files of a folder, one document each."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def lazy_load(self) -> Iterator[Document]:
        for path in sorted(self.folder.glob("*.md")):
            yield Document(path.read_text(encoding="utf-8"), metadata={"source": path.name})


def test_a_loaders_documents_become_a_workspace(tmp_path: Path, tiny_model_dir: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.md").write_text("Ann adopted a cat called Pixel.", encoding="utf-8")
    (folder / "b.md").write_text("Bob plays the cello.", encoding="utf-8")
    (folder / "empty.md").write_text("  \n", encoding="utf-8")  # no text: not a document
    settings = ["chunking.size=300", f"model=hf:{tiny_model_dir}"]
    root = ingest_documents(NotesLoader(folder), tmp_path / "memory", settings)
    documents = read_documents(root / "documents.parquet")
    assert [(d.text, d.metadata["source"]) for d in documents] == [
        ("Ann adopted a cat called Pixel.", "a.md"),
        ("Bob plays the cello.", "b.md"),
    ]
    assert "size: 300" in (root / "memory.yaml").read_text(encoding="utf-8")
    with pytest.raises(CorpusError, match="no documents with text"):
        ingest_documents([], tmp_path / "nothing", settings)


@pytest.fixture(scope="module")
def memory(embedded_memory: Path) -> RagTuneMemory:
    """The shared embedded memory of the notes (built as `RagTuneMemory.from_documents`
    builds one: ingest the texts, then `tune_memory`)."""
    return RagTuneMemory(embedded_memory)


@pytest.mark.slow
def test_the_tutorial_chain_answers_with_qdrant_and_then_with_ragtune_swapped_in(
    memory: RagTuneMemory, embedded_model: Any
) -> None:
    from langchain_huggingface import ChatHuggingFace, HuggingFaceEmbeddings, HuggingFacePipeline
    from langchain_qdrant import QdrantVectorStore

    from ragtune.baselines.embedding import embedding_model_path

    embeddings = HuggingFaceEmbeddings(model_name=str(embedding_model_path()))
    store = QdrantVectorStore.from_documents(
        NOTES, embeddings, location=":memory:", collection_name="notes"
    )
    untuned = ChatHuggingFace(
        llm=HuggingFacePipeline.from_model_id(
            model_id=str(embedded_model.path),
            task="text-generation",
            pipeline_kwargs={"max_new_tokens": 24, "do_sample": False, "return_full_text": False},
        )
    )
    baseline = rag_chain(store.as_retriever(search_kwargs={"k": 1}), untuned).invoke(QUESTION)

    retriever = memory.as_retriever(k=1)
    llm = memory.as_chat_model(max_tokens=24)
    assert isinstance(retriever, RagTuneRetriever) and isinstance(llm, ChatRagTune)
    swapped = rag_chain(retriever, llm).invoke(QUESTION)

    assert "Porto" in baseline  # the baseline works: the context holds the answer
    assert "Porto" in swapped
    (recalled,) = retriever.invoke(QUESTION)
    assert recalled.page_content == NOTES[0].page_content
    assert recalled.metadata["timestamp"] == "2024-03-02T10:00:00"
    # From memory alone, no context in the prompt:
    assert "Porto" in llm.invoke(QUESTION).content


@pytest.mark.slow
def test_the_readme_langchain_section_runs_as_written(
    embedded_memory: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """The README's code, as written: its notes become a workspace through
    `RagTuneMemory.from_documents`, whose training step gives it the adapter the session's
    `embedded_memory` trained from the same notes and settings (checked), so the answers
    printed are a real tuned model's."""
    tuned = tune_from_shared_memory(monkeypatch, embedded_memory)
    monkeypatch.chdir(tmp_path)
    run_readme_section("LangChain", tmp_path)
    printed = capsys.readouterr().out.splitlines()
    assert len(tuned) == 1
    assert len(printed) == 2
    assert all("Porto" in line for line in printed), printed
    assert (tmp_path / "langchain-memory" / "adapters" / "default" / "manifest.json").is_file()
