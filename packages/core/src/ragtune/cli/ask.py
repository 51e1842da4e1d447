"""`ragtune ask` and `ragtune export`: use the tuned model."""

from __future__ import annotations

from pathlib import Path

import click

from ragtune.cli.options import CliOptions


@click.command()
@click.argument("workspace", type=click.Path(path_type=Path))
@click.argument("question")
@click.option("--adapter", default="default", show_default=True, help="The adapter to use.")
@click.option("--max-new-tokens", default=256, show_default=True, type=click.IntRange(min=1))
@click.option("--temperature", default=0.0, show_default=True, type=click.FloatRange(min=0))
@click.option(
    "--recall",
    "recall",
    type=click.IntRange(min=0),
    default=0,
    help="Also show up to this many source passages the model recalls for the question.",
)
@click.option("--stream/--no-stream", default=True, help="Print the answer as it is generated.")
@click.pass_obj
def ask(
    options: CliOptions,
    workspace: Path,
    question: str,
    adapter: str,
    max_new_tokens: int,
    temperature: float,
    recall: int,
    stream: bool,
) -> None:
    """Answer QUESTION from the memory tuned into WORKSPACE's adapter, with no retrieval."""
    from ragtune.model import MemoryModel
    from ragtune.progress import library_progress

    with library_progress(options.progress):
        model = MemoryModel.from_workspace(workspace, adapter)
    if stream:
        for piece in model.stream(question, max_new_tokens=max_new_tokens, temperature=temperature):
            click.echo(piece, nl=False)
        click.echo()
    else:
        click.echo(model.answer(question, max_new_tokens=max_new_tokens, temperature=temperature))
    if recall:
        for number, found in enumerate(model.recall(question, recall), start=1):
            when = f", {found.timestamp}" if found.timestamp else ""
            click.echo(f"\n[{number}] {found.source}{when} (match {found.score:.2f})")
            click.echo(found.text)


@click.command()
@click.argument("workspace", type=click.Path(path_type=Path))
@click.option(
    "--merged",
    "target",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Write the base model with the adapter merged in here (safetensors).",
)
@click.option("--adapter", default="default", show_default=True, help="The adapter to merge.")
@click.pass_obj
def export(options: CliOptions, workspace: Path, target: Path, adapter: str) -> None:
    """Write WORKSPACE's base model with its adapter merged in, loadable by plain
    transformers (`AutoModelForCausalLM.from_pretrained(DIR)`)."""
    from ragtune.model.export import export_merged
    from ragtune.progress import library_progress

    with library_progress(options.progress):
        folder = export_merged(workspace, target, adapter=adapter)
    click.echo(f"wrote {folder}")
