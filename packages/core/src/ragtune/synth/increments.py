"""What a synthesis run changes: new records for new or changed units and facts, the earlier
run's other records kept byte-identical, and those whose sources are gone retired.

A run's fresh records are compared with the files the last run wrote (when it ran with the same
settings, writer and teacher — `synth/state.json` records them and the units it saw). Records
are compared by their deduplication key (`key`: the question they ask):

- an earlier record is **broken** when one of its source units is gone (removed, or changed: a
  changed unit has a new id); what it taught of the units that remain must be taught again
  without the gone ones, so for each of those units and the broken record's kind (a person's
  profile, an entity's questions, ...) this run's records decide: they are **drawn anew**. So
  are records without a source unit (unanswerable questions, drawn from the whole memory: one
  no longer drawn may restate what was removed, or have become answerable);
- a fresh record is **new** when one of its source units is new, or when it is drawn anew and
  is not a copy of an earlier record that stands (one asking its question);
- an earlier record is **retired** when it is broken, when a new record asks its question (the
  fact changed), or when it is drawn anew and this run no longer writes its question;
  otherwise it is **kept**, its line copied as it was, in the file it was in;
- a fresh record from earlier units only that is not drawn anew and that the earlier run did
  not write (the same units phrased anew because something elsewhere changed) is **left
  out** and counted: the earlier records of those units already teach them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragtune.fileio import atomic_write_text, json_lines
from ragtune.hashing import canonical_json, content_hash
from ragtune.synth.records import QARecord

#: Bumped when the records a setting produces change without the settings changing.
_FORMAT = 1


@dataclass
class EarlierRun:
    """The records the last synthesis run wrote, with the units it saw."""

    fingerprint: str
    units: frozenset[str]
    train: list[tuple[str, QARecord]] = field(default_factory=list)
    val: list[tuple[str, QARecord]] = field(default_factory=list)


@dataclass
class Changes:
    """The records of a run against the earlier one."""

    train: list[tuple[str, QARecord]]
    val: list[tuple[str, QARecord]]
    new: int = 0
    kept: int = 0
    retired: int = 0
    left_out: int = 0

    def to_json(self) -> dict[str, int]:
        """The counts the dataset card reports."""
        return {
            "new": self.new,
            "kept": self.kept,
            "retired": self.retired,
            "left_out": self.left_out,
        }


def settings_fingerprint(settings: Any, writer: str, teacher: str | None) -> str:
    """What decides which records a unit gives: the `synth.*` settings, writer and teacher."""
    from dataclasses import asdict

    return content_hash(canonical_json([_FORMAT, asdict(settings), writer, teacher or ""]))


def read_earlier(
    state: Path, train: Path, val: Path, read: Callable[[Path], list[tuple[str, QARecord]]]
) -> EarlierRun | None:
    """The last run's records and state, or None when there is none to build on (no state
    file: the first run, or files written before runs were incremental)."""
    try:
        data = json.loads(state.read_text(encoding="utf-8"))
        fingerprint, units = str(data["fingerprint"]), frozenset(map(str, data["units"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not train.is_file():
        return None
    return EarlierRun(fingerprint, units, read(train), read(val) if val.is_file() else [])


def read_lines(path: Path) -> list[tuple[str, QARecord]]:
    """Each record of a `train.jsonl`/`val.jsonl` file with its line as written."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [
        (lines[number - 1], QARecord.from_json(value, where=f"{path}, line {number}"))
        for number, value in json_lines(path, lines)
    ]


def write_state(path: Path, fingerprint: str, units: Sequence[str]) -> None:
    """Record the settings' fingerprint and the units this run saw."""
    text = json.dumps({"fingerprint": fingerprint, "units": sorted(units)}, indent=0)
    atomic_write_text(path, text + "\n")


def merge(
    earlier: EarlierRun | None,
    fresh_train: Sequence[QARecord],
    fresh_val: Sequence[QARecord],
    units: frozenset[str],
    line: Callable[[QARecord], str],
    key: Callable[[QARecord], tuple[str, str]],
) -> Changes:
    """The records to write (see the module's docstring). Without an earlier run, every fresh
    record is new."""
    if earlier is None:
        return Changes(
            [(line(r), r) for r in fresh_train],
            [(line(r), r) for r in fresh_val],
            new=len(fresh_train) + len(fresh_val),
        )
    added_units = units - earlier.units
    earlier_records = [record for _, record in [*earlier.train, *earlier.val]]
    broken = {
        id(record)
        for record in earlier_records
        if any(unit not in units for unit in record.source_ids)
    }
    affected = {  # (unit, kind): what a broken record taught of a unit that remains
        (unit, record.kind)
        for record in earlier_records
        if id(record) in broken
        for unit in record.source_ids
        if unit in units
    }
    standing_keys = {key(r) for r in earlier_records if id(r) not in broken}
    fresh_keys = {key(r) for r in [*fresh_train, *fresh_val]}

    def drawn_anew(record: QARecord) -> bool:
        """Whether this run's records of its kind decide what stays (see the docstring)."""
        return not record.source_ids or any(
            (unit, record.kind) in affected for unit in record.source_ids
        )

    def is_new(record: QARecord) -> bool:
        if any(unit in added_units for unit in record.source_ids):
            return True
        if key(record) in standing_keys:
            return False  # a copy of an earlier record (kept, unless a new one asks it)
        return drawn_anew(record)

    new_train = [r for r in fresh_train if is_new(r)]
    new_val = [r for r in fresh_val if is_new(r)]
    new_keys = {key(r) for r in [*new_train, *new_val]}

    def keeps(record: QARecord) -> bool:
        if id(record) in broken or key(record) in new_keys:
            return False
        return not drawn_anew(record) or key(record) in fresh_keys

    kept_train = [(text, r) for text, r in earlier.train if keeps(r)]
    kept_val = [(text, r) for text, r in earlier.val if keeps(r)]
    kept = len(kept_train) + len(kept_val)
    kept_keys = {key(r) for _, r in [*kept_train, *kept_val]}
    left_out = sum(  # (fresh copies of kept records are not left out: they are kept)
        1 for r in [*fresh_train, *fresh_val] if not is_new(r) and key(r) not in kept_keys
    )
    return Changes(
        [*kept_train, *((line(r), r) for r in new_train)],
        [*kept_val, *((line(r), r) for r in new_val)],
        new=len(new_train) + len(new_val),
        kept=kept,
        retired=len(earlier.train) + len(earlier.val) - kept,
        left_out=left_out,
    )
