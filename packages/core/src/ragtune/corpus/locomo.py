"""LoCoMo conversations (snap-research/locomo): one document per session.

Turns are rendered ``Speaker: text`` one per line; a shared image adds its BLIP caption. The
session date becomes the document timestamp and each turn keeps its `dia_id`, so a text unit can
be traced to the turns that LoCoMo's QA `evidence` cites.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ragtune.corpus.reading import read_text_file
from ragtune.corpus.types import Document, Turn
from ragtune.errors import CorpusError

_SESSION_KEY = re.compile(r"session_(\d+)")
_DATE_FORMAT = "%I:%M %p on %d %B, %Y"


def looks_like_locomo(data: object) -> bool:
    """Whether parsed JSON has LoCoMo's shape: a list of objects of which some have a
    `conversation` (the loader then names any record that is bad)."""
    records = data if isinstance(data, list) else [data]
    return any(isinstance(r, dict) and "conversation" in r for r in records)


def parse_locomo_date(text: str) -> str:
    """``"1:56 pm on 8 May, 2023"`` → ``"2023-05-08T13:56:00"``.

    Raises:
        ValueError: the text is not in LoCoMo's date format.
    """
    return dt.datetime.strptime(text.strip(), _DATE_FORMAT).isoformat()


def load_locomo(path: Path) -> Iterator[Document]:
    """Yield one `Document` per session of every conversation in a LoCoMo JSON file."""
    try:
        data = json.loads(read_text_file(path))
    except json.JSONDecodeError as error:
        raise CorpusError(
            f"invalid JSON ({error.msg} at line {error.lineno}, column {error.colno})", path=path
        ) from None
    records = data if isinstance(data, list) else [data]
    for number, record in enumerate(records, start=1):
        yield from _sessions(record, path, number)


def _sessions(record: Any, path: Path, number: int) -> Iterator[Document]:
    if not isinstance(record, dict):
        raise CorpusError("expected a conversation object", path=path, location=f"record {number}")
    sample_id = record.get("sample_id")
    where = f"record {number}" + (f" ({sample_id})" if isinstance(sample_id, str) else "")
    if not isinstance(sample_id, str) or not sample_id:
        raise CorpusError('has no "sample_id"', path=path, location=where)
    conversation = record.get("conversation")
    if not isinstance(conversation, dict):
        raise CorpusError('has no "conversation" object', path=path, location=where)
    speakers = [conversation.get("speaker_a"), conversation.get("speaker_b")]
    for key, name in zip(("speaker_a", "speaker_b"), speakers, strict=True):
        if not isinstance(name, str) or not name:
            raise CorpusError(f"conversation has no {key!r}", path=path, location=where)
    numbers = sorted(int(m.group(1)) for key in conversation if (m := _SESSION_KEY.fullmatch(key)))
    if not numbers:
        raise CorpusError(
            "conversation has no sessions (session_1, ...)", path=path, location=where
        )
    for session in numbers:
        turns = conversation[f"session_{session}"]
        if not isinstance(turns, list):
            raise CorpusError(
                f"session_{session} is not a list of turns", path=path, location=where
            )
        if turns:
            yield _session_document(conversation, session, turns, sample_id, speakers, path, where)


def _session_document(
    conversation: dict[str, Any],
    session: int,
    raw_turns: list[Any],
    sample_id: str,
    speakers: list[Any],
    path: Path,
    where: str,
) -> Document:
    date_key = f"session_{session}_date_time"
    date_text = conversation.get(date_key)
    if not isinstance(date_text, str):
        raise CorpusError(f"session_{session} has no {date_key!r}", path=path, location=where)
    try:
        timestamp = parse_locomo_date(date_text)
    except ValueError:
        raise CorpusError(
            f"{date_key} {date_text!r} is not like '1:56 pm on 8 May, 2023'",
            path=path,
            location=where,
        ) from None
    lines: list[str] = []
    turns: list[Turn] = []
    offset = 0
    for index, raw in enumerate(raw_turns, start=1):
        turn_where = f"session_{session} turn {index}"
        if not isinstance(raw, dict):
            raise CorpusError(f"{turn_where} is not an object", path=path, location=where)
        for field in ("speaker", "dia_id", "text"):
            if not isinstance(raw.get(field), str):
                raise CorpusError(f"{turn_where} has no {field!r}", path=path, location=where)
        line = f"{raw['speaker']}: {raw['text'].strip()}"
        caption = raw.get("blip_caption")
        if isinstance(caption, str) and caption.strip():
            line += f" [shares an image: {caption.strip()}]"
        turns.append(
            Turn(id=raw["dia_id"], speaker=raw["speaker"], start=offset, end=offset + len(line))
        )
        lines.append(line)
        offset += len(line) + 1
    text = "\n".join(lines)
    source = f"{path.name}#{sample_id}/session_{session}"
    return Document(
        id=Document.make_id(source, text),
        title=f"{sample_id} session {session} ({date_text})",
        text=text,
        source=source,
        timestamp=timestamp,
        metadata={
            "sample_id": sample_id,
            "session": session,
            "speakers": list(speakers),
            "date_time": date_text,
        },
        turns=tuple(turns),
    )
