"""`ragtune forget`: remove documents from a memory for real (`ragtune.forgetting`)."""

from __future__ import annotations

from pathlib import Path

import click

from ragtune.cli.options import CliOptions, workspace_arguments


@click.command()
@workspace_arguments
@click.option(
    "--document",
    "documents",
    multiple=True,
    metavar="ID",
    help="A document id (doc-…, column id of documents.parquet); repeatable.",
)
@click.option(
    "--source",
    "sources",
    multiple=True,
    metavar="PATH",
    help="A source (column source of documents.parquet: notes/trip.md, or "
    "locomo.json#conv-30/session_3); a file selects all its documents; repeatable.",
)
@click.option(
    "--no-retrain",
    is_flag=True,
    help="Leave the adapter as it is (forget the same documents again without this flag to "
    "retrain it and delete the versions that saw them).",
)
@click.pass_obj
def forget(
    options: CliOptions,
    /,
    workspace: Path,
    overrides: tuple[str, ...],
    documents: tuple[str, ...],
    sources: tuple[str, ...],
    no_retrain: bool,
) -> None:
    """Forget documents of WORKSPACE: remove them, their text units, the graph mentions and
    training records that came only from them, their cached teacher responses and RAG points,
    and make the adapter one whose weights never saw them (the newest earlier version that did
    not, updated with what came after it; or a new training). Ingesting the corpus again leaves
    them out (forgotten.json). Ends by checking that no file of the workspace holds their
    text."""
    if not documents and not sources:
        raise click.UsageError("name the documents to forget: --document ID or --source PATH")
    from ragtune.config import load_config
    from ragtune.forgetting import forget as forget_documents
    from ragtune.workspace import Workspace

    space = Workspace.at(workspace)
    config = load_config(space.config_path, overrides)
    config.validate()
    report = forget_documents(
        space,
        config,
        documents=documents,
        sources=sources,
        retrain=not no_retrain,
        progress=options.progress,
    )
    for line in report.summary_lines():
        click.echo(line)
    if report.leftovers:
        raise click.ClickException("the removed text is still in the files named above")
