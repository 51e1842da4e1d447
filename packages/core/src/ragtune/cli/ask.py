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
    "--format",
    "form",
    type=click.Choice(["merged", "peft", "gguf"]),
    default="merged",
    show_default=True,
    help="merged: the base model with the adapter merged in (safetensors, plain transformers); "
    "peft: the adapter as vLLM's --lora-modules loads it, with its base and chat template; "
    "gguf: base and adapter as GGUF for llama.cpp's --lora, with an Ollama Modelfile.",
)
@click.option(
    "--out",
    "target",
    type=click.Path(path_type=Path, file_okay=False),
    help="The folder to write (replaced if it exists).",
)
@click.option(
    "--merged",
    "merged_target",
    type=click.Path(path_type=Path, file_okay=False),
    help="Shorthand for --format merged --out DIR.",
)
@click.option("--adapter", default="default", show_default=True, help="The adapter to export.")
@click.option("--name", help="The memory's name in the engine's command (default: the folder's).")
@click.pass_obj
def export(
    options: CliOptions,
    workspace: Path,
    form: str,
    target: Path | None,
    merged_target: Path | None,
    adapter: str,
    name: str | None,
) -> None:
    """Write WORKSPACE's memory for other tools: merged into its base model (loadable by
    `AutoModelForCausalLM.from_pretrained(DIR)`), as a PEFT adapter folder that vLLM serves
    (`vllm serve DIR/base --enable-lora --lora-modules NAME=DIR/adapter`), or as GGUF files for
    llama.cpp (`llama-server -m DIR/base.gguf --lora DIR/adapter.gguf`) and Ollama
    (`ollama create NAME -f DIR/Modelfile`). DIR/README.md has the commands."""
    from ragtune.model.export import export_merged, export_peft
    from ragtune.model.gguf_export import export_gguf
    from ragtune.progress import library_progress

    if merged_target is not None:
        if target is not None or form != "merged":
            raise click.UsageError("--merged DIR is --format merged --out DIR: give one of them")
        target = merged_target
    if target is None:
        raise click.UsageError("give the folder to write: --out DIR")
    with library_progress(options.progress):
        if form == "peft":
            folder = export_peft(workspace, target, adapter=adapter, name=name)
        elif form == "gguf":
            folder = export_gguf(workspace, target, adapter=adapter, name=name).folder
        else:
            folder = export_merged(workspace, target, adapter=adapter)
    click.echo(f"wrote {folder}")
