"""`ragtune.model.MemoryModel`: the tiny random model of `tiny_model_dir` with the session's
shared adapter (`tiny_notes_memory`, trained two steps), loaded from its workspace; answering,
chatting and streaming with token usage, recalling source passages grounded by BM25, and
refusing adapters that are missing or were trained on other base weights.

The tiny model writes garbage, so the tests check contracts that hold whatever it writes: the
streamed pieces make up the answer, the usage adds up, and every recollection is a real text
unit of the workspace with its metadata.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ragtune.corpus.types import Document, TextUnit
from ragtune.errors import BackendError, RagtuneError
from ragtune.llm.types import Message, TokenUsage
from ragtune.llm.weights import weights_hash
from ragtune.model import MemoryModel, Recollection
from ragtune.model.bm25 import BM25
from ragtune.prompts import memory_messages, recall_question
from ragtune.testing import build_tiny_chat_model
from ragtune.workspace import Workspace
from tiny_notes import QUESTION, corpus
from train_support import adapter_tensors

MAX_NEW_TOKENS = 24


@dataclass
class Memory:
    workspace: Workspace
    documents: list[Document]
    units: list[TextUnit]
    model: MemoryModel

    @property
    def adapter(self) -> Path:
        return self.workspace.adapter_path("default")


@pytest.fixture(scope="module")
def memory(tiny_notes_memory: Path) -> Memory:
    """The shared tiny adapter (`tiny_notes_memory`: documents, text units and an adapter
    trained two steps) and its `MemoryModel`."""
    documents, units = corpus()
    model = MemoryModel.from_workspace(tiny_notes_memory)
    return Memory(Workspace.at(tiny_notes_memory), documents, units, model)


def prompt_tokens(model: MemoryModel, messages: list[Message]) -> int:
    """How many tokens the prompt of `messages` is as the tuned model is asked: the memory's
    system message first, chat template applied."""
    prompt = model.backend.render_prompt(memory_messages(messages))
    return len(model.backend.tokenizer(prompt, add_special_tokens=False)["input_ids"])


def copy_workspace(memory: Memory, target: Path) -> Workspace:
    shutil.copytree(memory.workspace.root, target)
    return Workspace.at(target)


def edit_manifest(folder: Path, **base_model: str) -> None:
    path = folder / "manifest.json"
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    data["base_model"].update(base_model)
    path.write_text(json.dumps(data), encoding="utf-8")


# -- loading --------------------------------------------------------------------------------


def test_from_workspace_loads_the_base_model_with_the_trained_adapter(
    memory: Memory, tiny_model_dir: Path
) -> None:
    from peft import PeftModel

    model = memory.model
    assert model.model_name == f"{tiny_model_dir.name}+default"
    assert model.manifest.adapter == "default"
    assert model.manifest.base_model["weights_sha256"] == weights_hash(str(tiny_model_dir))
    assert model.workspace.root == memory.workspace.root
    assert isinstance(model.backend.model, PeftModel)
    # The LoRA weights in the model are the trained ones of the adapter folder.
    saved = adapter_tensors(memory.adapter)
    loaded = {
        name.replace(".default.", "."): parameter
        for name, parameter in model.backend.model.named_parameters()
        if "lora_" in name
    }
    assert set(loaded) == set(saved)
    for name, tensor in saved.items():
        assert loaded[name].detach().to(tensor.dtype).equal(tensor), name
    assert any(t.abs().max().item() > 0 for n, t in saved.items() if ".lora_B." in n)


def test_answer_returns_text_greedily_and_counts_its_tokens(memory: Memory) -> None:
    model = memory.model
    before = model.usage

    answer = model.answer(QUESTION, max_new_tokens=MAX_NEW_TOKENS)

    assert isinstance(answer, str) and answer
    usage = model.last_usage
    assert usage.prompt_tokens == prompt_tokens(model, [Message(role="user", content=QUESTION)])
    assert 0 < usage.completion_tokens <= MAX_NEW_TOKENS
    assert model.usage == before + usage
    # Temperature 0 is greedy: the same question gets the same answer.
    assert model.answer(QUESTION, max_new_tokens=MAX_NEW_TOKENS) == answer
    assert model.last_usage == usage
    assert model.usage == before + usage + usage


def test_an_adapter_trained_on_other_weights_is_refused(memory: Memory, tmp_path: Path) -> None:
    workspace = copy_workspace(memory, tmp_path / "memory")
    edit_manifest(workspace.adapter_path("default"), weights_sha256="0" * 64)

    with pytest.raises(RagtuneError) as raised:
        MemoryModel.from_workspace(workspace.root)

    message = str(raised.value)
    assert "adapter 'default'" in message
    assert "weights sha256 000000000000" in message  # what the adapter was trained on
    assert weights_hash(memory.model.manifest.base_model["source"])[:12] in message  # found
    assert "retrain" in message
    assert raised.value.path == str(workspace.adapter_path("default"))


def test_an_adapter_whose_base_model_folder_now_holds_other_weights_is_refused(
    memory: Memory, tmp_path: Path
) -> None:
    # The manifest's base model folder is replaced by another model (other random weights).
    other = build_tiny_chat_model(tmp_path / "other-model", seed=1)
    assert weights_hash(str(other)) != memory.model.manifest.base_model["weights_sha256"]
    workspace = copy_workspace(memory, tmp_path / "memory")
    edit_manifest(workspace.adapter_path("default"), spec=f"hf:{other}", source=str(other))

    with pytest.raises(RagtuneError, match="adapter 'default' was trained on") as raised:
        MemoryModel.from_workspace(workspace.root)

    message = str(raised.value)
    assert f"hf:{other}" in message
    assert memory.model.manifest.base_model["weights_sha256"][:12] in message
    assert weights_hash(str(other))[:12] in message


def test_a_missing_adapter_is_a_clear_error_naming_it(memory: Memory) -> None:
    with pytest.raises(RagtuneError, match=r"has no adapter 'nonesuch'; run `ragtune train`"):
        MemoryModel.from_workspace(memory.workspace.root, "nonesuch")


def test_an_adapter_folder_without_a_manifest_is_a_clear_error(
    memory: Memory, tmp_path: Path
) -> None:
    workspace = copy_workspace(memory, tmp_path / "memory")
    (workspace.adapter_path("default") / "manifest.json").unlink()

    with pytest.raises(RagtuneError, match=r"no manifest\.json") as raised:
        MemoryModel.from_workspace(workspace.root)
    assert raised.value.path == str(workspace.adapter_path("default"))


def test_a_missing_workspace_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RagtuneError, match="no such workspace"):
        MemoryModel.from_workspace(tmp_path / "no-such-memory")
    assert not (tmp_path / "no-such-memory").exists()


# -- streaming ------------------------------------------------------------------------------


# The tiny model's greedy answer to the second question begins with a space token.
@pytest.mark.parametrize("question", [QUESTION, "What is fact 3?"])
def test_stream_pieces_concatenate_to_the_answer(memory: Memory, question: str) -> None:
    model = memory.model
    answer = model.answer(question, max_new_tokens=MAX_NEW_TOKENS)

    pieces = list(model.stream(question, max_new_tokens=MAX_NEW_TOKENS, temperature=0.0))

    assert pieces and all(isinstance(piece, str) and piece for piece in pieces)
    assert "".join(pieces) == answer


def test_stream_generates_the_same_tokens_as_answer(memory: Memory) -> None:
    # The same greedy tokens, hence the same text but for surrounding whitespace (which
    # `answer` strips; see test_stream_pieces_concatenate_to_the_answer).
    model = memory.model
    answer = model.answer("What is fact 3?", max_new_tokens=MAX_NEW_TOKENS)
    answer_usage = model.last_usage

    streamed = "".join(model.stream("What is fact 3?", max_new_tokens=MAX_NEW_TOKENS))

    assert streamed.strip() == answer
    assert model.last_usage == answer_usage


def test_stream_usage_counts_prompt_and_completion_and_accumulates(memory: Memory) -> None:
    model = memory.model
    first_question, second_question = QUESTION, "What is fact 3? Tell me everything about it."
    start = model.usage

    list(model.stream(first_question, max_new_tokens=MAX_NEW_TOKENS))
    first = model.last_usage
    assert first.prompt_tokens == prompt_tokens(
        model, [Message(role="user", content=first_question)]
    )
    assert 0 < first.completion_tokens <= MAX_NEW_TOKENS
    assert model.usage == start + first

    list(model.stream(second_question, max_new_tokens=MAX_NEW_TOKENS))
    second = model.last_usage
    assert second.prompt_tokens == prompt_tokens(
        model, [Message(role="user", content=second_question)]
    )
    assert second.prompt_tokens > first.prompt_tokens  # a longer question
    assert 0 < second.completion_tokens <= MAX_NEW_TOKENS
    assert model.usage == start + first + second
    assert model.usage.total_tokens > start.total_tokens + first.total_tokens


def test_stream_of_a_conversation_continues_it(memory: Memory) -> None:
    model = memory.model
    conversation = [
        Message(role="user", content="What is fact 3?"),
        Message(role="assistant", content="Fact 3 is 21."),
        Message(role="user", content="And fact 4?"),
    ]
    answer = model.chat(conversation, max_new_tokens=MAX_NEW_TOKENS)

    streamed = "".join(model.stream(conversation, max_new_tokens=MAX_NEW_TOKENS))

    assert streamed.strip() == answer
    assert model.last_usage.prompt_tokens == prompt_tokens(model, conversation)


def test_stream_raises_when_generation_fails(
    memory: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Generation runs in a worker thread; its error (a CUDA out-of-memory, say) must reach the
    # caller of `stream` instead of leaving it waiting for pieces that never come.
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(memory.model.backend.model, "generate", fail)
    outcome: dict[str, Any] = {}

    def consume() -> None:
        try:
            outcome["pieces"] = list(memory.model.stream(QUESTION, max_new_tokens=4))
        except Exception as error:
            outcome["error"] = error

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    consumer.join(timeout=10)

    assert not consumer.is_alive(), "stream() still waits for pieces 10 s after generate failed"
    assert isinstance(outcome.get("error"), RuntimeError), outcome


def test_stream_refuses_a_prompt_beyond_the_context_window_like_answer(memory: Memory) -> None:
    model = memory.model
    window = model.backend.context_window
    assert window is not None
    question = "fox " * window  # more tokens than the window holds

    with pytest.raises(BackendError, match="context window"):
        model.answer(question, max_new_tokens=4)
    with pytest.raises(BackendError, match="context window"):
        list(model.stream(question, max_new_tokens=4))


# -- chat -----------------------------------------------------------------------------------


def test_chat_answers_a_multi_turn_conversation(memory: Memory) -> None:
    model = memory.model
    conversation = [
        Message(role="system", content="You answer from memory."),
        Message(role="user", content="What is fact 3?"),
        Message(role="assistant", content="Fact 3 is 21."),
        Message(role="user", content="And fact 4?"),
    ]
    before = model.usage

    reply = model.chat(conversation, max_new_tokens=MAX_NEW_TOKENS)

    assert isinstance(reply, str) and reply
    # The whole conversation was the prompt, not just its last turn.
    usage = model.last_usage
    assert usage.prompt_tokens == prompt_tokens(model, conversation)
    assert usage.prompt_tokens > prompt_tokens(model, conversation[-1:])
    assert 0 < usage.completion_tokens <= MAX_NEW_TOKENS
    assert model.usage == before + usage
    # A single-turn chat is what `answer` does.
    assert model.chat(conversation[1:2], max_new_tokens=MAX_NEW_TOKENS) == model.answer(
        "What is fact 3?", max_new_tokens=MAX_NEW_TOKENS
    )


def test_chat_stop_strings_end_the_reply(memory: Memory) -> None:
    model = memory.model
    conversation = [Message(role="user", content=QUESTION)]
    full = model.chat(conversation, max_new_tokens=MAX_NEW_TOKENS)
    stop = full.strip()[len(full.strip()) // 2 :][:2]  # two characters from its middle
    assert stop.strip()

    stopped = model.chat(conversation, max_new_tokens=MAX_NEW_TOKENS, stop=[stop])

    assert stop not in stopped
    assert full.startswith(stopped)
    assert len(stopped) < len(full)


# -- recall ---------------------------------------------------------------------------------


def assert_real_unit(memory: Memory, found: Recollection) -> None:
    """`found` is a text unit of the workspace, with its document's metadata."""
    units = {unit.id: unit for unit in memory.units}
    documents = {document.id: document for document in memory.documents}
    assert found.unit_id in units, found
    unit = units[found.unit_id]
    assert found.text == unit.text
    assert found.document_id == unit.document_id
    assert found.source == documents[unit.document_id].source
    assert found.timestamp == unit.timestamp
    assert found.turn_ids == unit.turn_ids
    assert isinstance(found.score, float) and found.score > 0


