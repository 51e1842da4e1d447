"""`ragtune train`: tune the synthesized memory into a LoRA adapter (adapters/<name>/)."""

from __future__ import annotations

from pathlib import Path

import click

from ragtune.cli.adapters import parse_version
from ragtune.cli.options import (
    CliOptions,
    SettingOption,
    apply_setting_options,
    setting_options,
    workspace_arguments,
)
from ragtune.config import load_config, save_config
from ragtune.stages import stage
from ragtune.workspace import Workspace

# Options that set one `train.*` value.
_SETTINGS = tuple(
    SettingOption(flag, f"train.{flag[2:].replace('-', '_')}")
    for flag in (
        "--base-model",
        "--adapter",
        "--quantization",
        "--epochs",
        "--max-steps",
        "--lr",
        "--batch-size",
        "--grad-accum",
        "--max-seq-len",
        "--objective",
        "--replay",
        "--update-epochs",
    )
)


@click.command()
@workspace_arguments
@click.option("--resume", is_flag=True, help="Continue an interrupted run from its checkpoint.")
@click.option(
    "--update",
    is_flag=True,
    help="Continue the current adapter version on the records it was not trained on (plus a "
    "--replay share of those it was) instead of training from the base model.",
)
@click.option(
    "--from",
    "parent",
    metavar="VERSION",
    callback=lambda _context, _option, value: None if value is None else parse_version(value),
    help="With --update: the version to continue (v2 or 2; default the current one).",
)
@setting_options(_SETTINGS)
@click.pass_obj
def train(
    options: CliOptions,
    /,
    workspace: Path,
    overrides: tuple[str, ...],
    resume: bool,
    update: bool,
    parent: int | None,
    **values: object,
) -> None:
    """Train a LoRA adapter (QLoRA 4-bit by default) on WORKSPACE's synthesized data: a new
    version of adapters/<name>/ with the adapter (safetensors), the tokenizer and its chat
    template, manifest.json and a plot of the loss curves.

    The new version appears only when training finished, beside the earlier ones (`ragtune
    adapters list`, `ragtune adapters use` to roll back); an interrupted run keeps its
    checkpoints, and --resume continues from the last one.
    """
    if parent is not None and not update:
        raise click.UsageError("--from needs --update")
    space = Workspace.at(workspace)
    config = load_config(space.config_path, overrides)
    apply_setting_options(config, _SETTINGS, values)
    config.validate()

    from ragtune.train.trainer import train_adapter

    with stage(space, "train"):  # the settings are saved when the adapter is written
        report = train_adapter(
            space,
            config,
            resume=resume,
            progress=options.progress,
            update=update,
            parent=parent,
        )
        if not report.main_process:
            return  # under DDP the main process saves the settings and reports the run
        save_config(config, space.config_path)
    click.echo(report.summary_line())
    click.echo(f"wrote {report.adapter} (now version v{report.version})")
