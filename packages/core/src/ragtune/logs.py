"""Logging: the `ragtune` logger's handler, which the command line sets up (the library itself
configures no logging), and a filter for one misleading warning of bitsandbytes."""

from __future__ import annotations

import logging
import sys

#: The logger every ragtune module writes to.
LOGGER = "ragtune"

_KERNELS_LOGGER = "bitsandbytes.backends.cpu.ops"


class _LowercaseLevel(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


def configure_cli_logging(*, debug: bool, quiet: bool) -> None:
    """What the `ragtune` command shows: its own messages on stderr as ``warning: ...``
    (debug messages with `debug`, errors only when `quiet`)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LowercaseLevel())
    logger = logging.getLogger(LOGGER)
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG if debug else logging.ERROR if quiet else logging.WARNING)
    logger.propagate = False


class _KernelsWarning(logging.Filter):
    """Drops bitsandbytes' warning that the `kernels` package is missing: installing it would
    fetch kernels from the Hugging Face hub at run time, and the CPU path works without it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "kernels" not in record.getMessage()


def hide_kernels_warning() -> None:
    """Filter bitsandbytes' missing-`kernels` warning (only that one) before a model library
    loads bitsandbytes; the other messages of its logger pass. Idempotent."""
    logger = logging.getLogger(_KERNELS_LOGGER)
    if not any(isinstance(f, _KernelsWarning) for f in logger.filters):
        logger.addFilter(_KernelsWarning())
