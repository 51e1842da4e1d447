"""Same-model context distillation (`train.objective`): the teacher's targets are the base
model's own top-k over each answer token with the record's source passages in its prompt, they
are computed once per dataset and reused, the loss is what it says, and a distilling run trains
an adapter from the tokenized records with the teacher beside each answer token.

The model is the tiny random Llama of `tiny_model_dir`; runs take a few seconds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

import ragtune.train.distill as distill_module
from ragtune.corpus.types import TextUnit
from ragtune.errors import RagtuneError
from ragtune.prompts import answer_messages, join_passages, memory_messages, passage
from ragtune.train.distill import (
    TokenizedRecord,
    distillation_loss,
    teacher_prompt_ids,
    teacher_targets,
    tokenize_record,
)
from ragtune.train.distill_trainer import DistillingTrainer, TeacherCollator
from ragtune.train.trainer import train_adapter
from train_support import UNITS, patch_trainer, record, train_config, train_workspace

TOP_K = 5


@pytest.fixture(scope="module")
def model_and_tokenizer(tiny_model_dir: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    return model, AutoTokenizer.from_pretrained(tiny_model_dir)


def tokenized(
    tokenizer: Any, question: str, answer: str, sources: tuple[str, ...]
) -> TokenizedRecord:
    prompt, completion = tokenize_record(
        tokenizer,
        memory_messages(answer_messages(question)),
        [{"role": "assistant", "content": answer}],
    )
    return TokenizedRecord(prompt, completion, question, sources)


def some_records(tokenizer: Any) -> list[TokenizedRecord]:
    return [
        tokenized(tokenizer, "What is fact 1?", "Fact 1 is 7.", ("tu-1",)),
        tokenized(tokenizer, "What is fact 2 about?", "It is 14.", ("tu-1",)),
        tokenized(tokenizer, "What is fact 3?", "Fact 3 is 21.", ("tu-2",)),
        tokenized(tokenizer, "Who is Zed?", "Nobody I remember.", ()),
        tokenized(tokenizer, "What are facts 2 and 4?", "14 and 28.", ("tu-1", "tu-2")),
    ]


UNIT_BY_ID = {unit.id: unit for unit in UNITS}


def teacher_of(model: Any, tokenizer: Any, records: list[TokenizedRecord], cache: Path) -> Any:
    """The teacher's targets for `records` over the train_support units, k = `TOP_K`."""
    return teacher_targets(
        model, tokenizer, records, UNIT_BY_ID, cache_dir=cache, weights_sha256="w", top_k=TOP_K
    )


def test_the_teacher_is_the_base_model_reading_the_source_passages(
    model_and_tokenizer: tuple[Any, Any], tmp_path: Path
) -> None:
    model, tokenizer = model_and_tokenizer
    records = some_records(tokenizer)
    targets = teacher_of(model, tokenizer, records, tmp_path)
    assert len(targets) == len(records)
    assert targets.top_ids[3] is None and targets.top_logprobs[3] is None  # no sources
    for index in (0, 1, 2, 4):
        record = records[index]
        context = join_passages(
            [passage(UNIT_BY_ID[i].text, UNIT_BY_ID[i].timestamp) for i in record.source_ids]
        )
        # One forward over the whole teacher prompt and answer, without any shared cache.
        prompt = teacher_prompt_ids(tokenizer, record.question, context)
        assert "Question: " + record.question in tokenizer.decode(prompt)
        assert UNIT_BY_ID[record.source_ids[0]].text in tokenizer.decode(prompt)
        ids = torch.tensor([prompt + record.completion_ids])
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0].float()
        start = len(prompt) - 1
        expected = torch.log_softmax(logits[start : start + len(record.completion_ids)], -1)
        values, token_ids = expected.topk(TOP_K, dim=-1)
        assert targets.top_ids[index].shape == (len(record.completion_ids), TOP_K)
        assert torch.allclose(targets.top_logprobs[index], values, atol=1e-4)
        assert torch.equal(targets.top_ids[index].long(), token_ids)


