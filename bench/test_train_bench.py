"""Benchmarks of LoRA training steps on the embedded SmolLM2-135M, per quantization.

Each benchmark trains the same few steps on the same LoCoMo-derived records and reports the
tokens trained per second in `extra_info`, so one run compares 4bit (QLoRA), 8bit and none
(float32) on this machine. `make test` runs each once, untimed.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

pytestmark = [pytest.mark.benchmark, pytest.mark.slow]

_STEPS = 3


@pytest.fixture(scope="module")
def training_workspace(embedded_model: Any, tmp_path_factory: Any) -> Any:
    """A workspace holding 24 short question/answer records (LoCoMo conv-26 style)."""
    from ragtune.workspace import Workspace

    workspace = Workspace.at(tmp_path_factory.mktemp("train-bench") / "memory", create=True)
    workspace.synth_dir.mkdir()
    facts = [
        ("When did Caroline go to the LGBTQ support group?", "7 May 2023."),
        ("What has Caroline been researching?", "Adoption agencies."),
        ("What did Melanie paint last year?", "A lake sunrise."),
        ("When did Melanie run a charity race?", "The Sunday before 25 May 2023."),
        ("Where did Caroline move from four years ago?", "Sweden."),
        ("What did Melanie sign up for?", "A pottery class."),
    ]
    lines = [
        json.dumps(
            {
                "prompt": [{"role": "user", "content": f"{lead}{question}"}],
                "completion": [{"role": "assistant", "content": answer}],
            }
        )
        for lead in ("", "Do you remember: ", "Tell me: ", "Quick question. ")
        for question, answer in facts
    ]
    workspace.train_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return workspace


@pytest.mark.parametrize("quantization", ["4bit", "8bit", "none"])
def test_training_steps(benchmark: Any, training_workspace: Any, quantization: str) -> None:
    """`_STEPS` LoRA steps of batch 4 on the embedded model."""
    from ragtune.config import load_config
    from ragtune.train.trainer import train_adapter

    config = load_config(
        None,
        [
            f"train.quantization={quantization}",
            f"train.max_steps={_STEPS}",
            "train.batch_size=4",
            f"train.adapter=bench-{quantization}",
        ],
    )
    report = benchmark.pedantic(
        lambda: train_adapter(training_workspace, config, progress=False), rounds=1, iterations=1
    )
    benchmark.extra_info.update(
        quantization=quantization,
        tokens=report.tokens,
        tokens_per_second=round(report.tokens_per_second, 1),
        final_train_loss=report.train_loss,
    )
    assert report.steps == _STEPS and report.tokens > 0
