"""The `ragtune` command group: global options and how errors reach the user."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from ragtune import __version__
from ragtune.config import MemoryConfig, set_value
from ragtune.errors import RagtuneError

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class CliOptions:
    """Options every subcommand sees (as `ctx.obj`)."""

    debug: bool
    quiet: bool

    @property
    def progress(self) -> bool:
        """Whether to show progress bars."""
        return not self.quiet


class _ErrorReportingGroup(click.Group):
    """Reports user errors as one line (exit 1); tracebacks only with --debug."""

    def invoke(self, ctx: click.Context) -> Any:
        from tqdm.contrib.logging import logging_redirect_tqdm

        try:
            # Warnings go through tqdm, so they print on their own line above a progress bar.
            with logging_redirect_tqdm(loggers=[logging.getLogger("ragtune")]):
                return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as error:
            if ctx.params.get("debug"):
                raise
            if isinstance(error, RagtuneError):
                click.echo(f"error: {error}", err=True)
            else:
                click.echo(
                    f"error: unexpected {error.__class__.__name__}: {error} "
                    "(run `ragtune --debug ...` for the traceback)",
                    err=True,
                )
            ctx.exit(1)


class _LowercaseLevel(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


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
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LowercaseLevel())
    root = logging.getLogger("ragtune")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.ERROR if quiet else logging.WARNING)
    root.propagate = False
    ctx.obj = CliOptions(debug=debug, quiet=quiet)


def workspace_arguments(command: F) -> F:
    """The WORKSPACE argument and the KEY=VALUE setting overrides every stage command takes."""
    command = click.argument("overrides", nargs=-1, metavar="[KEY=VALUE]...")(command)
    return click.argument("workspace", type=click.Path(path_type=Path))(command)


@dataclass(frozen=True)
class SettingOption:
    """A command-line option that sets one setting of `memory.yaml` (``--lr`` → ``train.lr``).

    Attributes:
        flag: The option (``--max-steps``).
        setting: The dotted setting it sets.
        type: The click type of its value.
        help: What it means.
    """

    flag: str
    setting: str
    type: Any
    help: str

    @property
    def name(self) -> str:
        """The keyword the command function receives it as."""
        return self.flag.lstrip("-").replace("-", "_")


#: The `--teacher` option of the stages that can use a teacher.
TEACHER = SettingOption(
    "--teacher", "teacher", str, "The teacher model spec (default: teacher of memory.yaml)."
)


def setting_options(options: Sequence[SettingOption]) -> Callable[[F], F]:
    """Decorate a command with `options`; `apply_setting_options` applies what was given."""

    def decorate(command: F) -> F:
        for option in reversed(options):
            command = click.option(
                option.flag,
                option.name,
                type=option.type,
                help=f"{option.help} ({option.setting})",
            )(command)
        return command

    return decorate


def apply_setting_options(
    config: MemoryConfig, options: Sequence[SettingOption], values: Mapping[str, Any]
) -> None:
    """Set each setting whose option was given (in `values`, by keyword) on `config`.

    Raises:
        ConfigError: a value is invalid for its setting.
    """
    for option in options:
        value = values.get(option.name)
        if value is not None:
            set_value(config, option.setting, str(value), where=option.flag)


def main() -> None:
    """Run the `ragtune` command."""
    from ragtune.cli import ask, evaluate, index, ingest, synthesize, train  # noqa: F401  (registers them)

    cli(prog_name="ragtune")
