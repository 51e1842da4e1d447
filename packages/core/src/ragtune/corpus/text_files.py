"""Plain-text and Markdown notes: one document per `.txt` / `.md` file."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from ragtune.corpus.reading import normalize_timestamp, read_text_file
from ragtune.corpus.types import Document
from ragtune.errors import CorpusError, yaml_error_summary

logger = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt", ".md", ".markdown")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)


def list_text_files(root: Path) -> list[Path]:
    """The text files under `root` (or `root` itself), sorted, hidden folders skipped."""
    if root.is_file():
        return [root]
    found = []
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.suffix.lower() in TEXT_SUFFIXES and not path.is_dir():
            found.append(path)
    return sorted(found)


def load_text_files(root: Path, files: list[Path] | None = None) -> Iterator[Document]:
    """Yield one `Document` per non-empty text file under `root`.

    Markdown front matter (``---`` YAML block) may give `title`, `date` (or `timestamp`) and
    any other metadata; otherwise the title is the first heading or the file name.
    """
    base = root if root.is_dir() else root.parent
    for path in files if files is not None else list_text_files(root):
        relative = path.relative_to(base).as_posix()
        raw = read_text_file(path, shown_as=str(path))
        meta, body = _split_front_matter(raw, path)
        text = body.strip()
        if not text:
            logger.warning("%s: empty file, skipped", path)
            continue
        title = str(meta.pop("title", "") or _first_heading(text) or path.stem)
        timestamp = _timestamp(meta, path)
        yield Document(
            id=Document.make_id(relative, text),
            title=title,
            text=text,
            source=relative,
            timestamp=timestamp,
            metadata=_json_safe(meta),
        )


def _split_front_matter(raw: str, path: Path) -> tuple[dict[str, Any], str]:
    match = _FRONT_MATTER.match(raw)
    if not match:
        return {}, raw
    try:
        meta = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as error:
        # The front matter starts on line 2, after the opening ---.
        problem, where = yaml_error_summary(error, first_line=2)
        raise CorpusError(
            f"invalid front matter YAML ({problem})", path=path, location=where
        ) from None
    if not isinstance(meta, dict):
        raise CorpusError("front matter must be a YAML mapping (key: value lines)", path=path)
    return {str(key): value for key, value in meta.items()}, raw[match.end() :]


def _timestamp(meta: dict[str, Any], path: Path) -> str | None:
    for key in ("timestamp", "date"):
        if key in meta:
            value = meta.pop(key)
            try:
                return normalize_timestamp(value)
            except ValueError as error:
                raise CorpusError(f"front matter {key!r}: {error}", path=path) from None
    return None


def _first_heading(text: str) -> str | None:
    match = _HEADING.search(text)
    return match.group(1).strip() if match else None


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
