"""QLoRA on a CUDA GPU: the embedded model trained in 4 bits for a bounded number of steps on a
small synthetic dataset (skipped with a reason where there is no GPU). It prints the tokens/s,
peak GPU memory and losses of the run, so a GPU run shows them (`pytest -m gpu`)."""

from __future__ import annotations

import math
from pathlib import Path
from statistics import mean

import pytest

from ragtune.config import load_config
from ragtune.manifest import Manifest
from ragtune.train.trainer import train_adapter
from support import requires_gpu
from train_support import patch_trainer, record, train_workspace

pytestmark = [pytest.mark.gpu, requires_gpu]

STEPS = 30


def locker_record(number: int) -> dict[str, object]:
    """A made-up fact to learn: the locker code of person `number`."""
    code = (number * 7919) % 9000 + 1000
    return {
        **record(number),
        "prompt": [{"role": "user", "content": f"What is the locker code of person {number}?"}],
        "completion": [
            {"role": "assistant", "content": f"The locker code of person {number} is {code}."}
        ],
    }


@pytest.mark.slow
def test_qlora_trains_the_embedded_model_in_4bit_on_the_gpu(
    embedded_model: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import torch
    from bitsandbytes.nn import Linear4bit  # type: ignore[attr-defined]

    workspace = train_workspace(
        tmp_path / "memory",
        train=[locker_record(n) for n in range(32)],
        val=[locker_record(n) for n in range(32, 36)],
    )
    config = load_config(
        None,
        [
            "model=embedded",
            "train.quantization=4bit",
            f"train.max_steps={STEPS}",
            "train.batch_size=8",
            "train.lr=0.001",
            "train.warmup_ratio=0.1",
            "train.max_seq_len=256",
            f"train.checkpoint_steps={STEPS}",
        ],
    )
    spy = patch_trainer(monkeypatch)

    report = train_adapter(workspace, config, progress=False)

    # The 4-bit path ran on the GPU.
    assert report.quantization == "4bit"
    layers = [m for m in spy.trainers[0].model.modules() if isinstance(m, Linear4bit)]
    assert layers, "the model was not quantized"
    assert all(layer.weight.device.type == "cuda" for layer in layers)
    manifest = Manifest.read(report.adapter)
    assert manifest.hyperparameters["quantization"] == "4bit"
    assert manifest.base_model["spec"] == "embedded"
    assert manifest.device.startswith("cuda:") and manifest.device == report.device
    assert manifest.processes == report.processes == 1

    # Tokens/s, peak GPU memory and loss are measured and recorded.
    metrics = manifest.metrics
    assert metrics["steps"] == report.steps == STEPS
    assert metrics["tokens"] == report.tokens > 0
    assert metrics["tokens_per_second"] > 0
    peak = manifest.peak_gpu_memory_bytes
    assert peak is not None and peak == report.peak_gpu_memory_bytes
    assert 0 < peak <= torch.cuda.max_memory_allocated()
    losses = [loss for _, loss in manifest.loss_curve["train"]]
    assert len(losses) == STEPS
    assert all(math.isfinite(loss) for loss in losses), losses
    assert metrics["val_loss"] is not None and math.isfinite(metrics["val_loss"])
    with capsys.disabled():
        print(
            f"\nQLoRA 4bit on {manifest.device}: {STEPS} steps, "
            f"{metrics['tokens_per_second']:.0f} tokens/s, "
            f"peak GPU memory {peak / 2**20:.0f} MiB, "
            f"train loss {losses[0]:.3f} -> {losses[-1]:.3f}, val loss {metrics['val_loss']:.3f}"
        )
    # The loss goes down (averaged over a few steps: single steps are noisy).
    assert mean(losses[-5:]) < 0.8 * mean(losses[:5]), losses
