"""Errors that ragtune reports to its users in their words.

Every error a user can cause (bad input, a missing model, a bad setting) is a `RagtuneError`;
the CLI prints it as one line and exits non-zero without a traceback unless `--debug`.
"""

from __future__ import annotations

import errno
from pathlib import Path


class RagtuneError(Exception):
    """An error caused by input, settings or environment, reported as one clear line.

    Args:
        message: What is wrong, in the user's words.
        path: The file the problem is in, if any.
        location: Where in that file: ``"line 7"``, ``"record 2 (conv-41)"``.
    """

    def __init__(self, message: str, *, path: str | Path | None = None, location: str = "") -> None:
        self.message = message
        self.path = str(path) if path is not None else None
        self.location = location
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ": ".join(part for part in (self.path, self.location) if part)
        return f"{where}: {self.message}" if where else self.message


class CorpusError(RagtuneError):
    """A corpus file or record cannot be read as a document."""


class ConfigError(RagtuneError):
    """A setting in `memory.yaml` or on the command line is unknown or invalid."""


class ModelNotAvailableError(RagtuneError):
    """A model, or a package it needs, is not installed; the message says how to install it."""


class MissingExtraError(RagtuneError):
    """A command or function needs an optional part of ragtune (an extra: ``train``, ``eval``)
    that is not installed; the message names the extra, the missing module and the
    ``pip install`` to run (`ragtune.extras.require_extra`).

    Attributes:
        extra: The extra to install.
        missing: The modules of that extra that were not found.
    """

    def __init__(self, message: str, *, extra: str, missing: tuple[str, ...]) -> None:
        self.extra = extra
        self.missing = missing
        super().__init__(message)


class BackendError(RagtuneError):
    """A model backend failed to answer (server error, context overflow, ...)."""


class ContextLengthError(BackendError):
    """A prompt plus the tokens asked for do not fit the model's context window."""


class StructuredOutputError(BackendError):
    """The model's answer did not match the requested JSON schema, even after repair attempts."""


def yaml_error_summary(error: Exception, *, first_line: int = 1) -> tuple[str, str]:
    """One-line problem and location (``"line 3"``) of a PyYAML error, whose own text spans
    several lines. `first_line` is the file line where the parsed YAML text begins."""
    problem = getattr(error, "problem", None) or error.__class__.__name__
    mark = getattr(error, "problem_mark", None)
    location = f"line {mark.line + first_line}" if mark is not None else ""
    return str(problem), location


#: What to tell a user about a file-system error they can fix, by errno.
_ENVIRONMENT_ERRORS = {
    errno.ENOSPC: "no space left on the device; free some space and run the command again",
    errno.EDQUOT: "disk quota exceeded; free some space and run the command again",
    errno.EROFS: "the file system is read-only; put the workspace on a writable disk",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a part of this path is a file, not a folder",
    errno.ELOOP: "a symbolic link loop",
    errno.ENAMETOOLONG: "the file name is too long",
    errno.EMFILE: "too many open files; raise the limit (ulimit -n) and run again",
}


def environment_error_line(error: OSError) -> str | None:
    """One line for a file-system error the user can fix (a full disk, a read-only file
    system, a permission), naming the file; None for other errors."""
    advice = _ENVIRONMENT_ERRORS.get(error.errno or -1)
    if advice is None:
        return None
    where = error.filename if error.filename is not None else ""
    return f"{where}: {advice}" if where else advice
