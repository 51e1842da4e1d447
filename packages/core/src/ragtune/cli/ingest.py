"""`ragtune ingest`: read a corpus into a workspace's documents and text units."""

from __future__ import annotations

from pathlib import Path

import click

from ragtune.cli.options import (
    CliOptions,
    SettingOption,
    apply_setting_options,
    created_workspace,
    setting_options,
    workspace_arguments,
)
from ragtune.config import load_config, set_value

# `--format` sets `corpus.format` (its choices and help are the setting's).
_OPTIONS = (SettingOption("--format", "corpus.format"),)


@click.command()
@workspace_arguments
@click.option(
    "--corpus",
    type=click.Path(path_type=Path),
    help="A folder of .txt/.md files, a JSONL file or a LoCoMo JSON file "
    "(default: corpus.path of memory.yaml).",
)
@setting_options(_OPTIONS)
@click.pass_obj
def ingest(
    options: CliOptions,
    /,
    workspace: Path,
    overrides: tuple[str, ...],
    corpus: Path | None,
    **values: object,
) -> None:
    """Read a corpus into WORKSPACE: documents.parquet and text_units.parquet.

    Documents are cut into text units of chunking.size tokens (default 500) overlapping by
    chunking.overlap (default 100), counted with the model's tokenizer.
    """
    from ragtune.ingestion import ingest as run_ingest

    with created_workspace(workspace) as space:
        config = load_config(space.config_path, overrides)
        if corpus is not None:
            set_value(config, "corpus.path", str(corpus), where="--corpus")
        apply_setting_options(config, _OPTIONS, values)
        report = run_ingest(space, config, progress=options.progress)
        click.echo(
            f"ingested {report.documents} documents into {report.text_units} text units "
            f"({report.tokens} tokens) in {report.seconds:.1f} s -> {space.root}"
        )
