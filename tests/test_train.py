"""The train stage (`ragtune.train`): a LoRA adapter trained with TRL on `synth/train.jsonl`.

Every training run here tunes the tiny random Llama of `tiny_model_dir` for two or four steps
(about three seconds each), on a workspace built in `tmp_path`.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import TrainerCallback

import ragtune.train.trainer as trainer_module
from ragtune.config import MemoryConfig, load_config
from ragtune.corpus.tables import write_text_units
from ragtune.corpus.types import TextUnit
from ragtune.errors import ConfigError, RagtuneError
from ragtune.hashing import content_hash
from ragtune.train.base_model import load_base_model, weights_hash
from ragtune.train.manifest import Manifest
from ragtune.train.trainer import TrainReport, train_adapter
from ragtune.workspace import Workspace

PROJECTIONS = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
CARD = {"records": 8, "dropped": 1, "strategies": {"text_unit": 8}, "teacher": "test"}
UNITS = (
    TextUnit("tu-1", "doc-1", 0, "Fact 1 is 7. Fact 2 is 14.", 12, 0, 26),
    TextUnit("tu-2", "doc-1", 1, "Fact 3 is 21. Fact 4 is 28.", 12, 27, 54),
)


def _record(number: int, answer: str | None = None) -> dict[str, Any]:
    return {
        "prompt": [{"role": "user", "content": f"What is fact {number}?"}],
        "completion": [
            {"role": "assistant", "content": answer or f"Fact {number} is {7 * number}."}
        ],
        "kind": "text_unit",
        "query_scope": "local",
        "source_ids": ["tu-1"],
        "fact_id": f"f{number}",
        "evidence": [],
    }


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def _make_workspace(
    root: Path,
    *,
    train: list[dict[str, Any]] | None = None,
    val: list[dict[str, Any]] | None = None,
    card: dict[str, Any] | None = CARD,
) -> Workspace:
    workspace = Workspace.at(root, create=True)
    write_text_units(workspace.text_units_path, list(UNITS))
    _write_jsonl(
        workspace.train_path, train if train is not None else [_record(n) for n in range(8)]
    )
    _write_jsonl(workspace.val_path, val if val is not None else [_record(8), _record(9)])
    if card is not None:
        workspace.card_path.write_text(json.dumps(card), encoding="utf-8")
    return workspace


def _config(tiny_model_dir: Path, *overrides: str) -> MemoryConfig:
    return load_config(
        None,
        [
            f"model=hf:{tiny_model_dir}",
            "train.max_steps=2",
            "train.batch_size=2",
            "train.max_seq_len=256",
            *overrides,
        ],
    )


def _files(folder: Path) -> dict[str, str]:
    """Relative path → SHA-256 of every file under `folder`."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _adapter_tensors(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


def _has_avx512_bf16() -> bool:
    try:
        return "avx512_bf16" in Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return False


class SimulatedCrashError(Exception):
    """Raised by `_CrashAfterSave` in place of a killed process."""


