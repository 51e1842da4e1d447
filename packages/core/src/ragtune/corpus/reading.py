"""Reading corpus files as text, with one clear error per unreadable file."""

from __future__ import annotations

import datetime as dt
import errno
import stat
from pathlib import Path

from ragtune.errors import CorpusError


def read_text_file(path: Path, *, shown_as: str | None = None) -> str:
    """Read `path` as UTF-8 text (a BOM is allowed), refusing binary files.

    Raises:
        CorpusError: the file cannot be read, is binary, or is not UTF-8.
    """
    shown = shown_as or str(path)
    check_readable(path, shown_as=shown, folder_ok=False)
    try:
        data = path.read_bytes()
    except OSError as error:
        reason = error.strerror or error.__class__.__name__
        raise CorpusError(f"cannot read the file ({reason})", path=shown) from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or _looks_like_utf16(data):
        raise CorpusError("UTF-16 text; convert it to UTF-8 first", path=shown)
    if b"\x00" in data:
        raise CorpusError("binary file (it contains NUL bytes), not text", path=shown)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        bad = data[error.start : error.start + 1].hex()
        raise CorpusError(
            f"not UTF-8 text (invalid byte 0x{bad} at offset {error.start}); "
            "convert it to UTF-8 first",
            path=shown,
        ) from None


def _looks_like_utf16(data: bytes) -> bool:
    """Whether `data` (without a byte order mark) reads as UTF-16 text: NUL bytes in every
    other position of its start, and the rest decodes."""
    head = data[:4096]
    if len(head) < 4 or len(head) % 2:
        return False
    for zeros, encoding in ((head[1::2], "utf-16-le"), (head[0::2], "utf-16-be")):
        if zeros.count(0) >= 0.9 * len(zeros):
            try:
                data.decode(encoding)
            except UnicodeDecodeError:
                return False
            return True
    return False


_KINDS = {
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def check_readable(path: Path, *, shown_as: str | None = None, folder_ok: bool = True) -> None:
    """Check that `path` is a regular file (or, with `folder_ok`, a folder) before anything
    opens it: a named pipe or device would block a read forever.

    Raises:
        CorpusError: it is missing, a symbolic link loop, or not a regular file.
    """
    shown = shown_as or str(path)
    try:
        mode = path.stat().st_mode
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise CorpusError("is a symbolic link loop", path=shown) from None
        if error.errno == errno.ENOENT:
            if path.is_symlink():
                raise CorpusError("is a symbolic link to a missing file", path=shown) from None
            raise CorpusError("no such file or folder", path=shown) from None
        reason = error.strerror or error.__class__.__name__
        raise CorpusError(f"cannot read it ({reason})", path=shown) from None
    if stat.S_ISREG(mode) or (folder_ok and stat.S_ISDIR(mode)):
        return
    kind = "a folder" if stat.S_ISDIR(mode) else _KINDS.get(stat.S_IFMT(mode), "not a file")
    raise CorpusError(f"is {kind}, not a regular file; a corpus holds only files", path=shown)


def normalize_timestamp(value: object) -> str:
    """An ISO 8601 string for a date, datetime or ISO-formatted string.

    Raises:
        ValueError: `value` is not a date or an ISO 8601 string.
    """
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day).isoformat()
    if isinstance(value, str):
        text = value.strip()
        try:
            return normalize_timestamp(dt.datetime.fromisoformat(text.replace("Z", "+00:00")))
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not an ISO 8601 date or time (like 2024-03-01T09:30:00)")
