"""`LangChainTeacher`: LangChain chat models driving a real `ragtune index` as the teacher —
LangChain's own fake chat models (the stand-ins for remote models) and the embedded SmolLM2
wrapped as a LangChain chat model (`ChatHuggingFace`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.language_models import FakeListChatModel, GenericFakeChatModel
from langchain_core.messages import AIMessage

from langchain_ragtune import LangChainTeacher
from ragtune.config import MemoryConfig
from ragtune.corpus.types import TextUnit
from ragtune.index.pipeline import build_index
from ragtune.index.tables import read_index
from ragtune.llm import GenerationParams
from ragtune.workspace import Workspace
from support import extraction_json

MakeWorkspace = Callable[..., tuple[Workspace, MemoryConfig, list[TextUnit]]]
EXTRACTION_ONLY = ("index.gleanings=0", "index.summaries=extractive", "index.reports=extractive")
ANSWER = extraction_json(
    [("Rui Matos", "person", "A kayak coach."), ("Lisbon", "geo", "A city.")],
    [("Rui Matos", "Lisbon", "Rui Matos coaches in Lisbon.", 7.0)],
)


def test_a_fake_list_chat_model_drives_the_llm_index(make_workspace: MakeWorkspace) -> None:
    workspace, config, units = make_workspace(*EXTRACTION_ONLY)
    teacher = LangChainTeacher(FakeListChatModel(responses=[ANSWER]))

    report = build_index(workspace, config, teacher=teacher, progress=False)

    assert report.extractor == "llm"
    assert (report.extracted, report.failures) == (len(units), [])
    assert report.teacher_calls == len(units)
    titles = {entity.title for entity in read_index(workspace).entities}
    assert titles == {"Rui Matos", "Lisbon"}
    assert report.relationships == 1


def test_an_invalid_structured_answer_is_repaired_through_langchain(
    make_workspace: MakeWorkspace,
) -> None:
    workspace, config, units = make_workspace(*EXTRACTION_ONLY)
    replies = iter([AIMessage(content="Sure! Here are the entities.")] + [AIMessage(ANSWER)] * 9)
    teacher = LangChainTeacher(GenericFakeChatModel(messages=replies))

    report = build_index(workspace, config, teacher=teacher, progress=False)

    assert (report.extracted, report.failures) == (len(units), [])
    assert report.teacher_calls == len(units) + 1  # one repair turn


def test_generation_settings_reach_the_model_where_it_has_them() -> None:
    seen: list[Any] = []

    class Recording(FakeListChatModel):
        max_tokens: int = 0
        temperature: float = 1.0

        def _call(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any) -> str:
            seen.append((self.max_tokens, self.temperature, stop, [m.type for m in messages]))
            return "Porto. The end."

    teacher = LangChainTeacher(Recording(responses=["unused"]))
    answer = teacher.chat(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Where?"}],
        params=GenerationParams(max_tokens=12, temperature=0.0, stop=(" The end",)),
    )
    assert answer.text == "Porto."
    assert seen == [(12, 0.0, [" The end"], ["system", "human"])]
    assert teacher.model_name == "fake-list-chat-model"
    assert teacher.fingerprint.startswith("langchain:")


@pytest.mark.slow
def test_the_embedded_model_as_a_langchain_chat_model_drives_the_llm_index(
    make_workspace: MakeWorkspace, embedded_model: Any
) -> None:
    from langchain_huggingface import ChatHuggingFace, HuggingFacePipeline

    from ragtune.corpus.tables import write_text_units

    pipeline = HuggingFacePipeline.from_model_id(
        model_id=str(embedded_model.path),
        task="text-generation",
        pipeline_kwargs={"max_new_tokens": 64, "do_sample": False, "return_full_text": False},
    )
    # No repair turns: one request for the unit (repairs are tested with fake chat models).
    teacher = LangChainTeacher(
        ChatHuggingFace(llm=pipeline), max_concurrency=1, structured_retries=0
    )
    # One unit, each answer bounded: SmolLM2 on CPU writes about 15 tokens a second.
    workspace, config, units = make_workspace(*EXTRACTION_ONLY, "index.max_tokens=64")
    units = units[:1]
    write_text_units(workspace.text_units_path, units)

    report = build_index(workspace, config, teacher=teacher, progress=False)

    assert report.extractor == "llm"
    assert report.extracted == len(units)
    # Every unit asked, repairs on top. SmolLM2-135M rarely writes the extraction schema;
    # its failures are recorded per unit (and the index is built from what did parse).
    assert report.teacher_calls >= len(units)
    assert all(unit_id in {u.id for u in units} for unit_id, _ in report.failures)


def test_rag_tune_memory_from_documents_uses_the_langchain_teacher(
    tiny_model_dir: Any, tmp_path: Any
) -> None:
    """The one-call path with a teacher: the teacher extracts the graph (the template writers
    synthesize here, since a fake list model cannot write questions), then training."""
    import json

    from langchain_core.documents import Document

    from langchain_ragtune import RagTuneMemory

    notes = [
        Document("Rui Matos coaches kayaking in Lisbon.", metadata={"source": "kayak.md"}),
        Document("Rui Matos moved to Lisbon in 2019.", metadata={"source": "move.md"}),
    ]
    memory = RagTuneMemory.from_documents(
        notes,
        tmp_path / "memory",
        base_model=f"hf:{tiny_model_dir}",
        teacher=FakeListChatModel(responses=[ANSWER]),
        settings=[
            f"chunking.tokenizer=hf:{tiny_model_dir}",
            *EXTRACTION_ONLY,
            "synth.writer=heuristic",
            "train.max_steps=2",
            "train.batch_size=2",
        ],
    )
    summary = json.loads((memory.workspace / "index.json").read_text(encoding="utf-8"))
    assert summary["extractor"] == "llm" and summary["teacher_calls"] == 2
    titles = {e.title for e in read_index(Workspace.at(memory.workspace)).entities}
    assert titles == {"Rui Matos", "Lisbon"}
    assert (memory.workspace / "adapters" / "default" / "manifest.json").is_file()
    assert memory.as_retriever(k=1).k == 1 and memory.as_chat_model().adapter == "default"
