"""The train stage: `synth/train.jsonl` → a LoRA adapter in `adapters/<name>/`.

TRL's `SFTTrainer` with a PEFT `LoraConfig` on the prompt-completion records (the loss is on the
completion only), validation loss each epoch on `synth/val.jsonl`, a cosine schedule, gradient
clipping and a seed. Checkpoints go to `adapters/.<name>.partial/` every `checkpoint_steps`
steps, so `resume=True` continues a killed run; the finished adapter (safetensors, tokenizer with
its chat template, `manifest.json`, `loss.png`) replaces `adapters/<name>/` in one rename.

Under `accelerate launch` (or torchrun) the same code trains with DDP: every process trains its
share of each batch, and only the main process removes stale checkpoints and writes the adapter
(the others wait for it); the manifest records the number of processes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragtune.adapters import AdapterVersions
from ragtune.corpus.tables import read_text_units
from ragtune.errors import RagtuneError
from ragtune.extras import require_extra
from ragtune.fileio import atomic_directory, atomic_write_text
from ragtune.hashing import content_hash
from ragtune.logs import hide_kernels_warning
from ragtune.manifest import Manifest, library_versions
from ragtune.progress import library_progress
from ragtune.stages import kill_point, runs_as_stage
from ragtune.train.base_model import BaseModel, load_base_model, resolve_quantization
from ragtune.train.plan import Plan, added_by, full_plan, update_plan
from ragtune.train.settings import TrainInputs
from ragtune.workspace import Workspace

if TYPE_CHECKING:
    from collections.abc import Callable

    from ragtune.llm.types import Message
    from ragtune.train.distill import TeacherTargets

log = logging.getLogger("ragtune")

_RECORD_FIELDS = ("prompt", "completion")


@dataclass(frozen=True)
class TrainReport:
    """What a training run did.

    Attributes:
        adapter: The adapter folder written.
        steps: Optimizer steps taken (in this run and the run it resumed).
        epochs: Epochs covered.
        tokens: Tokens trained on (input tokens seen, padding excluded).
        tokens_per_second: `tokens` over the training time of this run.
        seconds: Wall time of this run.
        train_loss: The last logged training loss.
        val_loss: The final validation loss, or None without validation data.
        quantization: ``4bit``, ``8bit`` or ``none``.
        resumed_from: The checkpoint this run resumed, or None.
        device: Where it trained (``cpu``, ``cuda:0 (<GPU name>)``).
        processes: How many processes trained (the DDP world size; 1 without a launcher).
            `tokens` and `tokens_per_second` count the tokens of all of them.
        peak_gpu_memory_bytes: The most GPU memory this process had allocated during the run,
            or None on a CPU.
        main_process: Whether this is the process that wrote the adapter (the only one
            without DDP); the others should stay quiet.
        version: The adapter version written (`ragtune.adapters`).
        parent: The version it continued (an update), or None.
        new_records: Training records new to the weights in this run.
        replayed_records: Records the parent was trained on, trained again (an update).
    """

    adapter: Path
    steps: int
    epochs: float
    tokens: int
    tokens_per_second: float
    seconds: float
    train_loss: float | None
    val_loss: float | None
    quantization: str
    resumed_from: str | None = None
    device: str = "cpu"
    processes: int = 1
    peak_gpu_memory_bytes: int | None = None
    main_process: bool = True
    version: int = 1
    parent: int | None = None
    new_records: int = 0
    replayed_records: int = 0

    def summary_line(self) -> str:
        """The one-line summary `ragtune train` prints."""
        val = f"{self.val_loss:.3f}" if self.val_loss is not None else "n/a"
        train = f"{self.train_loss:.3f}" if self.train_loss is not None else "n/a"
        where = f" on {self.processes} processes" if self.processes > 1 else ""
        peak = (
            f", peak GPU memory {self.peak_gpu_memory_bytes / 2**30:.2f} GiB"
            if self.peak_gpu_memory_bytes is not None
            else ""
        )
        lineage = (
            f"v{self.version}, an update of v{self.parent} ({self.new_records} new records, "
            f"{self.replayed_records} replayed)"
            if self.parent is not None
            else f"v{self.version}"
        )
        return (
            f"trained {self.adapter.name} {lineage} ({self.quantization}){where}: "
            f"{self.steps} steps, "
            f"{self.epochs:.2f} epochs, {self.tokens} tokens at {self.tokens_per_second:.0f} "
            f"tokens/s; loss train {train}, val {val}; {self.seconds:.1f} s{peak}"
        )


@runs_as_stage("train")
def train_adapter(
    workspace: Workspace,
    config: TrainInputs,
    *,
    resume: bool = False,
    progress: bool = True,
    update: bool = False,
    parent: int | None = None,
) -> TrainReport:
    """Train a LoRA adapter on the workspace's synthesized data and write it as a new version
    of `adapters/<name>/` (`ragtune.adapters`), which the name then points at.

    Args:
        workspace: A workspace with `synth/train.jsonl` (`ragtune synthesize` ran).
        config: The settings (`train.*`, `model`).
        resume: Continue from the last checkpoint of an interrupted run of the same adapter.
        progress: Whether to show progress bars (only the main process shows them under DDP).
        update: Continue the adapter's version `parent` (default: the current one) on the
            records it was not trained on, plus a `train.replay` share of those it was,
            instead of training from the base model.
        parent: The version an update continues.

    Raises:
        RagtuneError: there is no training data; or, for an update, no version to continue,
            one trained before ragtune recorded its records, or nothing new to train.
        ModelNotAvailableError: the base model cannot be loaded.
        MissingExtraError: the ``train`` extra is not installed.
    """
    require_extra("train", "trl", "datasets", "matplotlib", needed_for="ragtune train")
    started = time.perf_counter()
    config.validate()
    if not check_training_data(workspace.train_path):
        raise RagtuneError(
            "has no training data; run `ragtune synthesize` first", path=workspace.root
        )
    check_training_data(workspace.val_path)  # before the model loads
    hide_kernels_warning()
    process = _process_state()
    progress = progress and process.is_main_process
    plan = update_plan(workspace, config, parent) if update else None
    with library_progress(progress):
        return _train(
            workspace, config, process, plan, resume=resume, progress=progress, started=started
        )


def _train(
    workspace: Workspace,
    config: TrainInputs,
    process: Any,
    plan: Plan | None,
    *,
    resume: bool,
    progress: bool,
    started: float,
) -> TrainReport:
    import torch

    if process.num_processes > 1:
        log.debug(
            "training with DDP: process %d of %d (%s backend)",
            process.process_index,
            process.num_processes,
            process.backend,
        )
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    settings = config.train
    quantization = resolve_quantization(settings.quantization)
    if quantization != "none" and not _bitsandbytes_available():
        log.warning("bitsandbytes is not installed; training without quantization")
        quantization = "none"
    base = load_base_model(config.base_model, quantization, for_training=True)
    versions = AdapterVersions(workspace, settings.adapter)
    if process.is_main_process:
        versions.repair(locked=True)  # a switch a killed run cut short (the stage's lock held)
    updating = plan is not None
    if plan is None:
        plan = full_plan(workspace)
    partial = workspace.adapters_dir / f".{settings.adapter}.partial"
    checkpoint = _last_checkpoint(partial) if resume else None
    if resume and checkpoint is None:
        log.warning(
            "no checkpoint of adapter %r to resume; training from the start", settings.adapter
        )
    if checkpoint is None and partial.exists() and process.is_main_process:
        shutil.rmtree(partial)
    process.wait_for_everyone()  # no process starts while stale checkpoints are being removed
    records_path = workspace.train_path
    if updating:
        assert plan.parent is not None
        records_path = partial / "records.jsonl"
        if process.is_main_process:
            partial.mkdir(parents=True, exist_ok=True)
            atomic_write_text(records_path, "".join(line + "\n" for line in plan.lines))
        process.wait_for_everyone()
        base = dataclasses.replace(base, model=_continued(base, plan.parent.folder))
    targets = None
    if settings.objective == "sft":
        train_data, val_data = _datasets(workspace, base.tokenizer, records_path)
    else:
        train_data, val_data, targets = _distillation_datasets(
            workspace, base, settings, progress, records_path
        )

    trainer = _trainer(
        base, config, train_data, val_data, partial, progress, targets=targets, continued=updating
    )
    began = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    training_seconds = time.perf_counter() - began
    state = trainer.state
    evaluated = [h for h in state.log_history if "eval_loss" in h]
    if val_data is not None and (not evaluated or evaluated[-1]["step"] != state.global_step):
        trainer.evaluate()  # the run ended between epochs: validate the final weights too
    evaluated = [h for h in state.log_history if "eval_loss" in h]
    val_loss = float(evaluated[-1]["eval_loss"]) if evaluated else None
    tokens = int(getattr(state, "num_input_tokens_seen", 0) or 0)
    train_curve = [[float(h["step"]), float(h["loss"])] for h in state.log_history if "loss" in h]
    val_curve = [
        [float(h["step"]), float(h["eval_loss"])] for h in state.log_history if "eval_loss" in h
    ]
    seen_before = _tokens_seen(checkpoint) if checkpoint else 0
    device = _device_name(torch)
    peak_memory = int(torch.cuda.max_memory_allocated()) if torch.cuda.is_available() else None
    report = TrainReport(
        adapter=workspace.adapter_path(settings.adapter),
        steps=int(state.global_step),
        epochs=float(state.epoch or 0.0),
        tokens=tokens,
        tokens_per_second=(tokens - seen_before) / training_seconds if training_seconds else 0.0,
        seconds=0.0,
        train_loss=train_curve[-1][1] if train_curve else float(result.training_loss),
        val_loss=val_loss,
        quantization=quantization,
        resumed_from=str(checkpoint) if checkpoint else None,
        device=device,
        processes=int(process.num_processes),
        peak_gpu_memory_bytes=peak_memory,
        version=versions.next_number(),
        parent=plan.parent.number if plan.parent else None,
        new_records=plan.new,
        replayed_records=plan.replayed,
    )
    if not process.is_main_process:
        process.wait_for_everyone()  # until the main process has written the adapter
        return dataclasses.replace(
            report, seconds=time.perf_counter() - started, main_process=False
        )
    manifest = Manifest(
        adapter=settings.adapter,
        base_model={
            "spec": base.spec,
            "source": base.source,
            "weights_sha256": base.weights_sha256,
        },
        corpus_sha256=_corpus_hash(workspace),
        data_card=_card(workspace),
        hyperparameters={
            **dataclasses.asdict(settings),
            "quantization": quantization,
            "packing": bool(trainer.args.packing),
            "base_model": base.spec,
        },
        libraries=library_versions(),
        loss_curve={"train": train_curve, "val": val_curve},
        device=device,
        processes=report.processes,
        peak_gpu_memory_bytes=peak_memory,
        version=report.version,
        parent=report.parent,
        added=added_by(workspace, plan),
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )
    with atomic_directory(versions.folder(report.version)) as folder:
        trainer.model.save_pretrained(folder, safe_serialization=True)
        base.tokenizer.save_pretrained(folder)
        seconds = time.perf_counter() - started
        report = dataclasses.replace(report, seconds=seconds)
        manifest.metrics = {
            "train_loss": report.train_loss,
            "val_loss": report.val_loss,
            "steps": report.steps,
            "epochs": report.epochs,
            "tokens": report.tokens,
            "tokens_per_second": round(report.tokens_per_second, 2),
            "seconds": round(seconds, 2),
            "resumed_from": report.resumed_from,
        }
        manifest.write(folder)
        plan.trained.write(folder)
        _plot_losses(manifest.loss_curve, folder / "loss.png", settings.adapter)
    kill_point("train:version-written")
    versions.use(report.version)
    kill_point("train:switched")
    versions.prune(settings.keep_versions)
    shutil.rmtree(partial, ignore_errors=True)
    process.wait_for_everyone()
    return report


def _trainer(
    base: BaseModel,
    config: TrainInputs,
    train_data: Any,
    val_data: Any,
    output: Path,
    progress: bool,
    *,
    targets: TeacherTargets | None = None,
    continued: bool = False,
) -> Any:
    import torch
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer  # type: ignore[attr-defined]

    from ragtune.train.base_model import disable_cpu_repacking
    from ragtune.train.progress_bar import loss_progress_callback

    trainer_class: Any = SFTTrainer
    distilling: dict[str, Any] = {}  # settings of a distilling run
    teacher: dict[str, Any] = {}  # and what its trainer is given
    if targets is not None:  # the datasets are tokenized here, the collator adds the teacher
        from ragtune.train.distill_trainer import DistillingTrainer, TeacherCollator

        trainer_class = DistillingTrainer
        distilling = {
            "dataset_kwargs": {"skip_prepare_dataset": True},
            "remove_unused_columns": False,
            "label_names": ["labels"],
        }
        teacher = {
            "data_collator": TeacherCollator(
                base.tokenizer.pad_token_id, targets, config.train.distill_top_k
            ),
            "objective": config.train.objective,
        }

    settings = config.train
    cuda = torch.cuda.is_available()
    packing = settings.packing == "yes" or (
        settings.packing == "auto"
        and getattr(base.model.config, "_attn_implementation", "") == "flash_attention_2"
    )
    arguments = SFTConfig(
        output_dir=str(output),
        num_train_epochs=settings.epochs_for(continued),
        max_steps=settings.max_steps,
        learning_rate=settings.lr,
        lr_scheduler_type="cosine",
        warmup_steps=settings.warmup_ratio,  # a float below 1 is a share of the steps
        max_grad_norm=settings.max_grad_norm,
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.grad_accum,
        max_length=settings.max_seq_len,
        packing=packing,
        completion_only_loss=True,
        eval_strategy="epoch" if val_data is not None else "no",
        save_strategy="steps",
        save_steps=checkpoint_interval(
            settings, len(train_data), _process_state().num_processes, update=continued
        ),
        save_total_limit=2,
        logging_steps=1,
        report_to="none",
        seed=settings.seed,
        data_seed=settings.seed,
        train_sampling_strategy="group_by_length" if settings.group_by_length else "random",
        use_cpu=not cuda,
        bf16=cuda and torch.cuda.is_bf16_supported(),
        gradient_checkpointing=False,
        include_num_input_tokens_seen="non_padding",
        disable_tqdm=not progress,
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False,  # LoRA uses every trainable weight in each step
        **distilling,
    )
    lora = LoraConfig(
        r=settings.lora_r,
        lora_alpha=settings.lora_alpha,
        lora_dropout=settings.lora_dropout,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )
    trainer = trainer_class(
        model=base.model,
        args=arguments,
        train_dataset=train_data,
        eval_dataset=val_data,
        processing_class=base.tokenizer,
        peft_config=None if continued else lora,
        **teacher,
    )
    disable_cpu_repacking(trainer.model)
    # TRL keeps QLoRA's adapter weights in bf16, where small updates round away (and a resumed
    # run reloads them as float32): train them in float32, as the base's compute dtype allows.
    for parameter in trainer.model.parameters():
        if parameter.requires_grad and parameter.dtype != torch.float32:
            parameter.data = parameter.data.float()
    from transformers import PrinterCallback, ProgressCallback

    trainer.add_callback(_checkpoint_kill_points())
    if progress:
        trainer.remove_callback(ProgressCallback)  # it prints a line of metrics every step
        trainer.add_callback(loss_progress_callback())
    else:
        trainer.remove_callback(PrinterCallback)  # it prints every log line without tqdm
    return trainer


def _checkpoint_kill_points() -> Any:
    """A callback that passes the kill tests' point ``train:checkpoint-<step>`` after each
    checkpoint is saved (`ragtune.stages.kill_point`)."""
    from transformers import TrainerCallback

    class CheckpointKillPoints(TrainerCallback):  # type: ignore[misc]
        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            kill_point(f"train:checkpoint-{state.global_step}")

    return CheckpointKillPoints()


def _datasets(workspace: Workspace, tokenizer: Any, records: Path) -> tuple[Any, Any]:
    """The training records (the file `records`) and the validation records as datasets of
    prompt and completion only, every prompt as the tuned model is asked (`_as_asked`)."""
    from datasets import load_dataset

    files = {"train": str(records)}
    has_val = workspace.val_path.is_file() and workspace.val_path.stat().st_size > 0
    if has_val:
        files["val"] = str(workspace.val_path)
    loaded = load_dataset("json", data_files=files)
    extra = [c for c in loaded["train"].column_names if c not in _RECORD_FIELDS]
    loaded = loaded.remove_columns(extra)
    as_asked = _as_asked(tokenizer)
    loaded = loaded.map(lambda record: {"prompt": as_asked(record["prompt"])})
    return loaded["train"], loaded["val"] if has_val else None


def _as_asked(tokenizer: Any) -> Callable[[list[Message]], list[Message]]:
    """A record's prompt as the tuned model is asked: opening with the memory's system message
    (`memory_messages`), folded into the question where `tokenizer`'s chat template refuses a
    system message."""
    from ragtune.llm.transformers_backend import accepts_system_message, without_system
    from ragtune.prompts import memory_messages

    if accepts_system_message(tokenizer):
        return memory_messages
    return lambda messages: without_system(memory_messages(messages))


def _distillation_datasets(
    workspace: Workspace, base: BaseModel, settings: Any, progress: bool, records_path: Path
) -> tuple[Any, Any, TeacherTargets]:
    """The train and validation records tokenized as the student reads them (prompt as
    `_datasets` gives it, answer tokens labelled, cut at `train.max_seq_len`), each with its
    index into the teacher's targets (the train records first, then the validation ones)."""
    from datasets import Dataset

    from ragtune.fileio import json_lines
    from ragtune.train.base_model import disable_cpu_repacking
    from ragtune.train.distill import TokenizedRecord, teacher_targets, tokenize_record

    as_asked = _as_asked(base.tokenizer)
    files = [records_path]
    if workspace.val_path.is_file() and workspace.val_path.stat().st_size > 0:
        files.append(workspace.val_path)
    records: list[TokenizedRecord] = []
    counts: list[int] = []
    for path in files:
        lines = path.read_text(encoding="utf-8").splitlines()
        found = 0
        for number, line in json_lines(path, lines):
            try:
                messages = as_asked(line["prompt"])
                question, completion = str(line["prompt"][-1]["content"]), line["completion"]
                sources = tuple(str(i) for i in line.get("source_ids", ()))
            except (KeyError, IndexError, TypeError, AttributeError):
                raise RagtuneError(
                    "is not a training record (it needs prompt and completion messages)",
                    path=path,
                    location=f"line {number}",
                ) from None
            prompt_ids, completion_ids = tokenize_record(base.tokenizer, messages, completion)
            records.append(TokenizedRecord(prompt_ids, completion_ids, question, sources))
            found += 1
        counts.append(found)
    units = {unit.id: unit for unit in read_text_units(workspace.text_units_path)}
    disable_cpu_repacking(base.model)  # before the teacher's first no-grad forward
    targets = teacher_targets(
        base.model,
        base.tokenizer,
        records,
        units,
        cache_dir=workspace.root / "cache",
        weights_sha256=base.weights_sha256,
        top_k=settings.distill_top_k,
        progress=progress,
    )
    rows = []
    for index, record in enumerate(records):
        ids = (record.prompt_ids + record.completion_ids)[: settings.max_seq_len]
        labels = [-100] * len(record.prompt_ids) + record.completion_ids
        rows.append({"input_ids": ids, "labels": labels[: len(ids)], "record": index})
    train = Dataset.from_list(rows[: counts[0]])
    val = Dataset.from_list(rows[counts[0] :]) if len(counts) > 1 else None
    return train, val, targets


