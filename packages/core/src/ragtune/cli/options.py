"""What the stage commands share: the global options they see, the WORKSPACE and KEY=VALUE
arguments, and options that set one setting of `memory.yaml` — each taking its type and help
from the dataclass field it sets, so the option and the setting cannot drift apart."""

from __future__ import annotations

import contextlib
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import click

from ragtune.config import MemoryConfig, set_value, setting_field
from ragtune.workspace import Workspace

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


@contextlib.contextmanager
def created_workspace(path: Path) -> Iterator[Workspace]:
    """The workspace at `path`, created if missing — and removed again if the command fails
    before writing anything into it (a failed run leaves no empty workspace behind)."""
    existed = path.expanduser().exists()
    space = Workspace.at(path, create=True)
    try:
        yield space
    except BaseException:
        if not existed and space.root.is_dir() and not any(space.root.iterdir()):
            space.root.rmdir()
        raise


def workspace_arguments(command: F) -> F:
    """The WORKSPACE argument and the KEY=VALUE setting overrides every stage command takes."""
    command = click.argument("overrides", nargs=-1, metavar="[KEY=VALUE]...")(command)
    return click.argument("workspace", type=click.Path(path_type=Path))(command)


@dataclass(frozen=True)
class SettingOption:
    """A command-line option that sets one setting of `memory.yaml` (``--lr`` → ``train.lr``);
    its value type and help text are the setting's.

    Attributes:
        flag: The option (``--max-steps``).
        setting: The dotted setting it sets.
    """

    flag: str
    setting: str

    @property
    def name(self) -> str:
        """The keyword the command function receives it as."""
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def type(self) -> Any:
        """The click type of its value, from the setting's declared type."""
        return click_type(setting_field(self.setting)[0])

    @property
    def help(self) -> str:
        """The setting's help text, and which setting the option sets."""
        kind, text = setting_field(self.setting)
        listed = " Comma-separated." if _is_list(kind) else ""
        return f"{text}{listed} (sets {self.setting})"


def click_type(kind: Any) -> Any:
    """The click type that reads a value of the setting type `kind` (``int``, ``float``,
    ``str``, ``bool``, a ``Literal`` of choices, ``list[str]`` as comma-separated text, any of
    them ``| None``)."""
    options = [
        option
        for option in (typing.get_args(kind) if isinstance(kind, types.UnionType) else (kind,))
        if option is not type(None)
    ]
    if len(options) != 1:
        raise TypeError(f"no command-line type for the setting type {kind!r}")
    (option,) = options
    if typing.get_origin(option) is Literal:
        return click.Choice([str(choice) for choice in typing.get_args(option)])
    if _is_list(option):
        return str
    if option in (int, float, str, bool):
        return option
    raise TypeError(f"no command-line type for the setting type {kind!r}")


def _is_list(kind: Any) -> bool:
    return typing.get_origin(kind) is list


#: The `--teacher` option of the stages that can use a teacher.
TEACHER = SettingOption("--teacher", "teacher")


def setting_options(options: Sequence[SettingOption]) -> Callable[[F], F]:
    """Decorate a command with `options`; `apply_setting_options` applies what was given."""

    def decorate(command: F) -> F:
        for option in reversed(options):
            command = click.option(option.flag, option.name, type=option.type, help=option.help)(
                command
            )
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
