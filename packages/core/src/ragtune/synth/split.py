"""The train/validation split.

``paraphrase`` (the default) holds out one phrasing of some facts: validation then measures
whether the model recalls facts it was trained on when asked in words it has not seen — what a
memory must do. ``source`` holds out whole text units: no unit is a source of both files (a
record citing units on both sides is dropped and counted), which measures generalization to
unseen memories instead. Both are deterministic: a fact or unit goes to validation when a hash
of it and the seed falls below `val_fraction`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from ragtune.hashing import content_hash
from ragtune.synth.records import QARecord


@dataclass
class Split:
    """Records in each file, and those that fitted neither (``source`` split only)."""

    train: list[QARecord] = field(default_factory=list)
    val: list[QARecord] = field(default_factory=list)
    straddling: list[QARecord] = field(default_factory=list)


def split_records(
    records: Sequence[QARecord],
    *,
    mode: Literal["paraphrase", "source"],
    val_fraction: float,
    seed: int,
) -> Split:
    """`records` split into train and validation, each keeping the input order."""
    if mode == "source":
        return _by_source(records, val_fraction, seed)
    return _by_paraphrase(records, val_fraction, seed)


def held_out(key: str, val_fraction: float, seed: int) -> bool:
    """Whether `key` (a fact or unit id) goes to validation."""
    return int(content_hash(str(seed), key), 16) / 16**16 < val_fraction


def _by_paraphrase(records: Sequence[QARecord], val_fraction: float, seed: int) -> Split:
    groups: dict[str, list[int]] = defaultdict(list)
    for position, record in enumerate(records):
        groups[record.fact_id].append(position)
    to_val = set()
    for fact, positions in groups.items():
        if len(positions) > 1 and held_out(fact, val_fraction, seed):
            chosen = min(positions, key=lambda p: content_hash(str(seed), records[p].question))
            to_val.add(chosen)
    split = Split()
    for position, record in enumerate(records):
        (split.val if position in to_val else split.train).append(record)
    return split


def _by_source(records: Sequence[QARecord], val_fraction: float, seed: int) -> Split:
    split = Split()
    for record in records:
        if not record.source_ids:
            side = held_out(record.fact_id, val_fraction, seed)
            (split.val if side else split.train).append(record)
            continue
        sides = {held_out(unit_id, val_fraction, seed) for unit_id in record.source_ids}
        if sides == {True}:
            split.val.append(record)
        elif sides == {False}:
            split.train.append(record)
        else:
            split.straddling.append(record)
    return split
