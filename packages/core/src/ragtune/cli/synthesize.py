"""`ragtune synthesize`: the training data (synth/train.jsonl, val.jsonl, card.json)."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from ragtune.cli.options import (
    TEACHER,
    CliOptions,
    SettingOption,
    apply_setting_options,
    setting_options,
    workspace_arguments,
)
from ragtune.config import load_config, save_config
from ragtune.stages import stage
from ragtune.workspace import Workspace

log = logging.getLogger("ragtune")

# Options that set one `synth.*` setting each.
_OPTIONS = (
    TEACHER,
    SettingOption("--writer", "synth.writer"),
    SettingOption("--strategies", "synth.strategies"),
    SettingOption("--split", "synth.split"),
    SettingOption("--per-entity", "synth.entity_templates.per_entity"),
    SettingOption("--per-relationship", "synth.relationship_templates.per_relationship"),
    SettingOption("--per-unit", "synth.text_units.per_unit"),
    SettingOption("--per-community", "synth.global_qa.per_community"),
    SettingOption("--paraphrases", "synth.text_units.paraphrases"),
    SettingOption("--seed", "synth.seed"),
)


@click.command()
@workspace_arguments
@setting_options(_OPTIONS)
@click.pass_obj
def synthesize(
    options: CliOptions,
    /,
    workspace: Path,
    overrides: tuple[str, ...],
    **values: object,
) -> None:
    """Synthesize question/answer training data from the index of WORKSPACE, following RAG
    principles: synth/train.jsonl and synth/val.jsonl (TRL conversational prompt-completion
    records with kind, query_scope and source_ids) and synth/card.json.

    Every answer comes from its sources: the grounding filter drops answers their source
    units do not support, and the card counts what was dropped and why. The same index and
    settings give the same files; teacher answers are cached in the workspace.
    """
    space = Workspace.at(workspace)
    config = load_config(space.config_path, overrides)
    apply_setting_options(config, _OPTIONS, values)
    config.validate()

    from ragtune.synth.pipeline import synthesize as run

    with stage(space, "synthesize"):  # the settings are saved with the data, if it succeeds
        card = run(space, config, progress=options.progress)
        save_config(config, space.config_path)
    click.echo(card.summary_line())
    click.echo(f"wrote {space.train_path}, {space.val_path} and {space.card_path}")
    for name, why in card.skipped.items():
        log.warning("skipped %s: %s", name, why)
