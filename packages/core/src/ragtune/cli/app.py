"""The `ragtune` command group: global options, how errors reach the user, and the commands,
registered here one by one (importing a command module registers nothing by itself)."""

from __future__ import annotations

import logging
from typing import Any

import click

from ragtune import __version__
from ragtune.cli.adapters import adapters
from ragtune.cli.ask import ask, export
from ragtune.cli.evaluate import eval_command
from ragtune.cli.forget import forget
from ragtune.cli.index import index
from ragtune.cli.ingest import ingest
from ragtune.cli.options import CliOptions
from ragtune.cli.serve import serve
from ragtune.cli.synthesize import synthesize
from ragtune.cli.train import train
from ragtune.errors import RagtuneError, environment_error_line
from ragtune.logs import LOGGER, configure_cli_logging


class _ErrorReportingGroup(click.Group):
    """Reports user errors as one line (exit 1); tracebacks only with --debug."""

    def invoke(self, ctx: click.Context) -> Any:
        from tqdm.contrib.logging import logging_redirect_tqdm

        try:
            # Warnings go through tqdm, so they print on their own line above a progress bar.
            with logging_redirect_tqdm(loggers=[logging.getLogger(LOGGER)]):
                return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as error:
            if ctx.params.get("debug"):
                raise
            environment = environment_error_line(error) if isinstance(error, OSError) else None
            if isinstance(error, RagtuneError):
                click.echo(f"error: {error}", err=True)
            elif environment is not None:
                click.echo(f"error: {environment}", err=True)
            else:
                click.echo(
                    f"error: unexpected {error.__class__.__name__}: {error} — a bug in ragtune; "
                    "please report it with the traceback of `ragtune --debug ...`",
                    err=True,
                )
            ctx.exit(1)


@click.group(cls=_ErrorReportingGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ragtune")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or warnings.")
@click.pass_context
def cli(ctx: click.Context, debug: bool, quiet: bool) -> None:
    """ragtune: give a small LLM a memory of your corpus, with no retrieval at answer time.

    A memory lives in a workspace folder; each command reads it and writes its own files.
    Settings come from WORKSPACE/memory.yaml and KEY=VALUE overrides (like chunking.size=300).
    """
    configure_cli_logging(debug=debug, quiet=quiet)
    ctx.obj = CliOptions(debug=debug, quiet=quiet)


#: The commands, in the order a memory is built and used.
COMMANDS = (
    ingest,
    index,
    synthesize,
    train,
    adapters,
    forget,
    ask,
    serve,
    export,
    eval_command,
)
for _command in COMMANDS:
    cli.add_command(_command)


def main() -> None:
    """Run the `ragtune` command."""
    cli(prog_name="ragtune")
