"""Progress bars of the command line, drawn by tqdm: on stderr with a rate and the
time left, only on a terminal unless asked for (`--progress`), so that a redirected
or piped run prints nothing but its results."""

from __future__ import annotations

import sys
from typing import Any

MIN_INTERVAL = 0.1  # seconds between redraws (tqdm's default)


def progress_bar(total: float | None, unit: str, desc: str, enabled: bool | None = None) -> Any:
    """A tqdm bar (a context manager); `enabled` None: only when stderr is a terminal."""
    from tqdm import tqdm

    show = sys.stderr.isatty() if enabled is None else enabled
    # counts of events read best as 52.2k; a few partitions or queries as they are
    return tqdm(total=total, unit=unit, desc=desc, file=sys.stderr, disable=not show, unit_scale=unit == "event",
                dynamic_ncols=True, mininterval=MIN_INTERVAL, leave=False)


def advance_to(bar: Any, done: float, total: float | None = None) -> None:
    """Move `bar` to `done` (of `total`, when that is known only now)."""
    if total is not None and bar.total != total:
        bar.total = total
    bar.update(done - bar.n)
