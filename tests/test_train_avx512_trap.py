"""The AVX512-BF16 gradient trap of 4-bit training on a CPU: on a CPU with AVX512-BF16,
bitsandbytes repacks the 4-bit layers of a model loaded for inference in a no-grad forward pass
(an evaluation), and LoRA gradients after it are wrong. A base model loaded for training
(`ragtune.train.base_model.load_base_model(..., for_training=True)`) is not repacked, so its
gradients after an evaluation match those without one. Skipped on CPUs without AVX512-BF16.

The gradients are of a fresh 4-bit copy of the tiny random Llama of `tiny_model_dir`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ragtune.train.base_model import load_base_model
from train_support import PROJECTIONS


def _has_avx512_bf16() -> bool:
    try:
        return "avx512_bf16" in Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return False


needs_avx512_bf16 = pytest.mark.skipif(
    not _has_avx512_bf16(),
    reason="the CPU has no AVX512-BF16, so bitsandbytes never repacks 4-bit weights for it",
)


def _lora_gradients(
    tiny_model_dir: Path, *, for_training: bool, evaluate_first: bool
) -> tuple[dict[str, torch.Tensor | None], int]:
    """Gradients of every LoRA parameter for a fixed batch on a fresh 4-bit copy of the tiny
    model with a random (seeded) LoRA; and how many 4-bit layers ended up repacked."""
    from bitsandbytes.nn import Linear4bit
    from peft import LoraConfig, get_peft_model

    base = load_base_model(f"hf:{tiny_model_dir}", "4bit", for_training=for_training)
    torch.manual_seed(0)
    model = get_peft_model(
        base.model, LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False)
    )
    encoded = base.tokenizer(
        ["What is fact 3? Fact 3 is 21.", "Fact 5 is 35, and fact 6 is 42."],
        return_tensors="pt",
        padding=True,
    )
    batch = {
        "input_ids": encoded["input_ids"],
        "attention_mask": encoded["attention_mask"],
        "labels": encoded["input_ids"],
    }
    if evaluate_first:
        model.eval()
        with torch.no_grad():
            model(**batch)
    model.train()
    model(**batch).loss.backward()
    grads = {
        name: None if p.grad is None else p.grad.detach().clone()
        for name, p in model.named_parameters()
        if "lora_" in name
    }
    repacked = sum(
        bool(getattr(m.weight.quant_state, "packing_format_for_cpu", False))
        for m in model.modules()
        if isinstance(m, Linear4bit)
    )
    return grads, repacked


@pytest.fixture(scope="module")
def reference_gradients(tiny_model_dir: Path) -> dict[str, torch.Tensor | None]:
    grads, repacked = _lora_gradients(tiny_model_dir, for_training=True, evaluate_first=False)
    assert repacked == 0
    return grads


def _same(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
    return a is not None and b is not None and torch.allclose(a, b, rtol=1e-4, atol=1e-6)


@needs_avx512_bf16
def test_evaluation_before_training_keeps_4bit_gradients_correct(
    tiny_model_dir: Path, reference_gradients: dict[str, torch.Tensor | None]
) -> None:
    grads, repacked = _lora_gradients(tiny_model_dir, for_training=True, evaluate_first=True)
    assert repacked == 0
    assert set(grads) == set(reference_gradients)
    assert sum(".lora_A." in n for n in grads) == sum(".lora_B." in n for n in grads) > 0
    for name, grad in grads.items():
        assert grad is not None and grad.abs().max().item() > 0, f"{name} has no gradient"
        assert _same(grad, reference_gradients[name]), name


@needs_avx512_bf16
def test_without_the_fix_evaluation_corrupts_4bit_gradients(
    tiny_model_dir: Path, reference_gradients: dict[str, torch.Tensor | None]
) -> None:
    """The trap is real on this CPU: a model loaded for inference repacks its 4-bit layers in
    the no-grad evaluation, and the gradients after it are wrong."""
    grads, repacked = _lora_gradients(tiny_model_dir, for_training=False, evaluate_first=True)
    assert repacked == 2 * len(PROJECTIONS)
    wrong = [n for n, g in grads.items() if not _same(g, reference_gradients[n])]
    assert wrong, "gradients after a repacking evaluation matched; the trap did not trigger"
