"""The declared range of a numeric setting, and the check that every section runs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ragtune.errors import ConfigError

#: The largest count any setting accepts: beyond it a value is a typo, not a memory.
MAX_COUNT = 10_000_000
#: Seeds are 32-bit.
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class Range:
    """The values a numeric setting accepts: from `low` to `high` (open ends excluded), or one
    of `also` (a special value such as -1 for "no limit").

    Args:
        low: The least value (None: no bound).
        high: The greatest value (None: no bound).
        low_open: `low` itself is excluded.
        high_open: `high` itself is excluded.
        also: Values accepted outside the range, with what they mean.
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    also: tuple[tuple[float, str], ...] = ()

    def admits(self, value: float) -> bool:
        """Whether `value` is accepted."""
        if any(value == special for special, _ in self.also):
            return True
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return not (
            self.high is not None and (value > self.high or (self.high_open and value == self.high))
        )

    def __str__(self) -> str:
        parts = []
        if self.low is not None:
            low = _number(self.low)
            parts.append(f"above {low}" if self.low_open else f"at least {low}")
        if self.high is not None:
            parts.append(
                f"below {_number(self.high)}" if self.high_open else f"at most {_number(self.high)}"
            )
        text = " and ".join(parts)
        specials = ", ".join(f"{_number(value)} ({meaning})" for value, meaning in self.also)
        return f"{specials} or {text}" if specials else text


def counts(low: int = 1, high: int = MAX_COUNT) -> Range:
    """A whole number of things: at least `low` (1 by default), at most `high`."""
    return Range(low, high)


#: A share: from 0 to 1, both included.
SHARE = Range(0, 1)
#: A share below 1 (a fraction held out, a dropout).
FRACTION = Range(0, 1, high_open=True)
#: A seed.
SEED = Range(0, MAX_SEED)


def check_ranges(section: object, ranges: Mapping[str, Range], prefix: str) -> None:
    """Check each setting named in `ranges` (dotted, under `section`) against its range.

    Raises:
        ConfigError: a value is out of its range, naming the setting (`prefix` + name).
    """
    for dotted, allowed in ranges.items():
        value: Any = section
        for part in dotted.split("."):
            value = getattr(value, part)
        if not allowed.admits(value):
            raise ConfigError(f"{prefix}{dotted} must be {allowed}, got {value!r}")


def _number(value: float) -> str:
    if float(value).is_integer():
        return f"{int(value):,}" if abs(value) >= 10_000 else str(int(value))
    return str(value)
