"""Same-model context distillation (`train.objective` ``distill`` or ``sft+distill``).

The teacher is the base model itself, asked each training question the way RAG asks it — with
the record's source passages in its prompt — and the student is the model being tuned, asked the
bare question. The teacher's top-k next-token log-probabilities over each answer token are
computed once per dataset (`teacher_targets`, cached as safetensors under `cache/`), and the
loss on the answer tokens adds the KL divergence from the teacher's distribution (renormalized
over its top k) to the student's (`distillation_loss`), as in Knowledge Modules and Cartridges.

The teacher pass reads each text unit once: the prompt tokens that the records with the same
sources share (the instruction and the passages) are run once, and every question and answer
continues from their attention cache.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragtune.corpus.types import TextUnit
from ragtune.errors import RagtuneError
from ragtune.fileio import atomic_path
from ragtune.hashing import content_hash
from ragtune.llm.types import Message
from ragtune.prompts import CONTEXT_INSTRUCTION, answer_messages, join_passages, passage

log = logging.getLogger("ragtune")

#: Changes whenever what the teacher is asked changes, so old caches are not reused.
TEACHER_VERSION = "1"


@dataclass(frozen=True)
class TokenizedRecord:
    """A training record as the student reads it.

    Attributes:
        prompt_ids: The prompt (the memory's system message and the question), chat template
            applied, through the assistant's header.
        completion_ids: The answer and the end of the assistant's turn.
        question: The question.
        source_ids: The text units the answer comes from (none: no teacher for it).
    """

    prompt_ids: list[int]
    completion_ids: list[int]
    question: str
    source_ids: tuple[str, ...]


@dataclass(frozen=True)
class TeacherTargets:
    """The teacher's top-k log-probabilities over each record's answer tokens.

    Attributes:
        key: What they were computed from (records, units, base weights, k, prompt).
        top_ids: Per record, a ``[answer tokens, k]`` tensor of token ids (None: no teacher).
        top_logprobs: The matching log-probabilities.
    """

    key: str
    top_ids: list[Any]
    top_logprobs: list[Any]

    def __len__(self) -> int:
        return len(self.top_ids)


def tokenize_record(
    tokenizer: Any, prompt: Sequence[Message], completion: Sequence[Message]
) -> tuple[list[int], list[int]]:
    """The token ids of `prompt` (through the assistant's header) and of `completion` (the rest
    of the rendered chat), chat template applied as the trainer and the reader apply it."""
    head = str(
        tokenizer.apply_chat_template(
            [dict(m) for m in prompt], add_generation_prompt=True, tokenize=False
        )
    )
    whole = str(
        tokenizer.apply_chat_template([dict(m) for m in [*prompt, *completion]], tokenize=False)
    )
    if not whole.startswith(head):
        raise RagtuneError(
            "the chat template renders a prompt that its full chat does not start with; "
            "train with train.objective=sft"
        )
    ids = tokenizer(head, add_special_tokens=False)["input_ids"]
    rest = tokenizer(whole[len(head) :], add_special_tokens=False)["input_ids"]
    return list(ids), list(rest)


def targets_key(
    records: Sequence[TokenizedRecord],
    units: dict[str, TextUnit],
    *,
    weights_sha256: str,
    chat_template: str,
    top_k: int,
) -> str:
    """What the teacher's targets depend on, hashed: every record's question, answer tokens and
    sources' text, the base weights, the chat template, the context prompt and k."""
    parts = [TEACHER_VERSION, weights_sha256, chat_template, CONTEXT_INSTRUCTION, str(top_k)]
    for record in records:
        texts = [units[i].text if i in units else "" for i in record.source_ids]
        parts.append(json.dumps([record.question, record.completion_ids, texts]))
    return content_hash(*parts, length=32)


def teacher_targets(
    model: Any,
    tokenizer: Any,
    records: Sequence[TokenizedRecord],
    units: dict[str, TextUnit],
    *,
    cache_dir: Path,
    weights_sha256: str,
    top_k: int,
    progress: bool = False,
) -> TeacherTargets:
    """The teacher's targets for `records`: read from `cache_dir` when a pass over the same
    records, units, weights and k was saved there, else computed with `model` (the base model;
    call it before any adapter is attached) and saved (atomically) for the next run.

    Raises:
        RagtuneError: a record names a text unit the workspace does not hold.
    """
    missing = sorted({i for r in records for i in r.source_ids if i not in units})
    if missing:
        raise RagtuneError(
            f"training records name text units the workspace does not hold ({missing[0]}, ...); "
            "run `ragtune synthesize` again"
        )
    key = targets_key(
        records,
        units,
        weights_sha256=weights_sha256,
        chat_template=str(tokenizer.chat_template or ""),
        top_k=top_k,
    )
    path = cache_dir / f"distill-{key[:16]}.safetensors"
    if path.is_file():
        cached = _read(path, key, len(records))
        if cached is not None:
            log.debug("teacher targets from %s", path)
            return cached
    targets = _teach(model, tokenizer, records, units, key=key, top_k=top_k, progress=progress)
    _write(path, targets)
    return targets


def _teach(
    model: Any,
    tokenizer: Any,
    records: Sequence[TokenizedRecord],
    units: dict[str, TextUnit],
    *,
    key: str,
    top_k: int,
    progress: bool,
) -> TeacherTargets:
    import torch

    from ragtune.progress import progress_bar

    groups: dict[tuple[str, ...], list[int]] = {}
    for index, record in enumerate(records):
        if record.source_ids:
            groups.setdefault(record.source_ids, []).append(index)
    top_ids: list[Any] = [None] * len(records)
    top_logprobs: list[Any] = [None] * len(records)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for sources, indices in progress_bar(
                list(groups.items()), desc="teacher", unit="passage", enabled=progress
            ):
                context = join_passages(
                    [passage(units[i].text, units[i].timestamp) for i in sources]
                )
                prompts = {
                    i: teacher_prompt_ids(tokenizer, records[i].question, context) for i in indices
                }
                shared = _common_prefix(list(prompts.values()))
                cache = model(input_ids=torch.tensor([shared], device=device), use_cache=True).cache
                for index in indices:
                    record = records[index]
                    rest = prompts[index][len(shared) :]
                    ids = torch.tensor([rest + record.completion_ids], device=device)
                    logits = model(input_ids=ids, cache=cache, use_cache=True).logits
                    cache.crop(-ids.shape[1])  # back to the shared prompt alone
                    start = len(rest) - 1  # this position predicts the first answer token
                    answer = logits[0, start : start + len(record.completion_ids)].float()
                    values, token_ids = torch.log_softmax(answer, dim=-1).topk(top_k, dim=-1)
                    top_ids[index] = token_ids.to(torch.int32).cpu()
                    top_logprobs[index] = values.cpu()
    finally:
        model.train(was_training)
    return TeacherTargets(key, top_ids, top_logprobs)


def teacher_prompt_ids(tokenizer: Any, question: str, context: str) -> list[int]:
    """The teacher's prompt: `question` asked with the passages `context` as RAG asks it, chat
    template applied, through the assistant's header."""
    messages = answer_messages(question, context)
    rendered = tokenizer.apply_chat_template(
        [dict(m) for m in messages], add_generation_prompt=True, tokenize=False
    )
    return list(tokenizer(str(rendered), add_special_tokens=False)["input_ids"])


def _common_prefix(prompts: Sequence[list[int]]) -> list[int]:
    """The longest token prefix every prompt shares, leaving each at least one token."""
    length = min(len(p) for p in prompts) - 1
    first = prompts[0]
    for prompt in prompts[1:]:
        length = next((i for i in range(length) if prompt[i] != first[i]), length)
    return first[:length]


def _write(path: Path, targets: TeacherTargets) -> None:
    import torch
    from safetensors.torch import save_file

    tensors: dict[str, Any] = {}
    for index, (ids, logprobs) in enumerate(
        zip(targets.top_ids, targets.top_logprobs, strict=True)
    ):
        if ids is not None:
            tensors[f"{index}.ids"] = ids.contiguous()
            tensors[f"{index}.logprobs"] = logprobs.to(torch.float32).contiguous()
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"key": targets.key, "records": str(len(targets))}
    with atomic_path(path) as temporary:
        save_file(tensors, str(temporary), metadata=metadata)


