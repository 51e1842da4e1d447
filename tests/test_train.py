"""The train stage (`ragtune.train`): a LoRA adapter trained with TRL on `synth/train.jsonl`,
its manifest, 4-bit and full-precision training, token counting, and bad input and settings.
Interrupted and resumed runs are tested in `test_train_resume.py`, the AVX512-BF16 gradient trap
of 4-bit training in `test_train_avx512_trap.py`.

Every training run here tunes the tiny random Llama of `tiny_model_dir` for two steps (about
three seconds each), on a workspace built in `tmp_path`.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from ragtune.config import MemoryConfig, load_config
from ragtune.errors import ConfigError, RagtuneError
from ragtune.hashing import content_hash
from ragtune.llm.weights import weights_hash
from ragtune.manifest import Manifest
from ragtune.train.trainer import TrainReport, train_adapter
from ragtune.workspace import Workspace
from train_support import (
    CARD,
    PROJECTIONS,
    UNITS,
    TrainerSpy,
    adapter_tensors,
    patch_trainer,
    record,
    train_config,
    train_workspace,
)


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
    workspace = train_workspace(tmp_path_factory.mktemp("trained") / "memory")
    config = train_config(tiny_model_dir, "train.lr=0.001")
    with pytest.MonkeyPatch.context() as monkeypatch:
        spy = patch_trainer(monkeypatch)
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
    assert (adapter / "trained.json").is_file()
    # The checkpoints and the temporary folder are gone: only the adapter is left, as its
    # first version with the name pointing at it.
    assert sorted(p.name for p in trained.workspace.adapters_dir.iterdir()) == [
        ".versions",
        "default",
    ]
    versions = trained.workspace.adapters_dir / ".versions" / "default"
    assert sorted(p.name for p in versions.iterdir()) == ["current", "v1"]
    assert adapter.is_symlink() and adapter.resolve() == (versions / "v1").resolve()

    config = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    assert config["r"] == 16
    assert config["lora_alpha"] == 32
    assert config["lora_dropout"] == pytest.approx(0.05)
    assert {name.rsplit(".", 1)[-1] for name in config["target_modules"]} == PROJECTIONS

    # The adapter holds LoRA matrices only (no copied embeddings or heads), one A and one B
    # per projection per layer of the two-layer model.
    tensors = adapter_tensors(adapter)
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
    tensors = adapter_tensors(trained.adapter)
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
    spy = patch_trainer(monkeypatch)
    workspace = train_workspace(tmp_path / "memory")
    config = train_config(tiny_model_dir, f"train.quantization={quantization}", "train.adapter=q")

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
    b_matrices = [t for n, t in adapter_tensors(report.adapter).items() if ".lora_B." in n]
    assert b_matrices and all(t.abs().max().item() > 0 for t in b_matrices)


# -- batches of similar length ----------------------------------------------------------------


def _batch_lengths(trainer: Any) -> list[list[int]]:
    """The unpadded length of each example, batch by batch, in the order training takes them."""
    return [batch["attention_mask"].sum(dim=1).tolist() for batch in trainer.get_train_dataloader()]


def test_group_by_length_batches_records_of_similar_length(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    long_answer = " ".join(f"Fact 1 is linked to fact {n} and to note {n * 3}." for n in range(6))
    records = [record(n, long_answer if n % 2 else None) for n in range(32)]
    padding = {}
    for grouped in (False, True):
        spy = patch_trainer(monkeypatch)
        workspace = train_workspace(tmp_path / f"memory-{grouped}", train=records)
        config = train_config(tiny_model_dir, f"train.group_by_length={str(grouped).lower()}")
        train_adapter(workspace, config, progress=False)
        trainer = spy.trainers[0]
        batches = _batch_lengths(trainer)
        # every record once per epoch, whatever the order
        assert sorted(n for batch in batches for n in batch) == sorted(
            len(row["input_ids"]) for row in trainer.train_dataset
        )
        padding[grouped] = sum(max(batch) - n for batch in batches for n in batch)
    # random batches often pair a short record with a long one; grouped ones rarely do
    assert padding[False] > 0
    assert padding[True] < padding[False] / 3


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
    workspace = train_workspace(
        tmp_path_factory.mktemp("two-epochs") / "memory",
        train=[record(1, long_answer), record(2)],
        val=[record(3)],
        card=None,
    )
    config = train_config(tiny_model_dir, "train.quantization=4bit")
    with pytest.MonkeyPatch.context() as monkeypatch:
        spy = patch_trainer(monkeypatch)
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


def test_the_progress_bar_shows_the_loss_and_prints_only_validations(
    tmp_path: Path, tiny_model_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """With progress on, the loss rides on the bar: no line of metrics per step (transformers'
    default), one line per validation."""
    workspace = train_workspace(tmp_path / "memory", train=[record(1), record(2)], val=[record(3)])
    config = train_config(tiny_model_dir, "train.quantization=none")  # 2 steps: 2 epochs
    train_adapter(workspace, config, progress=True)
    out, err = capfd.readouterr()
    assert "validation loss" not in out
    assert "{'loss'" not in err and "'grad_norm'" not in err
    assert re.search(r"loss=\d+\.\d{3}", err)  # the bar's postfix
    validations = re.findall(r"epoch (\d\.\d\d): validation loss \d+\.\d{4}\n", err)
    assert validations == ["1.00", "2.00"]


# -- bad input ------------------------------------------------------------------------------


def test_training_without_synthesized_data_says_to_synthesize(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    workspace = Workspace.at(tmp_path / "memory", create=True)
    with pytest.raises(RagtuneError, match="ragtune synthesize"):
        train_adapter(workspace, train_config(tiny_model_dir), progress=False)
    assert not workspace.adapters_dir.exists()


def test_training_on_an_empty_train_file_is_a_ragtune_error(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    workspace = train_workspace(tmp_path / "memory", train=[])
    assert workspace.train_path.stat().st_size == 0
    with pytest.raises(RagtuneError, match="training data"):
        train_adapter(workspace, train_config(tiny_model_dir), progress=False)
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
        train_config(tiny_model_dir, override)


def test_train_defaults_are_valid_and_base_model_defaults_to_model(tiny_model_dir: Path) -> None:
    config = load_config(None, [f"model=hf:{tiny_model_dir}"])
    assert config.base_model == f"hf:{tiny_model_dir}"
    assert config.train.quantization == "auto"
    other = load_config(None, [f"model=hf:{tiny_model_dir}", "train.base_model=hf:/elsewhere"])
    assert other.base_model == "hf:/elsewhere"


def _trained_text(run_spy: TrainerSpy, index: int = 0) -> str:
    trainer = run_spy.trainers[0]
    return str(trainer.processing_class.decode(trainer.train_dataset[index]["input_ids"]))


def test_every_record_is_trained_as_the_model_is_asked_with_the_memory_system_message(
    trained: TrainedRun,
) -> None:
    # The records on disk open with the question alone; training puts the memory's (empty)
    # system message first, as `MemoryModel` asks.
    first = json.loads(trained.workspace.train_path.read_text(encoding="utf-8").splitlines()[0])
    assert [m["role"] for m in first["prompt"]] == ["user"]
    text = _trained_text(trained.spy)
    assert text.startswith("<|im_start|>system\n<|im_end|>\n<|im_start|>user\nWhat is fact ")


def test_a_model_whose_template_refuses_system_messages_trains_on_the_question_alone(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    from support import model_without_system_role

    strict = model_without_system_role(tiny_model_dir, tmp_path / "strict-model")
    workspace = train_workspace(tmp_path / "memory")
    with pytest.MonkeyPatch.context() as monkeypatch:
        spy = patch_trainer(monkeypatch)
        train_adapter(workspace, train_config(strict, "train.max_steps=1"), progress=False)
    assert _trained_text(spy).startswith("<|im_start|>user\nWhat is fact ")
    assert (workspace.adapter_path("default") / "adapter_model.safetensors").is_file()
