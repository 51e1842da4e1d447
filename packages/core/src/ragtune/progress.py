"""Progress bars for long work (tqdm on stderr), silenced with `enabled=False`."""

from __future__ import annotations

import contextlib
import warnings
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


@contextlib.contextmanager
def library_progress(enabled: bool) -> Iterator[None]:
    """Without progress (`enabled=False`), hide the bars datasets and transformers draw
    themselves, and their warnings; restored afterwards. datasets comes with the ``train``
    extra: without it (the base install answers with a memory), only transformers' switch."""
    from transformers.utils import logging as transformers_logging

    switches = [
        (
            transformers_logging.is_progress_bar_enabled,
            transformers_logging.disable_progress_bar,
            transformers_logging.enable_progress_bar,
        ),
    ]
    try:
        from datasets.utils import logging as datasets_logging
    except ImportError:
        pass
    else:
        switches.append(
            (
                datasets_logging.is_progress_bar_enabled,
                datasets_logging.disable_progress_bar,
                datasets_logging.enable_progress_bar,
            )
        )
    turned_off = []
    if not enabled:
        for is_on, disable, enable in switches:
            if is_on():
                disable()
                turned_off.append(enable)
    try:
        with warnings.catch_warnings():
            if not enabled:
                warnings.simplefilter("ignore")
            yield
    finally:
        for enable in turned_off:
            enable()
