"""`ragtune serve`: tuned memories behind one OpenAI-compatible HTTP server."""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path

import click

from ragtune.cli.options import CliOptions

logger = logging.getLogger(__name__)


def _split(argument: str) -> tuple[str | None, Path]:
    """``NAME=WORKSPACE`` or ``WORKSPACE``."""
    name, equals, path = argument.partition("=")
    if equals and name and "/" not in name:
        return name, Path(path)
    return None, Path(argument)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command()
@click.argument("workspaces", nargs=-1, required=True, metavar="[NAME=]WORKSPACE...")
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--api-keys",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A file of API keys and the memories each may read (else $RAGTUNE_API_KEYS; "
    "neither: no key needed).",
)
@click.option("--adapter", default="default", show_default=True, help="The adapter to serve.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, ...")
@click.option(
    "--engine",
    type=click.Choice(["transformers", "llama.cpp"]),
    default="transformers",
    show_default=True,
    help="What generates: transformers (PEFT adapters; any base model, CPU or GPU) or "
    "llama.cpp (the embedded model's GGUF with LoRA GGUF adapters, on the CPU; needs the "
    "llamacpp extra).",
)
@click.option(
    "--max-tokens",
    default=512,
    show_default=True,
    type=click.IntRange(1, 32768),
    help="The most tokens one answer may ask for.",
)
@click.option(
    "--max-body-bytes",
    default=1_000_000,
    show_default=True,
    type=click.IntRange(1024, 1 << 30),
    help="The largest request body accepted.",
)
@click.option(
    "--batch-size",
    default=8,
    show_default=True,
    type=click.IntRange(1, 256),
    help="The most waiting requests for one memory answered together (1: no batching).",
)
@click.option(
    "--shutdown-timeout",
    default=30.0,
    show_default=True,
    type=click.FloatRange(0, 3600),
    help="Seconds in-flight requests may take to finish once asked to stop.",
)
@click.pass_obj
def serve(
    options: CliOptions,
    workspaces: tuple[str, ...],
    host: str,
    port: int,
    api_keys: Path | None,
    adapter: str,
    device: str,
    engine: str,
    max_tokens: int,
    max_body_bytes: int,
    batch_size: int,
    shutdown_timeout: float,
) -> None:
    """Serve each WORKSPACE's memory over OpenAI's chat completions API.

    All memories share one base model in memory; a request's `model` picks one: NAME (the
    workspace folder's name unless given as NAME=WORKSPACE), NAME:hybrid (the memory with
    retrieved passages), or the base model's own name. Stop with Ctrl-C or SIGTERM: requests in
    flight finish first.
    """
    from ragtune.extras import require_extra

    require_extra("serve", needed_for="ragtune serve")
    if engine == "llama.cpp":
        require_extra("llamacpp", needed_for="ragtune serve --engine llama.cpp")
    import uvicorn

    from ragtune.progress import library_progress
    from ragtune.serve import ApiKeys, MemoryShelf, ServeSettings, create_app

    keys = ApiKeys.load(api_keys)
    pairs = [_split(argument) for argument in workspaces]
    with library_progress(options.progress):
        shelf = MemoryShelf.load(
            [path for _, path in pairs],
            names=[name for name, _ in pairs],
            adapter=adapter,
            device=device,
            keys=keys,
            engine=engine,
        )
    if keys is None and not _loopback(host):
        click.echo(
            f"warning: serving on {host} without API keys: whoever reaches the port reads every "
            "memory (give --api-keys)",
            err=True,
        )
    click.echo(
        f"base model {shelf.base_name}: {shelf.base_resident_bytes / 2**20:,.0f} MiB resident",
        err=True,
    )
    for memory in shelf.memories.values():
        grown = (
            f", +{memory.resident_bytes / 2**20:,.1f} MiB resident"
            if memory.resident_bytes is not None
            else ""
        )
        click.echo(
            f"memory {memory.name}: {memory.found.workspace.root} "
            f"(adapter {memory.adapter_bytes / 2**20:,.1f} MiB{grown})",
            err=True,
        )
    app = create_app(
        shelf,
        keys=keys,
        settings=ServeSettings(
            max_body_bytes=max_body_bytes, max_tokens_cap=max_tokens, batch_size=batch_size
        ),
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning" if options.quiet else "info",
        timeout_graceful_shutdown=int(shutdown_timeout),
        access_log=not options.quiet,
    )
    click.echo(
        f"serving on http://{host}:{port}/v1 (models: {', '.join(shelf.model_ids())})", err=True
    )
    uvicorn.Server(config).run()
