"""Token-aware chunking of documents into text units (GraphRAG's 500 tokens, 100 overlap).

Windows are counted in tokens of the chosen model's tokenizer. A window's end moves back to the
last line or sentence end within its final fifth, and the next window's start moves forward to
the first such boundary within the first half of the overlap, so units rarely begin or end
mid-sentence while never exceeding `size` tokens or `overlap` tokens of overlap. Each unit's text
is the exact substring of the document between its first and last token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ragtune.corpus.types import Document, TextUnit
from ragtune.errors import ConfigError
from ragtune.progress import progress_bar

_SENTENCE_ENDS = frozenset(".!?\n")


class SpanTokenizer(Protocol):
    """Anything that splits text into tokens located by character offsets."""

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """The `(start, end)` character offsets of each token of `text`, in order."""
        ...


def check_chunking(size: int, overlap: int) -> None:
    """Raise `ConfigError` unless ``0 <= overlap < size``."""
    if size < 1:
        raise ConfigError(f"chunking.size must be at least 1 token, got {size}")
    if not 0 <= overlap < size:
        raise ConfigError(
            f"chunking.overlap must be at least 0 and below chunking.size ({size}), got {overlap}"
        )


def chunk_document(
    document: Document, tokenizer: SpanTokenizer, *, size: int = 500, overlap: int = 100
) -> list[TextUnit]:
    """Cut `document` into text units of at most `size` tokens overlapping by at most `overlap`."""
    check_chunking(size, overlap)
    text = document.text
    spans = [span for span in tokenizer.token_spans(text) if span[1] > span[0]]
    windows = _windows(_break_after(text, spans), size, overlap)
    return [
        _unit(document, index, start_char, end_char, n_tokens)
        for index, (start_char, end_char, n_tokens) in enumerate(
            _content_ranges(text, spans, windows)
        )
    ]


def chunk_documents(
    documents: Sequence[Document],
    tokenizer: SpanTokenizer,
    *,
    size: int = 500,
    overlap: int = 100,
    progress: bool = False,
) -> list[TextUnit]:
    """Chunk every document, in order."""
    check_chunking(size, overlap)
    units: list[TextUnit] = []
    for document in progress_bar(
        documents, desc="chunking", total=len(documents), unit="doc", enabled=progress
    ):
        units.extend(chunk_document(document, tokenizer, size=size, overlap=overlap))
    return units


def _break_after(text: str, spans: list[tuple[int, int]]) -> list[bool]:
    """Whether a line or sentence ends right after each token."""
    breaks = []
    for index, (_, end) in enumerate(spans):
        following = spans[index + 1][0] if index + 1 < len(spans) else len(text)
        breaks.append(text[end - 1] in _SENTENCE_ENDS or "\n" in text[end : following + 1])
    return breaks


def _windows(breaks: list[bool], size: int, overlap: int) -> list[tuple[int, int]]:
    """Token index ranges `[first, last)` of the units."""
    count = len(breaks)
    windows: list[tuple[int, int]] = []
    first = 0
    while first < count:
        last = min(first + size, count)
        if last < count:
            earliest = first + max(1, (size * 4) // 5)
            last = next((j for j in range(last, earliest, -1) if breaks[j - 1]), last)
        windows.append((first, last))
        if last >= count:
            break
        following = max(last - overlap, first + 1)
        snap_limit = min(last, following + overlap // 2)
        first = next((j for j in range(following, snap_limit) if breaks[j - 1]), following)
    return windows


def _content_ranges(
    text: str, spans: list[tuple[int, int]], windows: list[tuple[int, int]]
) -> list[tuple[int, int, int]]:
    """`(start_char, end_char, n_tokens)` of each window without the whitespace at its edges
    (byte-level BPE tokens carry their leading space), in order; a window that adds nothing to
    the one before it is dropped, and one that contains the one before it replaces it."""
    ranges: list[tuple[int, int, int]] = []
    for first, last in windows:
        while first < last and text[spans[first][0] : spans[first][1]].isspace():
            first += 1
        while last > first and text[spans[last - 1][0] : spans[last - 1][1]].isspace():
            last -= 1
        if first == last:
            continue
        raw_start, raw_end = spans[first][0], spans[last - 1][1]
        raw = text[raw_start:raw_end]
        start = raw_start + len(raw) - len(raw.lstrip())
        end = raw_end - (len(raw) - len(raw.rstrip()))
        if ranges and end <= ranges[-1][1]:
            continue
        if ranges and start <= ranges[-1][0]:
            ranges.pop()
        ranges.append((start, end, last - first))
    return ranges


def _unit(
    document: Document, index: int, start_char: int, end_char: int, n_tokens: int
) -> TextUnit:
    text = document.text[start_char:end_char]
    turns = [t for t in document.turns if t.start < end_char and t.end > start_char]
    return TextUnit(
        id=TextUnit.make_id(document.id, start_char, text),
        document_id=document.id,
        chunk_index=index,
        text=text,
        n_tokens=n_tokens,
        start_char=start_char,
        end_char=end_char,
        timestamp=document.timestamp,
        turn_ids=tuple(t.id for t in turns),
        speakers=tuple(dict.fromkeys(t.speaker for t in turns)),
    )
