"""The dataset card (`synth/card.json`): what the synthesis produced and dropped, and how."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ragtune.synth.records import QARecord


@dataclass
class DatasetCard:
    """What one synthesis run wrote.

    Attributes:
        train: Records in `synth/train.jsonl`.
        val: Records in `synth/val.jsonl`.
        kinds: Records per kind, as ``{kind: {"train": n, "val": n}}``.
        scopes: Records per query scope, likewise.
        facts: Distinct facts (records sharing a `fact_id` are paraphrases of one).
        tokens: Prompt and completion tokens of all records (the tuned model's tokenizer), as
            ``{"prompt": n, "completion": n, "total": n, "counted_in": "tokens"}`` (``"words"``
            when that tokenizer is not available locally).
        dropped: Candidates dropped, as ``{reason: {kind: n}}`` (reasons: ``ungrounded``,
            ``duplicate question``, ``malformed teacher output``, ...).
        skipped: Strategies that did not run, with why.
        strategies: The strategies that ran, with their records (before filtering) and seconds.
        writer: ``"llm"`` or ``"heuristic"``.
        teacher: The teacher's model, calls (repairs included), cache hits and tokens.
        split: ``"paraphrase"`` or ``"source"``, with `val_fraction` and `seed`.
        units: Text units in the memory, and how many are a source of a training record.
        changes: Against the last run (`ragtune.synth.increments`): records ``new`` (for new
            or changed units and facts), ``kept`` (byte-identical), ``retired`` (their sources
            are gone or their fact changed) and ``left_out`` (unchanged units phrased anew);
            ``settings_changed`` when the settings differ and everything was written anew.
        seconds: Wall time.
    """

    train: int = 0
    val: int = 0
    kinds: dict[str, dict[str, int]] = field(default_factory=dict)
    scopes: dict[str, dict[str, int]] = field(default_factory=dict)
    facts: int = 0
    tokens: dict[str, Any] = field(default_factory=dict)
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    strategies: dict[str, dict[str, float]] = field(default_factory=dict)
    writer: str = "heuristic"
    teacher: dict[str, Any] = field(default_factory=dict)
    split: dict[str, Any] = field(default_factory=dict)
    units: dict[str, int] = field(default_factory=dict)
    changes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def records(self) -> int:
        """Records in both files."""
        return self.train + self.val

    def _changes(self) -> str:
        if not self.changes:
            return ""
        return (
            f"{self.changes.get('new', 0)} new, {self.changes.get('kept', 0)} kept, "
            f"{self.changes.get('retired', 0)} retired; "
        )

    def to_json(self) -> dict[str, Any]:
        """The card as JSON (what `card.json` holds)."""
        return {"records": self.records, **asdict(self)}

    def summary_line(self) -> str:
        """The one-line summary `ragtune synthesize` prints."""
        kinds = ", ".join(
            f"{kind} {sum(sides.values())}" for kind, sides in self.kinds.items() if sides
        )
        dropped = sum(n for reasons in self.dropped.values() for n in reasons.values())
        return (
            f"synthesized {self.records} records ({self.train} train, {self.val} val; "
            f"{self.facts} facts) with the {self.writer} writer: {kinds or 'none'}; "
            f"{dropped} dropped; {self._changes()}{self.tokens.get('total', 0)} tokens; "
            "teacher calls "
            f"{self.teacher.get('calls', 0)}; {self.seconds:.1f} s"
        )


def count_by(
    train: Sequence[QARecord], val: Sequence[QARecord], attribute: str
) -> dict[str, dict[str, int]]:
    """Records per value of `attribute` (kind or query_scope), in train and val."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"train": 0, "val": 0})
    for side, records in (("train", train), ("val", val)):
        for value, n in Counter(getattr(r, attribute) for r in records).items():
            counts[value][side] = n
    return dict(sorted(counts.items()))
