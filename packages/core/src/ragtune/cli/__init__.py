"""The `ragtune` command."""

from ragtune.cli.app import cli, main

__all__ = ["cli", "main"]
