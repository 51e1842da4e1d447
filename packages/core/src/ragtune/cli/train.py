"""`ragtune train`: tune the synthesized memory into a LoRA adapter (adapters/<name>/)."""

from __future__ import annotations

from pathlib import Path

import click

from ragtune.cli.app import (
    CliOptions,
    SettingOption,
    apply_setting_options,
    cli,
    setting_options,
    workspace_arguments,
)
from ragtune.config import load_config, save_config
from ragtune.workspace import Workspace

# Options that set one `train.*` value.
_SETTINGS = (
    SettingOption(
        "--base-model", "train.base_model", str, "The model spec to tune (default: model)."
    ),
    SettingOption("--adapter", "train.adapter", str, "Name of the adapter folder."),
    SettingOption(
        "--quantization",
        "train.quantization",
        click.Choice(["auto", "4bit", "8bit", "none"]),
        "4bit (QLoRA), 8bit or none; auto is 4bit.",
    ),
    SettingOption("--epochs", "train.epochs", float, "Passes over the training data."),
    SettingOption("--max-steps", "train.max_steps", int, "Stop after this many optimizer steps."),
    SettingOption("--lr", "train.lr", float, "Peak learning rate."),
    SettingOption("--batch-size", "train.batch_size", int, "Examples per step and device."),
    SettingOption("--grad-accum", "train.grad_accum", int, "Steps whose gradients add up."),
    SettingOption("--max-seq-len", "train.max_seq_len", int, "Longest example in tokens."),
)


@cli.command()
@workspace_arguments
@click.option("--resume", is_flag=True, help="Continue an interrupted run from its checkpoint.")
@setting_options(_SETTINGS)
@click.pass_obj
def train(
    options: CliOptions,
    /,
    workspace: Path,
    overrides: tuple[str, ...],
    resume: bool,
    **values: object,
) -> None:
    """Train a LoRA adapter (QLoRA 4-bit by default) on WORKSPACE's synthesized data:
    adapters/<name>/ with the adapter (safetensors), the tokenizer and its chat template,
    manifest.json and a plot of the loss curves.

    The adapter appears only when training finished; an interrupted run keeps its
    checkpoints, and --resume continues from the last one.
    """
    space = Workspace.at(workspace)
    config = load_config(space.config_path, overrides)
    apply_setting_options(config, _SETTINGS, values)
    config.validate()

    from ragtune.train.trainer import train_adapter

    report = train_adapter(space, config, resume=resume, progress=options.progress)
    if not report.main_process:
        return  # under DDP the main process saves the settings and reports the run
    save_config(config, space.config_path)
    click.echo(report.summary_line())
    click.echo(f"wrote {report.adapter}")