def test_recall_returns_at_most_k_real_text_units_with_their_metadata(memory: Memory) -> None:
    found = memory.model.recall(QUESTION, k=3, max_new_tokens=MAX_NEW_TOKENS)

    assert 1 <= len(found) <= 3  # the question's own words match a unit
    for recollection in found:
        assert_real_unit(memory, recollection)
    assert len({r.unit_id for r in found}) == len(found)
    assert [r.score for r in found] == sorted((r.score for r in found), reverse=True)
    # What the model wrote is kept; it is one answer to the recall question.
    assert len({r.recalled for r in found}) == 1
    assert found[0].recalled == memory.model.answer(
        recall_question(QUESTION), max_new_tokens=MAX_NEW_TOKENS
    )
    # The unit that holds the question's rare words ("painted", "sunrise") is found.
    assert "Melanie painted a sunrise." in [r.text for r in found]


def test_recall_ranks_units_by_bm25_of_the_recalled_text_and_question(memory: Memory) -> None:
    found = memory.model.recall(QUESTION, k=len(memory.units), max_new_tokens=MAX_NEW_TOKENS)

    assert found
    bm25 = BM25([unit.text for unit in memory.units])
    expected = bm25.top(f"{found[0].recalled}\n{QUESTION}", len(memory.units))
    assert [r.unit_id for r in found] == [memory.units[i].id for i, _ in expected]
    assert [r.score for r in found] == [round(score, 4) for _, score in expected]


