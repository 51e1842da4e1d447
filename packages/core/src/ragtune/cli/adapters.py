"""`ragtune adapters`: list an adapter's versions and switch between them (roll back)."""

from __future__ import annotations

from pathlib import Path

import click

from ragtune.errors import RagtuneError


def parse_version(text: str) -> int:
    """``v3`` or ``3`` → 3.

    Raises:
        click.BadParameter: anything else.
    """
    digits = text.strip().removeprefix("v")
    if not digits.isdigit() or int(digits) < 1:
        raise click.BadParameter(f"{text!r} is not a version (like v3 or 3)")
    return int(digits)


@click.group()
def adapters() -> None:
    """List a memory's adapter versions, or switch to another (roll back or forward)."""


@adapters.command("list")
@click.argument("workspace", type=click.Path(path_type=Path))
@click.option("--adapter", default="default", show_default=True, help="The adapter's name.")
def list_versions(workspace: Path, adapter: str) -> None:
    """Show WORKSPACE's adapter versions, oldest first; * marks the one answering."""
    from ragtune.adapters import AdapterVersions
    from ragtune.workspace import Workspace

    versions = AdapterVersions(Workspace.at(workspace), adapter)
    found = versions.all()
    if not found:
        raise RagtuneError(f"has no adapter {adapter!r}; run `ragtune train`", path=workspace)
    click.echo("   version  parent  created               records  replayed  steps  val loss")
    for version in found:
        manifest = version.manifest
        added = manifest.added
        val = manifest.metrics.get("val_loss")
        click.echo(
            f"{'*' if version.current else ' '}  {version.label:<8} "
            f"{('v' + str(manifest.parent)) if manifest.parent else '-':<7} "
            f"{manifest.created or '-':<21} {added.get('records', '-')!s:>7}  "
            f"{added.get('replayed', '-')!s:>8}  {manifest.metrics.get('steps', '-')!s:>5}  "
            f"{f'{val:.3f}' if isinstance(val, float) else '-':>8}"
        )


@adapters.command("use")
@click.argument("workspace", type=click.Path(path_type=Path))
@click.argument("version")
@click.option("--adapter", default="default", show_default=True, help="The adapter's name.")
def use_version(workspace: Path, version: str, adapter: str) -> None:
    """Make VERSION (v2, or 2) of WORKSPACE's adapter the one that answers: one atomic switch;
    loaded models (MemoryModel, the integrations, `ragtune serve`) pick it up before their
    next answer."""
    from ragtune.adapters import AdapterVersions
    from ragtune.stages import workspace_lock
    from ragtune.workspace import Workspace

    space = Workspace.at(workspace)
    number = parse_version(version)
    with workspace_lock(space):
        versions = AdapterVersions(space, adapter)
        versions.repair(locked=True)
        before = versions.current()
        versions.use(number)
    click.echo(f"adapter {adapter!r} of {space.root}: v{before} → v{number}")
