"""Atomic writes (a file or folder appears complete under its final name, or not at all), disk
usage, and JSON Lines reading with errors that name the line."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ragtune.errors import RagtuneError


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `target`; rename it onto `target` if the block succeeds.

    The temporary file lives in the same folder, so the final `os.replace` is atomic and a
    killed process never leaves a half-written `target` (the old one, if any, stays intact).
    While a stage runs (`ragtune.stages.stage`), a write to one of its outputs goes to its
    staging folder instead, to be published with the stage's other outputs.
    """
    from ragtune.stages import note_direct_write, staged_target

    shown = Path(target)
    staged = staged_target(shown)
    target = staged or shown
    with _naming(shown):
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
    tmp = Path(name)
    try:
        with _naming(shown):
            yield tmp
            tmp.chmod(0o666 & ~_umask())  # mkstemp makes owner-only files; give the usual mode
            tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    if staged is None:
        note_direct_write(target)


@contextlib.contextmanager
def _naming(target: Path) -> Iterator[None]:
    """Give an `OSError` raised in the block without a file name (a full disk while writing)
    the name of the file being written, `target`."""
    try:
        yield
    except OSError as error:
        if error.filename is not None or error.errno is None:
            raise
        raise OSError(
            error.errno, error.strerror or os.strerror(error.errno), str(target)
        ) from error


def atomic_write_text(target: str | Path, text: str) -> None:
    """Write `text` (UTF-8) to `target` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


@contextlib.contextmanager
def atomic_directory(target: str | Path, *, replace: bool = False) -> Iterator[Path]:
    """Yield a temporary folder next to `target`; rename it to `target` if the block succeeds.

    If `target` exists by then: with `replace`, it is moved aside and removed once the new
    folder is in place (readers see the old folder or the new one, never a half-written one);
    without, the new folder is dropped and the existing one kept (another process finished
    first, with the same content by construction).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(target, ".tmp")
    try:
        yield tmp
        tmp.chmod(0o777 & ~_umask())
        for path in tmp.rglob("*"):  # files that libraries made owner-only get the usual mode
            if path.is_file() and not path.is_symlink() and not path.stat().st_mode & 0o077:
                path.chmod(0o666 & ~_umask())
        old = None
        if replace and target.exists():
            old = _sibling(target, ".old")
            target.rename(old / target.name)
        try:
            tmp.rename(target)
        except OSError:
            if not target.is_dir():
                raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _sibling(target: Path, suffix: str) -> Path:
    """A new hidden temporary folder next to `target`."""
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent))


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def disk_usage(path: str | Path, pattern: str = "*") -> int:
    """Bytes the files matching `pattern` under `path` (or the file `path`) take on disk:
    allocated blocks, so sparse, preallocated files count what they really use."""
    root = Path(path)
    files = [root] if root.is_file() else [p for p in root.rglob(pattern) if p.is_file()]
    return sum(_allocated(p) for p in files)


def _allocated(path: Path) -> int:
    stat = path.stat()
    blocks = getattr(stat, "st_blocks", None)
    return min(stat.st_size, blocks * 512) if blocks is not None else stat.st_size


def json_lines(
    path: Path, lines: Iterable[str], *, error: type[RagtuneError] = RagtuneError
) -> Iterator[tuple[int, Any]]:
    """The (line number, value) of each non-blank line of the JSON Lines file `path`, whose
    `lines` are given.

    Raises:
        RagtuneError: (or `error`) a line is not JSON, naming the file, line and column.
    """
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as problem:
            raise error(
                f"invalid JSON ({problem.msg} at column {problem.colno})",
                path=path,
                location=f"line {number}",
            ) from None
