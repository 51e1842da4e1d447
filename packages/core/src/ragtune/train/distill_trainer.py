"""TRL's `SFTTrainer` with the distillation loss: a collator that puts each record's teacher
targets beside its answer tokens, and a `compute_loss` that adds the KL term
(`ragtune.train.distill.distillation_loss`). Imported only when `train.objective` distils."""

from __future__ import annotations

from typing import Any

import torch
from trl import SFTTrainer  # type: ignore[attr-defined]
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

from ragtune.train.distill import TeacherTargets, distillation_loss

_TEACHER_KEYS = ("teacher_ids", "teacher_logprobs", "teacher_mask")


class TeacherCollator:
    """Pads a batch like TRL's collator and adds, at each answer token's position, the
    teacher's top-k ids and log-probabilities for it (`teacher_mask` 1 there)."""

    def __init__(self, pad_token_id: int, targets: TeacherTargets, top_k: int) -> None:
        self.pad = DataCollatorForLanguageModeling(pad_token_id=pad_token_id)
        self.targets = targets
        self.top_k = top_k

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        batch: dict[str, Any] = self.pad(
            [{"input_ids": e["input_ids"], "labels": e["labels"]} for e in examples]
        )
        rows, length = batch["input_ids"].shape
        ids = torch.zeros(rows, length, self.top_k, dtype=torch.long)
        logprobs = torch.zeros(rows, length, self.top_k)
        mask = torch.zeros(rows, length, dtype=torch.long)
        for row, example in enumerate(examples):
            top_ids = self.targets.top_ids[example["record"]]
            if top_ids is None:
                continue
            answer = [p for p, label in enumerate(example["labels"]) if label != -100]
            answer = answer[: top_ids.shape[0]]  # the answer may have been cut at max length
            ids[row, answer] = top_ids[: len(answer)].long()
            logprobs[row, answer] = self.targets.top_logprobs[example["record"]][: len(answer)]
            mask[row, answer] = 1
        batch.update(teacher_ids=ids, teacher_logprobs=logprobs, teacher_mask=mask)
        return batch


class DistillingTrainer(SFTTrainer):
    """`SFTTrainer` whose loss is `distillation_loss` with `objective`."""

    def __init__(self, *args: Any, objective: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.objective = objective

    def compute_loss(
        self,
        model: Any,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> Any:
        teacher = {key: inputs.pop(key) for key in _TEACHER_KEYS}
        labels = inputs.pop("labels")
        outputs = model(**inputs, use_cache=False)
        loss = distillation_loss(
            outputs.logits,
            labels,
            teacher["teacher_ids"],
            teacher["teacher_logprobs"],
            teacher["teacher_mask"],
            objective=self.objective,
            num_items=num_items_in_batch,
        )
        return (loss, outputs) if return_outputs else loss
