"""`ragtune index`: build the memory index (entities, relationships, communities, reports)."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from ragtune.cli.options import (
    TEACHER,
    CliOptions,
    SettingOption,
    apply_setting_options,
    created_workspace,
    setting_options,
    workspace_arguments,
)
from ragtune.config import load_config, save_config, set_value
from ragtune.stages import stage

log = logging.getLogger("ragtune")


# Options that set one setting each.
_OPTIONS = (TEACHER, SettingOption("--extractor", "index.extractor"))


@click.command()
@workspace_arguments
@click.option(
    "--corpus",
    type=click.Path(path_type=Path),
    help="Ingest this corpus first (default: corpus.path of memory.yaml, if any).",
)
@setting_options(_OPTIONS)
@click.option(
    "--from-graphrag",
    "graphrag",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    help="Adopt the index in this Microsoft GraphRAG output folder instead of extracting.",
)
@click.pass_obj
def index(
    options: CliOptions,
    /,
    workspace: Path,
    overrides: tuple[str, ...],
    corpus: Path | None,
    graphrag: Path | None,
    **values: object,
) -> None:
    """Build the memory index of WORKSPACE: entities.parquet, relationships.parquet,
    communities.parquet and community_reports.parquet (GraphRAG's format).

    The corpus is ingested first when memory.yaml names one (or --corpus does), so documents
    added since the last run are picked up; only their text units are extracted. Re-running
    with unchanged inputs makes no teacher calls.
    """
    with created_workspace(workspace) as space:
        config = load_config(space.config_path, overrides)
        if corpus is not None:
            set_value(config, "corpus.path", str(corpus), where="--corpus")
        apply_setting_options(config, _OPTIONS, values)
        config.validate()

        if graphrag is not None:
            from ragtune.index.pipeline import adopt_graphrag_index

            with stage(space, "index"):
                report = adopt_graphrag_index(space, graphrag)
                save_config(config, space.config_path)
            click.echo(report.summary_line())
            return

        from ragtune.extras import require_extra
        from ragtune.index.pipeline import build_index
        from ragtune.ingestion import ingest

        require_extra("train", "graspologic_native", needed_for="ragtune index")  # before ingesting

        corpus_path = Path(config.corpus.path).expanduser() if config.corpus.path else None
        if corpus_path is not None and (corpus is not None or corpus_path.exists()):
            ingested = ingest(space, config, progress=options.progress, record_settings=False)
            set_value(config, "corpus.path", str(corpus_path.resolve()))  # as ingest saved it
            log.info(
                "ingested %d documents, %d text units", ingested.documents, ingested.text_units
            )
        elif corpus_path is not None and space.text_units_path.is_file():
            log.warning("corpus %s is gone; indexing the text units ingested before", corpus_path)
        with stage(space, "index"):  # the settings are saved with the index, if it succeeds
            report = build_index(space, config, progress=options.progress)
            save_config(config, space.config_path)
        click.echo(report.summary_line())
        if report.failures:
            click.echo(
                f"{report.failed_units} text units failed; see {space.index_summary_path} "
                f"(first: {report.failures[0][0]}: {report.failures[0][1]})",
                err=True,
            )
