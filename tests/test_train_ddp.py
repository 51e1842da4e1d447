"""Multi-process training: `ragtune train` run unchanged under `accelerate launch` with two CPU
processes (DDP over gloo), for the tiny model's two steps, full precision and 4-bit.

`accelerate launch --cpu --num_processes 2` starts a single process (accelerate leaves several
CPU processes to mpirun), so the processes are started by the torchrun launcher of
`--multi_gpu` with CUDA hidden: the trainer then trains on the CPU, and accelerate joins the two
processes with gloo. Each run takes about 20 seconds (two interpreters importing torch).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ragtune.config import save_config
from ragtune.manifest import Manifest
from support import RAGTUNE, visible_lines
from train_support import adapter_tensors, train_config, train_workspace

PROCESSES = 2
STEPS = 2
BATCH_SIZE = 2  # per process: train_config's
RECORDS = 8  # train_workspace's


def accelerate_launch(
    workspace: Path, *train_args: str, home: Path
) -> subprocess.CompletedProcess[str]:
    """`accelerate launch` two CPU processes of `ragtune --debug -q train WORKSPACE ...`."""
    env = {
        **os.environ,  # RAGTUNE_CACHE and HF_HUB_OFFLINE of the test session
        "CUDA_VISIBLE_DEVICES": "",  # CPU processes even where there is a GPU
        "ACCELERATE_USE_CPU": "true",
        "HF_HOME": str(home),  # no accelerate config or datasets cache of the user's
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "MASTER_ADDR": "127.0.0.1",
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        f"--num_processes={PROCESSES}",
        "--num_machines=1",
        "--main_process_ip=127.0.0.1",
        "--main_process_port=0",  # a free port
        "--mixed_precision=no",
        "--dynamo_backend=no",
        str(RAGTUNE),
        "--debug",
        "-q",
        "train",
        str(workspace),
        *train_args,
    ]
    return subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=240, check=False
    )


@pytest.mark.subprocess
@pytest.mark.parametrize("quantization", ["none", "4bit"])
def test_accelerate_launch_trains_one_adapter_with_two_gloo_processes(
    quantization: str, tmp_path: Path, tiny_model_dir: Path
) -> None:
    workspace = train_workspace(tmp_path / "memory")
    save_config(train_config(tiny_model_dir, "train.lr=0.001"), workspace.config_path)
    adapter = f"ddp-{quantization}"

    result = accelerate_launch(
        workspace.root,
        f"--quantization={quantization}",
        f"--adapter={adapter}",
        f"--max-steps={STEPS}",
        home=tmp_path / "hf-home",
    )

    assert result.returncode == 0, result.stderr[-4000:]
    # Two processes joined one gloo process group.
    lines = visible_lines(result.stderr)
    for rank in range(PROCESSES):
        assert f"debug: training with DDP: process {rank} of {PROCESSES} (gloo backend)" in lines

    # One adapter, written once as its first version: no temporary, replaced or checkpoint
    # folder is left.
    assert sorted(p.name for p in workspace.adapters_dir.iterdir()) == [".versions", adapter]
    versions = workspace.adapters_dir / ".versions" / adapter
    assert sorted(p.name for p in versions.iterdir()) == ["current", "v1"]
    folder = workspace.adapter_path(adapter)
    for name in ("adapter_model.safetensors", "adapter_config.json", "manifest.json", "loss.png"):
        assert (folder / name).is_file(), name

    manifest = Manifest.read(folder)
    assert manifest.adapter == adapter
    assert manifest.processes == PROCESSES
    assert manifest.device == "cpu"
    assert manifest.peak_gpu_memory_bytes is None
    assert manifest.hyperparameters["quantization"] == quantization
    metrics = manifest.metrics
    assert metrics["steps"] == STEPS
    # Each step took a batch on each process: twice the records a single process takes.
    assert metrics["epochs"] == pytest.approx(STEPS * PROCESSES * BATCH_SIZE / RECORDS)
    assert metrics["tokens"] > 0
    assert metrics["tokens_per_second"] > 0
    for name in ("train_loss", "val_loss"):
        assert isinstance(metrics[name], float) and math.isfinite(metrics[name]), name
    train_curve = manifest.loss_curve["train"]
    assert [step for step, _ in train_curve] == [float(s) for s in range(1, STEPS + 1)]
    assert all(math.isfinite(loss) for _, loss in train_curve)
    # Only the main process reports the run.
    reported = f"trained {adapter} v1 ({quantization}) on {PROCESSES} processes"
    assert result.stdout.count(reported) == 1
    assert result.stdout.count("wrote ") == 1

    # Training moved the LoRA weights: every B starts at zero.
    tensors = adapter_tensors(folder)
    b_matrices = {name: t for name, t in tensors.items() if ".lora_B." in name}
    assert b_matrices
    for name, tensor in b_matrices.items():
        assert bool(tensor.isfinite().all()), name
        assert tensor.abs().max().item() > 0, f"{name} is still zero"
