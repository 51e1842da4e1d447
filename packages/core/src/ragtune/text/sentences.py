"""A text unit cut into sentences, each with who said it and where it sits in the unit.

Conversation units are read turn by turn ("Caroline: ..."), and an image a speaker shared
("[shares an image: a photo of ...]") becomes a sentence of its own; prose is read paragraph
by paragraph (lines wrapped at a fixed width are joined, headings and list items stand alone).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ragtune.corpus.types import TextUnit

_TURN = re.compile(r"^(?P<speaker>[^:\n]{1,60}):\s+(?P<body>.*)$")
_IMAGE = re.compile(r"\[shares an image: (?P<caption>[^\]]*)\]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")
_ABBREVIATION = re.compile(r"\b(?:Dr|Mr|Mrs|Ms|Prof|St|Jr|Sr|vs|etc|e\.g|i\.e)\.$", re.IGNORECASE)
_BLOCK_START = re.compile(r"^(?:#{1,6}\s|[-*+]\s|\d+[.)]\s|>)")


@dataclass(frozen=True)
class Sentence:
    """One sentence of a text unit.

    Attributes:
        text: The sentence (an image becomes "(Shared an image: <caption>.)").
        speaker: Who said it, in a conversation; else None.
        start: Offset in the unit's text of the line the sentence comes from.
        caption: The caption, when the sentence stands for a shared image; else None.
    """

    text: str
    speaker: str | None
    start: int
    caption: str | None = None


def unit_sentences(unit: TextUnit) -> list[Sentence]:
    """The sentences of `unit`, in order."""
    result = []
    for line, start in _logical_lines(unit):
        body, speaker = line, None
        match = _TURN.match(body) if unit.speakers else None
        if match and match.group("speaker") in unit.speakers:
            speaker, body = match.group("speaker"), match.group("body")
        for text in split_sentences(_IMAGE.sub("", body).strip()):
            result.append(Sentence(text, speaker, start))
        for image in _IMAGE.finditer(body):
            caption = image.group("caption").strip()
            result.append(Sentence(f"(Shared an image: {caption}.)", speaker, start, caption))
    return result


def split_sentences(text: str) -> list[str]:
    """`text` cut after ., ! or ? followed by space, except after abbreviations ("Dr.")."""
    sentences: list[str] = []
    for piece in _SENTENCE_END.split(text):
        if sentences and _ABBREVIATION.search(sentences[-1]):
            sentences[-1] = f"{sentences[-1]} {piece}"
        elif piece.strip():
            sentences.append(piece.strip())
    return sentences


def _logical_lines(unit: TextUnit) -> list[tuple[str, int]]:
    """The unit's lines with their offsets: a conversation's turns as they are; in prose, the
    lines of a paragraph joined (notes are often wrapped at a fixed width), headings and list
    items on their own, markdown markers removed."""
    lines: list[tuple[str, int]] = []
    offset = 0
    for raw in unit.text.splitlines(keepends=True):
        stripped = raw.strip()
        lines.append((stripped, offset + len(raw) - len(raw.lstrip())))
        offset += len(raw)
    if unit.speakers:
        return [(line, start) for line, start in lines if line]
    joined: list[tuple[str, int]] = []
    previous_blank = True
    for line, start in lines:
        if not line:
            previous_blank = True
            continue
        block = _BLOCK_START.match(line)
        text = line[block.end() :].strip() if block else line
        if block or previous_blank or not joined or joined[-1][0].endswith(":"):
            joined.append((text, start))
        else:
            joined[-1] = (f"{joined[-1][0]} {text}", joined[-1][1])
        previous_blank = bool(block) and line.startswith("#")
    return [(line, start) for line, start in joined if line]
