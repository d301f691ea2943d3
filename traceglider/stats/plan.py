"""Which files answer a question: for a site and a range of dates, the compacted days
read as they are (events files, visits files) and the runs of days to sessionise
while reading (today's raw files, late files, days whose visits are not written yet).

Pure functions of a listing, so they are tested without storage. Visits are dated by
their start, so the visits of the day before the range are read too (a visit that
began at 23:50 has events in the range); a run continues the visits of the compacted
day before it and completes its visits with the events of the compacted day after.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date as Date
from datetime import datetime, timedelta

from traceglider.storage.layout import compacted_group, previous_date, up_to_date, visits_up_to_date


@dataclass(frozen=True)
class Run:
    """Consecutive days sessionised while reading."""
    dates: tuple[str, ...]
    keys: tuple[str, ...]  # every event file of those days
    carry: tuple[str, ...] = ()  # the compacted event files of the day before
    carry_since: str = ""  # the first of the run's dates (its midnight - 30 min: carried)
    next: tuple[str, ...] = ()  # the compacted event files of the day after

    @property
    def signature(self) -> str:
        return hashlib.sha256(repr((self.keys, self.carry, self.next)).encode()).hexdigest()[:16]


@dataclass
class Sources:
    event_files: list[str] = field(default_factory=list)  # compacted days inside the range
    visit_files: list[str] = field(default_factory=list)  # their visits, and the day before's
    runs: list[Run] = field(default_factory=list)
    signature: str = ""  # of every file read: the key of cached answers

    @property
    def fast(self) -> list[str]:
        """Event files read as they are."""
        return self.event_files

    @property
    def slow(self) -> list[str]:
        """Event files sessionised while reading."""
        return [k for run in self.runs for k in run.keys]


@dataclass
class Listing:
    """A site's files: date -> (key, size) of events and of visits."""
    events: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    visits: dict[str, list[tuple[str, int]]] = field(default_factory=dict)

    def keys(self, date: str) -> list[str]:
        return sorted(k for k, _ in self.events.get(date, []))

    def visit_keys(self, date: str) -> list[str]:
        return sorted(k for k, _ in self.visits.get(date, []))


def _next(date: str) -> str:
    return (Date.fromisoformat(date) + timedelta(days=1)).isoformat()


def range_dates(start: datetime, end: datetime) -> tuple[str, str]:
    """The first and last date of [start, end)."""
    return start.date().isoformat(), (end - timedelta(microseconds=1)).date().isoformat()


def fast(listing: Listing, date: str) -> bool:
    """The date's files can be read as they are (visit ids and visits up to date)."""
    keys = listing.keys(date)
    return bool(keys) and visits_up_to_date(listing.visit_keys(date), keys, listing.keys(previous_date(date)) or None,
                                            listing.keys(_next(date)) or None)


def plan(listing: Listing, start: datetime, end: datetime) -> Sources:
    first, last = range_dates(start, end)
    day_before = previous_date(first)
    # the day after too: the visits started on the last day that run into it are whole
    dates = sorted(d for d in listing.events if day_before <= d <= _next(last))
    out = Sources()
    run: list[str] = []

    def close_run() -> None:
        if not run:
            return
        a, b = run[0], run[-1]
        before, after = previous_date(a), _next(b)
        carry = listing.keys(before) if compacted_group(listing.keys(before)) is not None else []
        # the day after continues the run's visits with the ids stored in its files
        continues = after in listing.events and up_to_date(listing.keys(after), listing.keys(b))
        nxt = listing.keys(after) if continues else []
        out.runs.append(Run(tuple(run), tuple(k for d in run for k in listing.keys(d)), tuple(carry), a, tuple(nxt)))
        run.clear()

    for d in dates:
        if fast(listing, d):
            close_run()
            if first <= d <= last:
                out.event_files += listing.keys(d)
            if d <= last:
                out.visit_files += listing.visit_keys(d)
        else:
            if run and previous_date(d) != run[-1]:
                close_run()
            run.append(d)
    close_run()
    sizes = {k: s for files in (*listing.events.values(), *listing.visits.values()) for k, s in files}
    used = sorted({*out.event_files, *out.visit_files, *(k for r in out.runs for k in (*r.keys, *r.carry, *r.next))})
    out.signature = hashlib.sha256(repr([(k, sizes.get(k)) for k in used]).encode()).hexdigest()[:16]
    return out
