"""The extraction journal: each finished text unit's extraction, appended as it completes.

A run that is killed keeps every batch it finished; the next run reads them back and extracts
only the units still missing (or added since). Entries carry the extractor's fingerprint, so a
different teacher, prompt or setting starts afresh. A torn last line (a kill mid-write) is
ignored.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from ragtune.fileio import atomic_write_text
from ragtune.index.types import UnitExtraction

log = logging.getLogger(__name__)


class ExtractionJournal:
    """Saved extractions in a JSON-lines file.

    Args:
        path: The journal file (a workspace's `cache/extractions.jsonl`).
        fingerprint: The extractor's fingerprint; entries with another one are ignored.
    """

    def __init__(self, path: Path, fingerprint: str) -> None:
        self.path = path
        self.fingerprint = fingerprint

    def load(self) -> dict[str, UnitExtraction]:
        """The saved extractions of this extractor, by text unit id."""
        saved: dict[str, UnitExtraction] = {}
        if not self.path.is_file():
            return saved
        with self.path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                try:
                    record = json.loads(line)
                    if record.get("extractor") != self.fingerprint:
                        continue
                    extraction = UnitExtraction.from_json(record)
                except (ValueError, KeyError, TypeError):
                    log.debug("%s: line %d: unreadable, ignored", self.path, number)
                    continue
                saved[extraction.text_unit_id] = extraction
        return saved

    def append(self, extractions: Iterable[UnitExtraction]) -> None:
        """Save `extractions` durably (written and synced before returning)."""
        text = "".join(
            json.dumps({"extractor": self.fingerprint, **e.to_json()}, ensure_ascii=False) + "\n"
            for e in extractions
        )
        if not text:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        torn = (
            self.path.is_file()
            and self.path.stat().st_size > 0
            and not _ends_with_newline(self.path)
        )
        with self.path.open("a", encoding="utf-8") as journal:
            journal.write(("\n" if torn else "") + text)
            journal.flush()
            os.fsync(journal.fileno())

    def compact(self, extractions: Sequence[UnitExtraction]) -> None:
        """Rewrite the journal to hold exactly `extractions` (atomically)."""
        atomic_write_text(
            self.path,
            "".join(
                json.dumps({"extractor": self.fingerprint, **e.to_json()}, ensure_ascii=False)
                + "\n"
                for e in extractions
            ),
        )


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as journal:
        journal.seek(-1, os.SEEK_END)
        return journal.read(1) == b"\n"