def _read(path: Path, key: str, records: int) -> TeacherTargets | None:
    """The targets saved at `path`, or None when they were computed from something else."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            if metadata.get("key") != key or metadata.get("records") != str(records):
                return None
            top_ids: list[Any] = [None] * records
            top_logprobs: list[Any] = [None] * records
            for name in handle.keys():  # noqa: SIM118 (safe_open is not a mapping)
                index, kind = name.split(".")
                (top_ids if kind == "ids" else top_logprobs)[int(index)] = handle.get_tensor(name)
    except (OSError, ValueError) as error:  # a damaged cache is computed again
        log.warning("ignoring the teacher cache %s: %s", path, error)
        return None
    return TeacherTargets(key, top_ids, top_logprobs)


def distillation_loss(
    logits: Any,
    labels: Any,
    teacher_ids: Any,
    teacher_logprobs: Any,
    teacher_mask: Any,
    *,
    objective: str,
    num_items: Any = None,
) -> Any:
    """The loss of a batch: token cross-entropy (``sft``), the KL divergence from the teacher's
    top-k distribution (``distill``; cross-entropy where a token has no teacher) or their sum
    (``sft+distill``), summed over the answer tokens and divided by `num_items` (the answer
    tokens of the whole accumulated batch; default this batch's).

    Args:
        logits: ``[batch, length, vocab]`` student logits.
        labels: ``[batch, length]`` token ids, -100 where there is no loss.
        teacher_ids: ``[batch, length, k]`` the teacher's top-k ids for the token at each
            position (any value where `teacher_mask` is 0).
        teacher_logprobs: ``[batch, length, k]`` their log-probabilities.
        teacher_mask: ``[batch, length]`` 1 where the token at that position has a teacher.
        objective: ``sft``, ``distill`` or ``sft+distill``.
        num_items: The divisor.
    """
    import torch

    logits = logits[:, :-1].float()
    targets = labels[:, 1:]
    answer = targets != -100
    log_probs = torch.log_softmax(logits, dim=-1)
    cross_entropy = -log_probs.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    taught = teacher_mask[:, 1:].bool() & answer
    teacher = torch.softmax(teacher_logprobs[:, 1:].float(), dim=-1)  # renormalized over top k
    student = log_probs.gather(-1, teacher_ids[:, 1:].long())
    kl = (teacher * (torch.log(teacher.clamp(min=1e-12)) - student)).sum(-1)
    if objective == "sft":
        per_token = cross_entropy
    elif objective == "distill":
        per_token = torch.where(taught, kl, cross_entropy)
    else:
        per_token = cross_entropy + torch.where(taught, kl, torch.zeros_like(kl))
    total = (per_token * answer).sum()
    divisor = answer.sum() if num_items is None else torch.as_tensor(num_items)
    return total / divisor.to(total.device).clamp(min=1)
