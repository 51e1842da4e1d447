"""Progress bars for long work (tqdm on stderr), silenced with `enabled=False`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress_bar(
    items: Iterable[T],
    *,
    desc: str,
    total: int | None = None,
    unit: str = "it",
    enabled: bool = True,
) -> Iterator[T]:
    """Iterate over `items`, showing a progress bar on stderr when `enabled` and stderr is a
    terminal (redirected output stays free of carriage-return noise)."""
    if not enabled:
        yield from items
        return
    from tqdm.auto import tqdm

    with tqdm(
        items, desc=desc, total=total, unit=unit, dynamic_ncols=True, leave=False, disable=None
    ) as bar:
        yield from bar