def test_recall_with_k_1_returns_one_unit(memory: Memory) -> None:
    found = memory.model.recall(QUESTION, k=1, max_new_tokens=MAX_NEW_TOKENS)

    assert len(found) == 1
    assert_real_unit(memory, found[0])
    best = memory.model.recall(QUESTION, k=3, max_new_tokens=MAX_NEW_TOKENS)[0]
    assert found[0] == best


def test_recall_of_a_conversation_unit_carries_its_turns(memory: Memory) -> None:
    found = memory.model.recall(
        "Which dog did Ann adopt, and where does Rex go camping?",
        k=2,
        max_new_tokens=MAX_NEW_TOKENS,
    )

    assert 1 <= len(found) <= 2
    for recollection in found:
        assert_real_unit(memory, recollection)
    conversation = [r for r in found if r.turn_ids]
    assert conversation, found
    assert conversation[0].turn_ids == ("D1:1", "D1:2")
    assert conversation[0].source == "locomo.json#conv-1/session_1"
    assert conversation[0].timestamp == "2023-06-01T09:00:00"


def test_recall_of_nothing_in_memory_returns_only_real_units(memory: Memory) -> None:
    # No word of the question is in any unit: whatever the model writes, a recollection is a
    # real unit matching it, or there is none.
    found = memory.model.recall("Xylophones?", k=3, max_new_tokens=MAX_NEW_TOKENS)

    assert len(found) <= 3
    for recollection in found:
        assert_real_unit(memory, recollection)