class _CrashAfterSave(TrainerCallback):  # type: ignore[misc]
    """Crashes the run right after the checkpoint of `step` is saved."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == self.step:
            raise SimulatedCrashError(f"killed after the checkpoint of step {self.step}")


@dataclass
class TrainerSpy:
    """What `_patch_trainer` saw: the trainers built, and whether the partial folder existed
    when each was built."""

    trainers: list[Any]
    partial_existed: list[bool]
    initial_lora: dict[str, torch.Tensor] = field(default_factory=dict)


def _patch_trainer(
    monkeypatch: pytest.MonkeyPatch, *, crash_after: int | None = None
) -> TrainerSpy:
    """Wrap `ragtune.train.trainer._trainer` to record the trainer it builds (and crash it after
    the checkpoint of step `crash_after`)."""
    spy = TrainerSpy([], [])
    original = trainer_module._trainer

    def wrapped(
        base: Any, config: MemoryConfig, train: Any, val: Any, output: Path, progress: bool
    ) -> Any:
        spy.partial_existed.append(output.exists())
        trainer = original(base, config, train, val, output, progress)
        if crash_after is not None:
            trainer.add_callback(_CrashAfterSave(crash_after))
        spy.trainers.append(trainer)
        spy.initial_lora = {
            name: p.detach().clone()
            for name, p in trainer.model.named_parameters()
            if "lora_" in name
        }
        return trainer

    monkeypatch.setattr(trainer_module, "_trainer", wrapped)
    return spy


@dataclass
class TrainedRun:
    workspace: Workspace
    config: MemoryConfig
    report: TrainReport
    spy: TrainerSpy

    @property
    def adapter(self) -> Path:
        return self.workspace.adapter_path("default")


@pytest.fixture(scope="module")
def trained(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    """One two-step run with the default quantization (auto: 4bit) and lr 1e-3."""
    workspace = _make_workspace(tmp_path_factory.mktemp("trained") / "memory")
    config = _config(tiny_model_dir, "train.lr=0.001")
    with pytest.MonkeyPatch.context() as monkeypatch:
        spy = _patch_trainer(monkeypatch)
        report = train_adapter(workspace, config, progress=False)
    return TrainedRun(workspace, config, report, spy)


# -- one run: the adapter -------------------------------------------------------------------


def test_training_writes_a_safetensors_lora_adapter_and_nothing_else(
    trained: TrainedRun, tiny_model_dir: Path
) -> None:
    adapter = trained.adapter
    assert trained.report.adapter == adapter
    assert (adapter / "adapter_model.safetensors").is_file()
    assert (adapter / "adapter_config.json").is_file()
    assert (adapter / "manifest.json").is_file()
    assert (adapter / "loss.png").is_file()
    pickles = [p for p in adapter.rglob("*") if p.suffix in {".bin", ".pt", ".pth", ".pkl"}]
    assert pickles == []
    # The checkpoints and the temporary folder are gone: only the adapter is left.
    assert [p.name for p in trained.workspace.adapters_dir.iterdir()] == ["default"]

    config = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    assert config["r"] == 16
    assert config["lora_alpha"] == 32
    assert config["lora_dropout"] == pytest.approx(0.05)
    assert {name.rsplit(".", 1)[-1] for name in config["target_modules"]} == PROJECTIONS

    # The adapter holds LoRA matrices only (no copied embeddings or heads), one A and one B
    # per projection per layer of the two-layer model.
    tensors = _adapter_tensors(adapter)
    assert all(".lora_A." in name or ".lora_B." in name for name in tensors), sorted(tensors)
    assert sum(".lora_A." in name for name in tensors) == 2 * len(PROJECTIONS)
    assert sum(".lora_B." in name for name in tensors) == 2 * len(PROJECTIONS)

    # The tokenizer with its chat template is saved alongside.
    from transformers import AutoTokenizer

    saved = AutoTokenizer.from_pretrained(adapter)
    original = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert saved.chat_template == original.chat_template
    assert saved.get_vocab() == original.get_vocab()
    conversation = [{"role": "user", "content": "What is fact 3?"}]
    assert saved.apply_chat_template(
        conversation, tokenize=False, add_generation_prompt=True
    ) == original.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)


def test_training_changes_the_lora_weights_and_not_the_base_weights(
    trained: TrainedRun, tiny_model_dir: Path
) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    # A fresh LoRA starts with B = 0; training moved every B away from zero. The saved tensors
    # are the trained ones.
    tensors = _adapter_tensors(trained.adapter)
    b_matrices = {name: t for name, t in tensors.items() if ".lora_B." in name}
    assert b_matrices
    for name, tensor in b_matrices.items():
        assert torch.isfinite(tensor).all(), name
        assert tensor.abs().max().item() > 0, f"{name} is still zero"
    # (Every A keeps its random start here: with one warmup step at lr 0, B was still zero when
    # the second step computed A's gradient.)
    final = dict(trained.spy.trainers[0].model.named_parameters())
    assert all(
        t.abs().max().item() == 0 for n, t in trained.spy.initial_lora.items() if ".lora_B." in n
    )
    saved = {name.replace(".default.", "."): t for name, t in final.items() if "lora_" in name}
    assert set(saved) == set(tensors)
    for name, tensor in tensors.items():
        assert torch.equal(saved[name].detach().to(tensor.dtype), tensor), name

    original = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    tuned = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir), trained.adapter
    ).eval()

    # Every non-LoRA parameter of the tuned model is the original model's, bit for bit.
    base_state = {
        name.replace(".base_layer.", "."): tensor
        for name, tensor in tuned.get_base_model().state_dict().items()
        if "lora_" not in name
    }
    original_state = original.state_dict()
    assert set(base_state) == set(original_state)
    for name, tensor in original_state.items():
        assert torch.equal(base_state[name], tensor), name

    # The loaded LoRA weights are the trained ones, and they change the model's output.
    loaded = {n: p for n, p in tuned.named_parameters() if ".lora_B." in n}
    assert len(loaded) == len(b_matrices)
    assert all(p.abs().max().item() > 0 for p in loaded.values())
    ids = torch.tensor([[5, 17, 42, 99, 7, 3]])
    with torch.no_grad():
        base_logits = original(input_ids=ids).logits
        tuned_logits = tuned(input_ids=ids).logits
        with tuned.disable_adapter():
            disabled_logits = tuned(input_ids=ids).logits
    assert not torch.allclose(tuned_logits, base_logits)
    assert torch.allclose(disabled_logits, base_logits)


# -- one run: the manifest ------------------------------------------------------------------


def test_manifest_records_model_data_settings_libraries_and_metrics(
    trained: TrainedRun, tiny_model_dir: Path
) -> None:
    report = trained.report
    manifest = Manifest.read(trained.adapter)
    raw = json.loads((trained.adapter / "manifest.json").read_text(encoding="utf-8"))

    assert manifest.adapter == "default"
    assert manifest.base_model["spec"] == f"hf:{tiny_model_dir}"
    assert Path(manifest.base_model["source"]).resolve() == tiny_model_dir.resolve()
    assert manifest.base_model["weights_sha256"] == weights_hash(str(tiny_model_dir))
    assert len(manifest.base_model["weights_sha256"]) == 64
    assert manifest.corpus_sha256 == content_hash(*(u.id for u in UNITS), length=64)
    assert manifest.data_card == CARD
    assert manifest.device == "cpu"

    hyper = manifest.hyperparameters
    assert hyper["lr"] == pytest.approx(1e-3)
    assert hyper["lora_r"] == 16
    assert hyper["lora_alpha"] == 32
    assert hyper["lora_dropout"] == pytest.approx(0.05)
    assert hyper["max_steps"] == 2
    assert hyper["batch_size"] == 2
    assert hyper["quantization"] == "4bit"  # auto resolved
    assert hyper["packing"] is False  # no flash attention on a CPU
    assert hyper["base_model"] == f"hf:{tiny_model_dir}"

    for name in ("torch", "transformers", "trl", "peft", "bitsandbytes"):
        assert manifest.libraries[name] == importlib.metadata.version(name), name

    metrics = manifest.metrics
    assert metrics["steps"] == report.steps == 2
    assert metrics["tokens"] == report.tokens > 0
    assert metrics["tokens_per_second"] > 0
    assert report.tokens_per_second > 0
    assert metrics["resumed_from"] is None
    assert report.resumed_from is None
    for name in ("train_loss", "val_loss"):
        value = metrics[name]
        assert isinstance(value, float) and math.isfinite(value), (name, value)
        assert value == pytest.approx(getattr(report, name))
    assert report.seconds > 0
    assert report.quantization == "4bit"
    assert "2 steps" in report.summary_line()

    train_curve = manifest.loss_curve["train"]
    assert [step for step, _ in train_curve] == [1.0, 2.0]  # one point per step
    assert all(math.isfinite(loss) for _, loss in train_curve)
    assert train_curve[-1][1] == pytest.approx(metrics["train_loss"])
    val_curve = manifest.loss_curve["val"]
    assert val_curve, "no validation loss recorded"
    assert val_curve[-1][0] == 2.0  # the final weights were validated
    assert val_curve[-1][1] == pytest.approx(metrics["val_loss"])

    png = (trained.adapter / "loss.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 1000

    # The manifest round-trips: what was read writes the same JSON back.
    copy_folder = trained.workspace.root / "manifest-copy"
    copy_folder.mkdir()
    manifest.write(copy_folder)
    assert json.loads((copy_folder / "manifest.json").read_text(encoding="utf-8")) == raw
    assert Manifest.read(copy_folder) == manifest


def test_manifest_read_rejects_folders_without_a_ragtune_manifest(tmp_path: Path) -> None:
    with pytest.raises(RagtuneError, match=r"no manifest\.json"):
        Manifest.read(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(RagtuneError, match="not a ragtune adapter manifest"):
        Manifest.read(tmp_path)
    (tmp_path / "manifest.json").write_text('{"unexpected": 1}', encoding="utf-8")
    with pytest.raises(RagtuneError, match="not a ragtune adapter manifest"):
        Manifest.read(tmp_path)


# -- quantization ---------------------------------------------------------------------------


@pytest.mark.parametrize("quantization", ["4bit", "none"])
def test_quantized_and_full_precision_training_both_run_on_cpu(
    quantization: str, tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = _patch_trainer(monkeypatch)
    workspace = _make_workspace(tmp_path / "memory")
    config = _config(tiny_model_dir, f"train.quantization={quantization}", "train.adapter=q")

    report = train_adapter(workspace, config, progress=False)

    assert report.quantization == quantization
    assert report.adapter == workspace.adapter_path("q")
    manifest = Manifest.read(report.adapter)
    assert manifest.adapter == "q"
    assert manifest.hyperparameters["quantization"] == quantization
    assert manifest.metrics["steps"] == 2
    assert math.isfinite(manifest.metrics["train_loss"])
    # The model that trained really was (or was not) 4-bit.
    from bitsandbytes.nn import Linear4bit

    layers = [m for m in spy.trainers[0].model.modules() if isinstance(m, Linear4bit)]
    assert len(layers) == (2 * len(PROJECTIONS) if quantization == "4bit" else 0)
    b_matrices = [t for n, t in _adapter_tensors(report.adapter).items() if ".lora_B." in n]
    assert b_matrices and all(t.abs().max().item() > 0 for t in b_matrices)


# -- two epochs of one step: evaluation in the middle of training, token counting ------------


@dataclass
class TwoEpochRun:
    report: TrainReport
    trainer: Any
    lengths: list[int]


@pytest.fixture(scope="module")
def two_epoch_run(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> TwoEpochRun:
    """Two records of very different lengths, batch size 2, two steps: each step is one epoch
    (and one validation), and each batch holds a short and a long record (padding). The
    workspace has no `synth/card.json`."""
    long_answer = " ".join(f"Fact 1 is linked to fact {n} and to note {n * 3}." for n in range(12))
    workspace = _make_workspace(
        tmp_path_factory.mktemp("two-epochs") / "memory",
        train=[_record(1, long_answer), _record(2)],
        val=[_record(3)],
        card=None,
    )
    config = _config(tiny_model_dir, "train.quantization=4bit")
    with pytest.MonkeyPatch.context() as monkeypatch:
        spy = _patch_trainer(monkeypatch)
        report = train_adapter(workspace, config, progress=False)
    trainer = spy.trainers[0]
    lengths = [len(row["input_ids"]) for row in trainer.train_dataset]
    return TwoEpochRun(report, trainer, lengths)


def test_evaluation_between_epochs_does_not_repack_the_4bit_layers(
    two_epoch_run: TwoEpochRun,
) -> None:
    from bitsandbytes.nn import Linear4bit

    report = two_epoch_run.report
    manifest = Manifest.read(report.adapter)
    assert [step for step, _ in manifest.loss_curve["val"]] == [1.0, 2.0]  # validated each epoch
    assert report.epochs == pytest.approx(2.0)
    layers = [m for m in two_epoch_run.trainer.model.modules() if isinstance(m, Linear4bit)]
    assert layers
    for layer in layers:
        assert layer.support_avx512bf16_for_cpu is False
        assert not getattr(layer.weight.quant_state, "packing_format_for_cpu", False)


def test_manifest_data_card_is_empty_without_a_card(two_epoch_run: TwoEpochRun) -> None:
    assert Manifest.read(two_epoch_run.report.adapter).data_card == {}


def test_tokens_count_the_records_without_padding(two_epoch_run: TwoEpochRun) -> None:
    # TrainReport.tokens: "Tokens trained on (input tokens seen, padding excluded)". Each of the
    # two steps saw both records once.
    lengths = two_epoch_run.lengths
    assert len(lengths) == 2 and max(lengths) > 3 * min(lengths)
    with_padding = 2 * 2 * max(lengths)
    assert two_epoch_run.report.tokens == 2 * sum(lengths), (
        f"counted {two_epoch_run.report.tokens} tokens; the records hold {2 * sum(lengths)}, "
        f"with padding {with_padding}"
    )


# -- interrupted runs, resuming, atomic replacement -----------------------------------------


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
    workspace = _make_workspace(tmp_path_factory.mktemp("resume") / "memory")
    config = _config(tiny_model_dir, "train.max_steps=4", "train.checkpoint_steps=2")
    adapter = workspace.adapter_path("default")
    partial = workspace.adapters_dir / ".default.partial"
    checkpoint = partial / "checkpoint-2"

    # 1. The run is killed right after its checkpoint at step 2 of 4.
    crash_raised = False
    with pytest.MonkeyPatch.context() as monkeypatch:
        _patch_trainer(monkeypatch, crash_after=2)
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
    resumed_files = _files(adapter)
    resumed_tensors = _adapter_tensors(adapter)
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
    files_after_failed_rerun = _files(adapter)
    folders_after_failed_rerun = sorted(p.name for p in workspace.adapters_dir.iterdir())

    # 4. Without resume=True the next run starts from scratch.
    with pytest.MonkeyPatch.context() as monkeypatch:
        spy = _patch_trainer(monkeypatch)
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
        fresh_tensors=_adapter_tensors(adapter),
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
    assert resume_story.folders_after_failed_rerun == [".default.partial", "default"]


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


def test_resume_without_a_checkpoint_trains_from_the_start(
    tmp_path: Path, tiny_model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    workspace = _make_workspace(tmp_path / "memory")
    config = _config(tiny_model_dir, "train.max_steps=1", "train.quantization=none")
    with caplog.at_level("WARNING", logger="ragtune"):
        report = train_adapter(workspace, config, resume=True, progress=False)
    assert report.resumed_from is None
    assert report.steps == 1
    assert "no checkpoint" in caplog.text


def test_a_failed_first_run_leaves_no_adapter_folder(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = _make_workspace(tmp_path / "memory")
    config = _config(tiny_model_dir, "train.max_steps=1", "train.quantization=none")

    def broken_manifest_write(self: Manifest, folder: Path) -> Path:
        (folder / "manifest.json").write_text("{", encoding="utf-8")  # half written
        raise OSError("disk full")

    monkeypatch.setattr(Manifest, "write", broken_manifest_write)
    with pytest.raises(OSError, match="disk full"):
        train_adapter(workspace, config, progress=False)
    assert not workspace.adapter_path("default").exists()
    assert [
        p.name for p in workspace.adapters_dir.iterdir() if not p.name.endswith(".partial")
    ] == []


# -- the AVX512-BF16 gradient trap ----------------------------------------------------------

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


# -- bad input ------------------------------------------------------------------------------


def test_training_without_synthesized_data_says_to_synthesize(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    workspace = Workspace.at(tmp_path / "memory", create=True)
    with pytest.raises(RagtuneError, match="ragtune synthesize"):
        train_adapter(workspace, _config(tiny_model_dir), progress=False)
    assert not workspace.adapters_dir.exists()


def test_training_on_an_empty_train_file_is_a_ragtune_error(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    workspace = _make_workspace(tmp_path / "memory", train=[])
    assert workspace.train_path.stat().st_size == 0
    with pytest.raises(RagtuneError, match="training data"):
        train_adapter(workspace, _config(tiny_model_dir), progress=False)
    assert not workspace.adapter_path("default").exists()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.lr=0", "train.lr"),
        ("train.lr=-0.1", "train.lr"),
        ("train.batch_size=0", "train.batch_size"),
        ("train.checkpoint_steps=0", "train.checkpoint_steps"),
        ("train.lora_dropout=1", "train.lora_dropout"),
        ("train.adapter=../x", "train.adapter"),
        ("train.adapter=.hidden", "train.adapter"),
        ("train.quantization=2bit", "train.quantization"),
    ],
)
def test_invalid_train_settings_are_config_errors(
    override: str, message: str, tiny_model_dir: Path
) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        _config(tiny_model_dir, override)


def test_train_defaults_are_valid_and_base_model_defaults_to_model(tiny_model_dir: Path) -> None:
    config = load_config(None, [f"model=hf:{tiny_model_dir}"])
    assert config.base_model == f"hf:{tiny_model_dir}"
    assert config.train.quantization == "auto"
    other = load_config(None, [f"model=hf:{tiny_model_dir}", "train.base_model=hf:/elsewhere"])
    assert other.base_model == "hf:/elsewhere"