def test_the_teachers_targets_are_computed_once_and_reused_until_the_records_change(
    model_and_tokenizer: tuple[Any, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, tokenizer = model_and_tokenizer
    records = some_records(tokenizer)
    first = teacher_of(model, tokenizer, records, tmp_path)
    [saved] = list(tmp_path.iterdir())
    assert saved.suffix == ".safetensors"

    calls: list[int] = []
    original = distill_module._teach

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(distill_module, "_teach", counting)
    again = teacher_of(model, tokenizer, records, tmp_path)
    assert calls == []
    for index in range(len(records)):
        if first.top_ids[index] is None:
            assert again.top_ids[index] is None
        else:
            assert torch.equal(again.top_ids[index], first.top_ids[index])
            assert torch.equal(again.top_logprobs[index], first.top_logprobs[index])
    # Another answer, another unit text or other weights: computed again.
    changed = [*records[:2], tokenized(tokenizer, "What is fact 3?", "21.", ("tu-2",))]
    teacher_targets(
        model, tokenizer, changed, UNIT_BY_ID, cache_dir=tmp_path, weights_sha256="w", top_k=TOP_K
    )
    edited = {**UNIT_BY_ID, "tu-1": TextUnit("tu-1", "doc-1", 0, "Fact 1 is 8.", 5, 0, 12)}
    teacher_targets(
        model, tokenizer, records, edited, cache_dir=tmp_path, weights_sha256="w", top_k=TOP_K
    )
    teacher_targets(
        model, tokenizer, records, UNIT_BY_ID, cache_dir=tmp_path, weights_sha256="v", top_k=TOP_K
    )
    assert len(calls) == 3
    assert len(list(tmp_path.iterdir())) == 4


def test_a_record_naming_an_unknown_unit_is_refused_before_the_teacher_runs(
    model_and_tokenizer: tuple[Any, Any], tmp_path: Path
) -> None:
    model, tokenizer = model_and_tokenizer
    records = [tokenized(tokenizer, "What is fact 9?", "63.", ("tu-9",))]
    with pytest.raises(RagtuneError, match="text units the workspace does not hold"):
        teacher_targets(
            model, tokenizer, records, UNIT_BY_ID, cache_dir=tmp_path, weights_sha256="w", top_k=2
        )
    assert list(tmp_path.iterdir()) == []


# -- the loss ------------------------------------------------------------------------------------


def loss_inputs() -> dict[str, torch.Tensor]:
    """One sequence of 4 tokens over a vocabulary of 6: tokens 2 and 3 are the answer; the
    teacher knows token 2 only."""
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(1, 4, 6, generator=generator)
    labels = torch.tensor([[-100, -100, 4, 1]])
    teacher_ids = torch.zeros(1, 4, 3, dtype=torch.long)
    teacher_logprobs = torch.zeros(1, 4, 3)
    teacher_ids[0, 2] = torch.tensor([4, 0, 5])
    teacher_logprobs[0, 2] = torch.log(torch.tensor([0.5, 0.3, 0.1]))
    mask = torch.tensor([[0, 0, 1, 0]])
    return {
        "logits": logits,
        "labels": labels,
        "teacher_ids": teacher_ids,
        "teacher_logprobs": teacher_logprobs,
        "teacher_mask": mask,
    }


def test_the_loss_is_cross_entropy_kl_to_the_renormalized_teacher_or_their_sum() -> None:
    inputs = loss_inputs()
    log_probs = torch.log_softmax(inputs["logits"][0], dim=-1)
    # Position 1 predicts token 2 (label 4), position 2 predicts token 3 (label 1).
    cross_entropy = [-log_probs[1, 4].item(), -log_probs[2, 1].item()]
    teacher = torch.tensor([0.5, 0.3, 0.1]) / 0.9
    kl = float((teacher * (teacher.log() - log_probs[1, [4, 0, 5]])).sum())

    sft = distillation_loss(**inputs, objective="sft")
    distill = distillation_loss(**inputs, objective="distill")
    both = distillation_loss(**inputs, objective="sft+distill")

    assert sft.item() == pytest.approx(sum(cross_entropy) / 2, rel=1e-5)
    # The token without a teacher keeps its cross-entropy.
    assert distill.item() == pytest.approx((kl + cross_entropy[1]) / 2, rel=1e-5)
    assert both.item() == pytest.approx((sum(cross_entropy) + kl) / 2, rel=1e-5)
    # Divided by the tokens of the whole accumulated batch when given.
    assert distillation_loss(**inputs, objective="sft", num_items=4).item() == pytest.approx(
        sum(cross_entropy) / 4, rel=1e-5
    )


def test_the_kl_term_is_zero_when_the_student_matches_the_teacher() -> None:
    inputs = loss_inputs()
    logits = torch.full((1, 4, 6), -30.0)
    logits[0, 1, torch.tensor([4, 0, 5])] = torch.log(torch.tensor([0.5, 0.3, 0.1]))
    inputs["logits"] = logits
    inputs["labels"] = torch.tensor([[-100, -100, 4, -100]])
    assert distillation_loss(**inputs, objective="distill").item() == pytest.approx(0, abs=1e-6)


def test_the_collator_puts_the_teacher_beside_each_answer_token(
    model_and_tokenizer: tuple[Any, Any], tmp_path: Path
) -> None:
    model, tokenizer = model_and_tokenizer
    records = some_records(tokenizer)
    targets = teacher_of(model, tokenizer, records, tmp_path)
    examples = []
    for index in (0, 3, 2):
        record = records[index]
        examples.append(
            {
                "input_ids": record.prompt_ids + record.completion_ids,
                "labels": [-100] * len(record.prompt_ids) + record.completion_ids,
                "record": index,
            }
        )
    batch = TeacherCollator(tokenizer.pad_token_id, targets, TOP_K)(examples)
    for row, example in enumerate(examples):
        answer = [p for p, label in enumerate(example["labels"]) if label != -100]
        taught = batch["teacher_mask"][row].nonzero().flatten().tolist()
        if targets.top_ids[example["record"]] is None:
            assert taught == []
            continue
        assert taught == answer
        top_ids = targets.top_ids[example["record"]]
        assert torch.equal(batch["teacher_ids"][row, answer], top_ids.long())
    assert batch["labels"].shape == batch["teacher_mask"].shape == batch["input_ids"].shape


# -- a distilling run ----------------------------------------------------------------------------


@pytest.mark.parametrize("objective", ["distill", "sft+distill"])
def test_a_distilling_run_trains_an_adapter_and_reuses_the_teacher_next_time(
    objective: str, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = train_workspace(tmp_path / "memory")
    config = train_config(tiny_model_dir, f"train.objective={objective}", "train.distill_top_k=4")
    spy = patch_trainer(monkeypatch)

    report = train_adapter(workspace, config, progress=False)

    trainer = spy.trainers[0]
    assert isinstance(trainer, DistillingTrainer) and trainer.objective == objective
    assert report.steps == 2 and report.val_loss is not None and report.tokens > 0
    manifest = json.loads((report.adapter / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["hyperparameters"]["objective"] == objective
    assert manifest["hyperparameters"]["distill_top_k"] == 4
    [cached] = list((workspace.root / "cache").glob("distill-*.safetensors"))
    # Every record (8 train, 2 validation) has its sources, so every one has a teacher; the
    # student reads the memory's system message and the question, answer tokens labelled.
    first = trainer.train_dataset[0]
    text = tokenizer_of(trainer).decode(first["input_ids"])
    assert text.startswith("<|im_start|>system\n<|im_end|>\n<|im_start|>user\nWhat is fact 0?")
    assert (
        tokenizer_of(trainer)
        .decode([t for t in first["labels"] if t != -100])
        .startswith("Fact 0 is 0.")
    )

    def no_teacher(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the teacher ran again")

    monkeypatch.setattr(distill_module, "_teach", no_teacher)
    train_adapter(workspace, config, progress=False)
    assert list((workspace.root / "cache").glob("distill-*.safetensors")) == [cached]


def tokenizer_of(trainer: Any) -> Any:
    return trainer.processing_class


def test_a_malformed_record_is_named_before_the_teacher_runs(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    broken = {**record(3), "prompt": "What is fact 3?"}
    workspace = train_workspace(tmp_path / "memory", train=[record(1), broken])
    config = train_config(tiny_model_dir, "train.objective=distill")
    with pytest.raises(RagtuneError, match=r"train\.jsonl.*line 2.*not a training record"):
        train_adapter(workspace, config, progress=False)