def _continued(base: BaseModel, folder: Path) -> Any:
    """The base model with the adapter in `folder` loaded for further training (its own LoRA
    configuration: rank and targets are the parent's)."""
    from peft import PeftModel

    return PeftModel.from_pretrained(base.model, str(folder), is_trainable=True)


def checkpoint_interval(
    settings: Any, examples: int, processes: int = 1, *, update: bool = False
) -> int:
    """Steps between checkpoints: `train.checkpoint_steps`, or less in a short run, so that
    every run saves at least four checkpoints (a killed 30-step run keeps its work)."""
    per_step = settings.batch_size * settings.grad_accum * max(processes, 1)
    per_epoch = max(1, math.ceil(examples / per_step))
    planned = (
        settings.max_steps
        if settings.max_steps > 0
        else max(1, math.ceil(per_epoch * settings.epochs_for(update)))
    )
    return int(max(1, min(settings.checkpoint_steps, planned // 4)))


def _last_checkpoint(folder: Path) -> Path | None:
    checkpoints = [p for p in folder.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    if not checkpoints:
        return None
    return max(checkpoints, key=lambda p: int(p.name.split("-")[-1]))


def _tokens_seen(checkpoint: Path) -> int:
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return 0
    return int(state.get("num_input_tokens_seen", 0) or 0)


def check_training_data(path: Path) -> int:
    """How many training records the JSON Lines file `path` holds (0 if it is missing), each
    checked to be a TRL conversational prompt-completion record.

    Raises:
        RagtuneError: the file is not UTF-8, or a line is not JSON or not such a record,
            naming the file and line.
    """
    from ragtune.fileio import json_lines

    if not path.is_file():
        return 0
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise RagtuneError(
            f"is not UTF-8 text (byte {error.start}); run `ragtune synthesize` again", path=path
        ) from None
    count = 0
    for number, record in json_lines(path, text.splitlines()):
        if not _is_training_record(record):
            raise RagtuneError(
                'is not a training record: it needs "prompt" and "completion" lists of '
                '{"role", "content"} messages; run `ragtune synthesize` again',
                path=path,
                location=f"line {number}",
            )
        count += 1
    return count


def _is_training_record(record: Any) -> bool:
    if not isinstance(record, dict):
        return False
    for key in _RECORD_FIELDS:
        messages = record.get(key)
        if not isinstance(messages, list) or not messages:
            return False
        for message in messages:
            if not isinstance(message, dict) or not all(
                isinstance(message.get(part), str) for part in ("role", "content")
            ):
                return False
    return True


def _bitsandbytes_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("bitsandbytes") is not None


def _corpus_hash(workspace: Workspace) -> str:
    units = (
        read_text_units(workspace.text_units_path) if workspace.text_units_path.is_file() else []
    )
    return content_hash(*(unit.id for unit in units), length=64)


def _card(workspace: Workspace) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(workspace.card_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return data


def _process_state() -> Any:
    """accelerate's `PartialState` of this process, set up before the model loads.

    Under `accelerate launch` (or torchrun) it joins the process group (gloo on CPUs, nccl on
    GPUs) and makes this process's GPU the current one, so a quantized model loads onto it; in
    a plain process it is a one-process state. The trainer's arguments set it up again later,
    reusing the process group."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def _device_name(torch: Any) -> str:
    """This process's device: ``cpu``, or ``cuda:<index> (<GPU name>)``."""
    if torch.cuda.is_available():
        index = torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return "cpu"


def _plot_losses(curve: dict[str, list[list[float]]], path: Path, name: str) -> None:
    """Training and validation loss against the step, as a PNG."""
    from matplotlib.figure import Figure

    # A figure of its own (no pyplot): nothing global changes, the backend included.
    figure = Figure(figsize=(6, 4), dpi=100)
    axes = figure.subplots()
    for label, points in (("train", curve.get("train", [])), ("validation", curve.get("val", []))):
        if points:
            steps, losses = zip(*points, strict=True)
            axes.plot(steps, losses, marker="o" if label == "validation" else None, label=label)
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.set_title(f"adapter {name}")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
