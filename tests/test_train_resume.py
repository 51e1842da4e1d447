"""Interrupted training runs of the train stage (`ragtune.train.trainer.train_adapter`): an
interrupted run leaves its checkpoint and no adapter, `resume` continues from the checkpoint to
where the uninterrupted run ends, and a failed run never leaves a half-written adapter (the
earlier one is replaced atomically).

The runs tune the tiny random Llama of `tiny_model_dir` for one or four steps, on a workspace
built in `tmp_path`; the four-step story runs once per module (`resume_story`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

import ragtune.train.trainer as trainer_module
from ragtune.manifest import Manifest
from ragtune.train.trainer import TrainReport, checkpoint_interval, train_adapter
from ragtune.workspace import Workspace
from train_support import (
    SimulatedCrashError,
    adapter_tensors,
    files,
    patch_trainer,
    record,
    train_config,
    train_workspace,
)


@dataclass
class ResumeStory:
    """A four-step run (default quantization, checkpoints every 2 steps) killed after its
    checkpoint at step 2, resumed; re-run and failing while writing the adapter; then run again
    from scratch without `resume`."""

    workspace: Workspace
    crash_raised: bool
    after_crash: list[str]
    checkpoint: Path
    checkpoint_files: list[str]
    crashed_losses: list[float]
    resumed: TrainReport
    resumed_manifest: Manifest
    resumed_files: dict[str, str]
    resumed_tensors: dict[str, torch.Tensor]
    partial_after_resume: bool
    failed_rerun_error: str
    files_after_failed_rerun: dict[str, str]
    folders_after_failed_rerun: list[str]
    fresh: TrainReport
    fresh_manifest: Manifest
    fresh_tensors: dict[str, torch.Tensor]
    partial_existed_when_fresh_run_built_its_trainer: list[bool]
    partial_after_fresh: bool


@pytest.fixture(scope="module")
def resume_story(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> ResumeStory:
    workspace = train_workspace(tmp_path_factory.mktemp("resume") / "memory")
    config = train_config(tiny_model_dir, "train.max_steps=4", "train.checkpoint_steps=2")
    adapter = workspace.adapter_path("default")
    partial = workspace.adapters_dir / ".default.partial"
    checkpoint = partial / "checkpoint-2"

    # 1. The run is killed right after its checkpoint at step 2 of 4.
    crash_raised = False
    with pytest.MonkeyPatch.context() as monkeypatch:
        patch_trainer(monkeypatch, crash_after=2)
        try:
            train_adapter(workspace, config, progress=False)
        except SimulatedCrashError:
            crash_raised = True
    after_crash = sorted(p.name for p in workspace.adapters_dir.iterdir())
    checkpoint_files = sorted(p.name for p in checkpoint.iterdir())
    state_path = checkpoint / "trainer_state.json"
    crashed_state = json.loads(state_path.read_text(encoding="utf-8"))
    crashed_losses = [h["loss"] for h in crashed_state["log_history"] if "loss" in h]

    # 2. resume=True continues from that checkpoint.
    resumed = train_adapter(workspace, config, resume=True, progress=False)
    resumed_files = files(adapter)
    resumed_tensors = adapter_tensors(adapter)
    resumed_manifest = Manifest.read(adapter)
    partial_after_resume = partial.exists()

    # 3. A re-run fails while writing its adapter (after the weights were saved).
    def broken_plot(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    failed_rerun_error = ""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(trainer_module, "_plot_losses", broken_plot)
        try:
            train_adapter(workspace, config, progress=False)
        except OSError as error:
            failed_rerun_error = str(error)
    files_after_failed_rerun = files(adapter)
    folders_after_failed_rerun = sorted(p.name for p in workspace.adapters_dir.iterdir())

    # 4. Without resume=True the next run starts from scratch.
    with pytest.MonkeyPatch.context() as monkeypatch:
        spy = patch_trainer(monkeypatch)
        fresh = train_adapter(workspace, config, progress=False)
    return ResumeStory(
        workspace=workspace,
        crash_raised=crash_raised,
        after_crash=after_crash,
        checkpoint=checkpoint,
        checkpoint_files=checkpoint_files,
        crashed_losses=crashed_losses,
        resumed=resumed,
        resumed_manifest=resumed_manifest,
        resumed_files=resumed_files,
        resumed_tensors=resumed_tensors,
        partial_after_resume=partial_after_resume,
        failed_rerun_error=failed_rerun_error,
        files_after_failed_rerun=files_after_failed_rerun,
        folders_after_failed_rerun=folders_after_failed_rerun,
        fresh=fresh,
        fresh_manifest=Manifest.read(adapter),
        fresh_tensors=adapter_tensors(adapter),
        partial_existed_when_fresh_run_built_its_trainer=spy.partial_existed,
        partial_after_fresh=partial.exists(),
    )


def test_an_interrupted_run_leaves_its_checkpoint_and_no_adapter(
    resume_story: ResumeStory,
) -> None:
    assert resume_story.crash_raised
    assert resume_story.after_crash == [".default.partial"]  # no adapters/default, no temp
    for name in ("adapter_model.safetensors", "optimizer.pt", "scheduler.pt", "trainer_state.json"):
        assert name in resume_story.checkpoint_files, name
    assert len(resume_story.crashed_losses) == 2


def test_resume_continues_from_the_last_checkpoint(resume_story: ResumeStory) -> None:
    resumed = resume_story.resumed
    assert resumed.resumed_from == str(resume_story.checkpoint)
    assert resumed.steps == 4
    assert resumed.tokens > 0 and resumed.tokens_per_second > 0
    assert "adapter_model.safetensors" in resume_story.resumed_files
    assert not resume_story.partial_after_resume  # the checkpoints are removed once done
    manifest = resume_story.resumed_manifest
    assert manifest.metrics["steps"] == 4
    assert manifest.metrics["resumed_from"] == str(resume_story.checkpoint)
    curve = manifest.loss_curve["train"]
    assert [step for step, _ in curve] == [1.0, 2.0, 3.0, 4.0]
    # Steps 1 and 2 are the interrupted run's, carried over from its checkpoint.
    assert [loss for _, loss in curve[:2]] == pytest.approx(resume_story.crashed_losses)


def test_a_failed_rerun_keeps_the_earlier_adapter_intact(resume_story: ResumeStory) -> None:
    assert resume_story.failed_rerun_error == "disk full"
    assert resume_story.files_after_failed_rerun == resume_story.resumed_files
    # No half-written .default.*.tmp or .old folder is left; the checkpoints stay for a resume.
    assert resume_story.folders_after_failed_rerun == [".default.partial", ".versions", "default"]


def test_a_run_without_resume_starts_from_scratch(resume_story: ResumeStory) -> None:
    fresh = resume_story.fresh
    assert fresh.resumed_from is None
    assert fresh.steps == 4
    # The stale checkpoints of the failed run were removed before training began.
    assert resume_story.partial_existed_when_fresh_run_built_its_trainer == [False]
    assert not resume_story.partial_after_fresh
    manifest = resume_story.fresh_manifest
    assert manifest.metrics["resumed_from"] is None
    curve = manifest.loss_curve["train"]
    assert [step for step, _ in curve] == [1.0, 2.0, 3.0, 4.0]
    # Same seed, same data: its first two steps repeat the interrupted run's.
    assert [loss for _, loss in curve[:2]] == pytest.approx(resume_story.crashed_losses)
    assert fresh.tokens == resume_story.resumed.tokens


def test_a_resumed_run_ends_where_the_uninterrupted_run_ends(resume_story: ResumeStory) -> None:
    """Resuming continues the same training: the adapter matches the one trained without the
    interruption (same seed, data order and optimizer state), in the same dtype."""
    fresh = resume_story.fresh_tensors
    resumed = resume_story.resumed_tensors
    assert set(fresh) == set(resumed)
    assert {str(t.dtype) for t in resumed.values()} == {str(t.dtype) for t in fresh.values()}
    for name, tensor in fresh.items():
        assert torch.allclose(tensor.float(), resumed[name].float(), rtol=1e-3, atol=1e-5), name


@pytest.mark.parametrize(
    "length", ["train.max_steps=5", "train.epochs=2"], ids=["max-steps", "epochs"]
)
def test_resuming_from_the_final_checkpoint_trains_no_step_more(
    tmp_path: Path, tiny_model_dir: Path, length: str
) -> None:
    """Killed after its last checkpoint but before its adapter was written, a run resumed
    from that checkpoint ends at the same step (it trained one step more once)."""
    workspace = train_workspace(tmp_path / "memory", train=[record(n) for n in range(1, 11)])
    config = train_config(tiny_model_dir, "train.max_steps=-1", length, "train.quantization=none")
    asked = 5 if "max_steps" in length else 10  # 10 records, batches of 2, 2 epochs
    with pytest.MonkeyPatch.context() as monkeypatch:
        patch_trainer(monkeypatch, crash_after=asked)
        with pytest.raises(SimulatedCrashError):
            train_adapter(workspace, config, progress=False)

    resumed = train_adapter(workspace, config, resume=True, progress=False)

    assert resumed.resumed_from is not None and resumed.resumed_from.endswith(f"-{asked}")
    assert resumed.steps == asked


def test_a_short_run_checkpoints_at_least_four_times() -> None:
    settings = train_config(Path("unused"), "train.max_steps=30").train
    assert settings.checkpoint_steps == 50
    assert checkpoint_interval(settings, examples=1000) == 7  # a killed 30-step run keeps work
    long = train_config(Path("unused"), "train.max_steps=-1", "train.epochs=2").train
    assert checkpoint_interval(long, examples=1000) == 50  # 500 steps: the setting
    assert checkpoint_interval(long, examples=3) == 1
    # An update makes train.update_epochs (default 1) passes (batch 2): 500 steps, still the
    # setting; a 120-step update checkpoints every 30, where a 240-step first run keeps 50.
    assert checkpoint_interval(long, examples=1000, update=True) == 50
    assert checkpoint_interval(long, examples=240, update=True) == 30
    assert checkpoint_interval(long, examples=240) == 50


def test_resume_without_a_checkpoint_trains_from_the_start(
    tmp_path: Path, tiny_model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    workspace = train_workspace(tmp_path / "memory")
    config = train_config(tiny_model_dir, "train.max_steps=1", "train.quantization=none")
    with caplog.at_level("WARNING", logger="ragtune"):
        report = train_adapter(workspace, config, resume=True, progress=False)
    assert report.resumed_from is None
    assert report.steps == 1
    assert "no checkpoint" in caplog.text


def test_a_failed_first_run_leaves_no_adapter_folder(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = train_workspace(tmp_path / "memory")
    config = train_config(tiny_model_dir, "train.max_steps=1", "train.quantization=none")

    def broken_manifest_write(self: Manifest, folder: Path) -> Path:
        (folder / "manifest.json").write_text("{", encoding="utf-8")  # half written
        raise OSError("disk full")

    monkeypatch.setattr(Manifest, "write", broken_manifest_write)
    with pytest.raises(OSError, match="disk full"):
        train_adapter(workspace, config, progress=False)
    assert not workspace.adapter_path("default").exists()
    assert [
        p.name for p in workspace.adapters_dir.iterdir() if not p.name.endswith(".partial")
    ] in ([], [".versions"])
    versions = workspace.adapters_dir / ".versions"
    assert not versions.exists() or [p.name for p in versions.rglob("*")] in ([], ["default"])
