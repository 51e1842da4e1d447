"""Reading corpus files as text, with one clear error per unreadable file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from ragtune.errors import CorpusError


def read_text_file(path: Path, *, shown_as: str | None = None) -> str:
    """Read `path` as UTF-8 text (a BOM is allowed), refusing binary files.

    Raises:
        CorpusError: the file cannot be read, is binary, or is not UTF-8.
    """
    shown = shown_as or str(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        reason = error.strerror or error.__class__.__name__
        raise CorpusError(f"cannot read the file ({reason})", path=shown) from None
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
