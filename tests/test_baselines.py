"""`ragtune.baselines`: the Qdrant RAG index on every store available here (real MiniLM
embeddings, the real Qdrant engine and qdrant-client's local mode), the long-context window,
the shared reader with the adapter on and off, and the five systems."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch

from ragtune.baselines import (
    SYSTEM_NAMES,
    MemoryWindow,
    Reader,
    UnitIndex,
    build_systems,
    context_block,
)
from ragtune.corpus.tables import read_text_units, write_text_units
from ragtune.corpus.types import TextUnit
from ragtune.errors import RagtuneError
from ragtune.llm.types import Message
from ragtune.prompts import answer_messages, memory_messages
from ragtune.workspace import Workspace

#: Notes on unrelated topics; the planted one answers the planted question.
NOTES = [
    "The heating in the flat broke again and the landlord sent a plumber on Friday.",
    "We cooked a mushroom risotto for Grandma's birthday and she asked for seconds.",
    "The quarterly report is due on the 30th; finance wants the numbers by Tuesday.",
    "Talvi has violin lessons every Thursday with her teacher, Ismo Kettavaara.",
    "The train to Tampere was cancelled, so I took the bus and arrived two hours late.",
    "My knee hurt after the long run, so the physiotherapist suggested cycling instead.",
    "We planted tomatoes, basil and two rows of carrots in the allotment garden.",
    "The new phone's camera is great at night but the battery barely lasts a day.",
]
PLANTED = 3
PLANTED_QUESTION = "Who teaches Talvi to play the violin?"


def note_units(notes: list[str]) -> list[TextUnit]:
    return [
        TextUnit(
            TextUnit.make_id(f"doc-{i}", 0, text),
            f"doc-{i}",
            0,
            text,
            len(text.split()),
            0,
            len(text),
            f"2024-01-{i + 1:02d}T09:00:00",
        )
        for i, text in enumerate(notes)
    ]


@pytest.fixture
def notes_workspace(tmp_path: Path) -> Workspace:
    workspace = Workspace.at(tmp_path / "memory", create=True)
    write_text_units(workspace.text_units_path, note_units(NOTES))
    return workspace


# -- the RAG index -------------------------------------------------------------------------------


@pytest.mark.parametrize("store", ["qdrant-edge", "qdrant-local"])
def test_the_planted_unit_is_retrieved_first_for_the_planted_question(
    notes_workspace: Workspace, store: str
) -> None:
    index = UnitIndex.open(notes_workspace, store=store)
    try:
        found = index.search(PLANTED_QUESTION, k=3)
        assert index.store.kind == store
        assert index.store.count() == len(NOTES)
    finally:
        index.close()
    assert found[0].unit.text == NOTES[PLANTED]
    assert len(found) == 3
    assert found[0].score > found[1].score >= found[2].score
    assert 0 < found[0].score <= 1.0001  # cosine similarity


@pytest.mark.parametrize("store", ["qdrant-edge", "qdrant-local"])
def test_the_index_is_built_once_and_rebuilt_when_the_units_change(
    notes_workspace: Workspace, store: str
) -> None:
    UnitIndex.open(notes_workspace, store=store).close()
    state = notes_workspace.root / "baselines" / store / "index.json"
    built = state.stat().st_mtime_ns
    reopened = UnitIndex.open(notes_workspace, store=store)
    reopened.close()
    assert state.stat().st_mtime_ns == built  # reused, not rebuilt
    changed = [*NOTES[:PLANTED], "Talvi's violin teacher moved away; she now learns the flute."]
    write_text_units(notes_workspace.text_units_path, note_units(changed))
    index = UnitIndex.open(notes_workspace, store=store)
    try:
        assert index.store.count() == len(changed)
        assert index.search(PLANTED_QUESTION, k=1)[0].unit.text == changed[-1]
    finally:
        index.close()


def test_a_workspace_without_text_units_gets_a_clear_error(tmp_path: Path) -> None:
    workspace = Workspace.at(tmp_path / "empty", create=True)
    with pytest.raises(RagtuneError, match="has no text units; run `ragtune index` first"):
        UnitIndex.open(workspace)


def test_a_server_store_without_a_url_is_refused(notes_workspace: Workspace) -> None:
    with pytest.raises(RagtuneError, match="needs a URL"):
        UnitIndex.open(notes_workspace, store="qdrant-server")


# -- long context ---------------------------------------------------------------------------------


def word_count(text: str) -> int:
    return len(text.split())


def prompt_words(messages: Sequence[Message]) -> int:
    return sum(word_count(m["content"]) for m in messages)


def test_long_context_keeps_the_newest_passages_that_fit_and_reports_the_rest() -> None:
    units = note_units(NOTES)
    # Words stand in for tokens: a window that holds the prompt and about three notes.
    window = MemoryWindow(
        list(reversed(units)),  # any order in; time order out
        window=prompt_words(answer_messages("Q?", "")) + 60,
        reserved=10,
        count_tokens=prompt_words,
        count_text_tokens=word_count,
    )
    fitted = window.fit("Q?")
    kept = list(fitted.units)
    assert kept == units[-len(kept) :]  # the newest, oldest first
    assert 0 < len(kept) < len(units)
    prompt = answer_messages("Q?", context_block(kept))
    assert prompt_words(prompt) <= window.window - window.reserved
    one_more = answer_messages("Q?", context_block(units[-len(kept) - 1 :]))
    assert prompt_words(one_more) > window.window - window.reserved
    left_out = units[: -len(kept)]
    assert fitted.truncated_tokens >= sum(word_count(context_block([u])) for u in left_out)
    assert fitted.memory_tokens > fitted.truncated_tokens > 0


def test_long_context_keeps_everything_when_the_window_is_large() -> None:
    window = MemoryWindow(
        note_units(NOTES),
        window=10_000,
        reserved=48,
        count_tokens=prompt_words,
        count_text_tokens=word_count,
    )
    fitted = window.fit("Q?")
    assert len(fitted.units) == len(NOTES) and fitted.truncated_tokens == 0


def test_the_long_context_system_truncates_at_the_readers_window(
    tiny_memory: Workspace, tmp_path: Path
) -> None:
    """With the real tokenizer and a window smaller than the memory, the newest passage that
    fits is in the prompt, and the tokens of the rest are reported as cut."""
    reader = Reader.from_workspace(tiny_memory, adapter=None, device="cpu")
    units = read_text_units(tiny_memory.text_units_path)
    newest = sorted(units, key=lambda u: u.timestamp or "")[-1]
    question = "What is the name of Ann's cat?"
    # A window that holds the prompt with the newest passage and the answer, a little more.
    window = reader.count_tokens(answer_messages(question, context_block([newest]))) + 8 + 5
    reader.backend.model.config.max_position_embeddings = window  # what the system sees
    (system,) = build_systems(["long-context"], reader, units=units, max_new_tokens=8)
    answer = system.answer(question)
    assert answer.unit_ids == (newest.id,)
    assert window - 8 - 5 == answer.prompt_tokens
    everything = reader.count_text_tokens(
        context_block(sorted(units, key=lambda u: u.timestamp or ""))
    )
    assert answer.truncated_tokens == everything - reader.count_text_tokens(context_block([newest]))
    assert answer.truncated_tokens > 0


# -- the shared reader -----------------------------------------------------------------------------


def next_token_logits(reader: Reader, tuned: bool) -> torch.Tensor:
    messages = answer_messages("What was said on 2024-01-01T09:00:00?")
    prompt = reader.backend.render_prompt(messages)
    ids = reader.backend.tokenizer(prompt, add_special_tokens=False, return_tensors="pt")
    model = reader.backend.model
    switch = (
        model.disable_adapter() if reader.has_adapter and not tuned else contextlib.nullcontext()
    )
    with switch, torch.no_grad():
        return model(**ids).logits[0, -1]


def test_the_reader_answers_as_the_base_model_with_the_adapter_off(
    tiny_memory: Workspace,
) -> None:
    tuned = Reader.from_workspace(tiny_memory, device="cpu")
    plain = Reader.from_workspace(tiny_memory, adapter=None, device="cpu")
    assert tuned.has_adapter and not plain.has_adapter
    assert tuned.adapter_bytes > 0
    base_logits = next_token_logits(plain, tuned=False)
    assert torch.allclose(next_token_logits(tuned, tuned=False), base_logits, atol=1e-5)
    assert not torch.allclose(next_token_logits(tuned, tuned=True), base_logits, atol=1e-3)
    question = answer_messages("Who teaches Bob the cello?")
    off = tuned.read(question, tuned=False, max_new_tokens=8)
    assert off == plain.read(question, tuned=False, max_new_tokens=8)


def test_a_tuned_system_without_an_adapter_is_refused(tiny_memory: Workspace) -> None:
    plain = Reader.from_workspace(tiny_memory, adapter=None, device="cpu")
    (native,) = build_systems(["native"], plain)
    with pytest.raises(RagtuneError, match="need the memory adapter"):
        native.answer("Hi?")


# -- the systems ----------------------------------------------------------------------------------


def test_each_system_builds_its_prompt_from_its_own_memory(tiny_memory: Workspace) -> None:
    from ragtune.baselines.oracle import Evidence, GoldTurns
    from ragtune.corpus.tables import read_documents

    reader = Reader.from_workspace(tiny_memory, device="cpu")
    index = UnitIndex.open(tiny_memory)
    units = read_text_units(tiny_memory.text_units_path)
    gold = GoldTurns.from_documents(read_documents(tiny_memory.documents_path))
    evidence = Evidence("conv-tiny", ("D1:2",))
    try:
        systems = build_systems(
            SYSTEM_NAMES, reader, index=index, units=units, gold=gold, k=2, max_new_tokens=4
        )
        answers = {s.name: s.answer("Who teaches Bob the cello?", evidence) for s in systems}
    finally:
        index.close()
    assert [s.name for s in systems] == list(SYSTEM_NAMES)
    assert answers["oracle"].unit_ids == ("conv-tiny:D1:2",)  # the gold turn, nothing else
    oracle_prompt = answer_messages(
        "Who teaches Bob the cello?",
        "[2024-01-01 09:00]\nBob: Nice! I started learning the cello with a teacher named Ines.",
    )
    assert answers["oracle"].prompt_tokens == reader.count_tokens(oracle_prompt)
    question = answer_messages("Who teaches Bob the cello?")
    assert answers["base"].unit_ids == answers["native"].unit_ids == ()
    assert answers["base"].prompt_tokens == reader.count_tokens(question)
    # The tuned systems ask as the records were written: the memory's system message first.
    assert answers["native"].prompt_tokens == reader.count_tokens(memory_messages(question))
    assert answers["native"].prompt_tokens > answers["base"].prompt_tokens
    for name in ("rag", "hybrid"):
        assert len(answers[name].unit_ids) == 2
    assert answers["rag"].unit_ids == answers["hybrid"].unit_ids
    system_tokens = answers["native"].prompt_tokens - answers["base"].prompt_tokens
    assert answers["hybrid"].prompt_tokens == answers["rag"].prompt_tokens + system_tokens
    assert "Ines" in next(u.text for u in units if u.id == answers["rag"].unit_ids[0])
    assert set(answers["long-context"].unit_ids) == {u.id for u in units}
    assert answers["long-context"].truncated_tokens == 0
    for answer in answers.values():
        assert answer.seconds > 0 and 0 < answer.completion_tokens <= 4
    sizes = {s.name: s.memory_bytes for s in systems}
    assert sizes["base"] == sizes["oracle"] == 0 and sizes["native"] == reader.adapter_bytes > 0
    assert sizes["hybrid"] == sizes["rag"] + sizes["native"]
    assert sizes["rag"] > 80_000_000  # the embedding model's weights are part of RAG's memory


def test_an_unknown_system_is_refused_with_the_choices(tiny_memory: Workspace) -> None:
    reader = Reader.from_workspace(tiny_memory, adapter=None, device="cpu")
    with pytest.raises(RagtuneError, match="unknown system 'graphrag'; choose from native, rag"):
        build_systems(["graphrag"], reader)