def test_recall_of_zero_units_is_empty(memory: Memory) -> None:
    assert memory.model.recall(QUESTION, k=0, max_new_tokens=MAX_NEW_TOKENS) == []


def test_recall_counts_the_tokens_of_its_recall_question(memory: Memory) -> None:
    model = memory.model
    before = model.usage

    model.recall(QUESTION, k=1, max_new_tokens=MAX_NEW_TOKENS)

    usage = model.last_usage
    recall_messages = [Message(role="user", content=recall_question(QUESTION))]
    assert usage.prompt_tokens == prompt_tokens(model, recall_messages)
    assert 0 < usage.completion_tokens <= MAX_NEW_TOKENS
    assert model.usage == before + usage
    assert isinstance(model.usage, TokenUsage)


# --- the demo script -------------------------------------------------------------------------

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo.py"


@pytest.mark.subprocess
def test_the_demo_script_shows_both_answers_and_real_sources(memory: Memory) -> None:
    """`examples/demo.py` (what `make demo` ends with) on a trained workspace: the training
    summary, the base and the tuned answer, then recalled sources that are real units."""
    result = subprocess.run(
        [sys.executable, str(DEMO), str(memory.workspace.root), QUESTION],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        check=False,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    assert "Warning" not in result.stderr  # library noise is kept out of the demo
    lines = result.stdout.splitlines()
    spec = memory.model.manifest.base_model["spec"]
    assert lines[0].startswith(f"loaded {spec} and {memory.model.model_name} in ")
    # (train_workspace's card has no "train" count: the demo shows "?")
    assert lines[1].startswith(f"adapter 'default' on {spec}: ? training records, 2 steps, ")
    assert lines[2].startswith("final loss: train ")
    question = lines.index(f"Q: {QUESTION}")
    assert lines[question + 1].startswith("  base ")
    tuned = next(i for i in range(question + 2, len(lines)) if not lines[i].startswith(" " * 12))
    assert lines[tuned].startswith("  tuned ")
    recalled = lines.index("  recalled sources:", tuned)
    assert all(line.startswith(" " * 12) for line in lines[tuned + 1 : recalled])  # wrapped
    sources = {d.source for d in memory.documents}
    # The demo shows each unit on one line (whitespace collapsed, cut with " …" when long).
    texts = [" ".join(u.text.split()) for u in memory.units]
    end = lines.index("", recalled)
    shown = lines[recalled + 1 : end]
    assert len(shown) in (2, 4)  # k=2 at most (units that match): a source line and an excerpt
    for heading, excerpt in zip(shown[::2], shown[1::2], strict=True):
        assert heading.split(" (match ")[0].split(",")[0].strip() in sources, heading
        shown_text = excerpt.strip().removesuffix(" …")
        assert any(text.startswith(shown_text) for text in texts), excerpt
    # the question's own words find the unit it is about
    assert shown[0].startswith("    notes/trip.md, 2023-05-08 (match ")
    assert shown[1].strip() == "Melanie painted a sunrise."
