"""Names in storage: partition keys, compacted-file groups, the visit key. No pyarrow
here, so the stats engine and `traceglider stats` start without it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from traceglider.dates import previous_date as previous_date  # where the layout's readers find it
from traceglider.storage.keys import checked_key, path_component

# Re-exported: compaction and the stats read the visit rule here.
from traceglider.visits import VISIT_TIMEOUT_MINUTES as VISIT_TIMEOUT_MINUTES

EVENTS_PREFIX = "events/"
VISITS_PREFIX = "visits/"
_PARTITION = re.compile(r"^events/site=([^/]+)/date=(\d{4}-\d{2}-\d{2})/([^/]+\.parquet)$")
_VISITS_PARTITION = re.compile(r"^visits/site=([^/]+)/date=(\d{4}-\d{2}-\d{2})/([^/]+\.parquet)$")
NO_CARRY = "0" * 12
NO_NEXT = "0" * 20
_COMPACTED = re.compile(r"^cv-([0-9a-f]{20})-([0-9a-f]{12})-([0-9a-f]{12})-(\d+)\.parquet$")
# Visits files: `vv-<events digest>-<next digest>-<n>.parquet`: the visits of the events
# group `<events digest>` of the same date, including the part of visits running into
# the next date whose events group is `<next digest>` (NO_NEXT: not looked at yet).
_VISITS = re.compile(r"^vv-([0-9a-f]{20})-([0-9a-f]{20})-(\d+)\.parquet$")

# The visit key: the first 60 bits of md5(visitor_id '/' first received_at in µs).
# Stable across DuckDB versions (unlike hash()); the engine uses the same expression.
VISIT_ID_SQL = "('0x' || md5(coalesce({v}, '') || '/' || epoch_us({t})::VARCHAR)[1:15])::BIGINT"


def partition_prefix(site: str, date: str) -> str:
    """The partition's directory; an InvalidKey when a value cannot be a path part."""
    return f"{EVENTS_PREFIX}{path_component(site, 'site')}/{path_component(date, 'date')}/"


def object_key(site: str, date: str, name: str) -> str:
    return checked_key(f"{partition_prefix(site, date)}{path_component(name + '.parquet')}")


def visits_prefix(site: str, date: str) -> str:
    return f"{VISITS_PREFIX}site={site}/date={date}/"


def visits_key(site: str, date: str, name: str) -> str:
    return f"{visits_prefix(site, date)}{name}.parquet"


def parse_visits_key(key: str) -> tuple[str, str, str] | None:
    """(site, date, file name) of a visits object key, or None for other keys."""
    match = _VISITS_PARTITION.match(key)
    return (match.group(1), match.group(2), match.group(3)) if match else None


def visits_group(keys: list[str]) -> tuple[str, str] | None:
    """(events digest, next digest) of a date's visits files when they are one group."""
    groups = set()
    for key in keys:
        match = _VISITS.match(key.rpartition("/")[2])
        if not match:
            return None
        groups.add((match.group(1), match.group(2)))
    return groups.pop() if len(groups) == 1 else None


def visits_up_to_date(visit_keys: list[str], keys: list[str], previous_keys: list[str] | None,
                      next_keys: list[str] | None) -> bool:
    """True when a date's visits files are right for its events (`keys`): the events are
    up to date, the visits were made from them, and from the next date's events when
    those are compacted and continue from this date (else the reader, or the next
    date's compaction, completes the visits running into it)."""
    group = compacted_group(keys)
    if group is None or not up_to_date(keys, previous_keys):
        return False
    visits = visits_group(visit_keys)
    if visits is None or visits[0] != group.digest:
        return False
    following = compacted_group(next_keys or [])
    if following is None or following.carry != group.tail:
        return True
    return visits[1] == following.digest


def parse_key(key: str) -> tuple[str, str, str] | None:
    """(site, date, file name) of an event object key, or None for other keys."""
    match = _PARTITION.match(key)
    return (match.group(1), match.group(2), match.group(3)) if match else None


@dataclass(frozen=True)
class Group:
    """The compacted-file group of a partition: (inputs digest, carry tag, tail tag)."""
    digest: str
    carry: str
    tail: str


def compacted_group(keys: list[str]) -> Group | None:
    """The one `cv-` group all of a partition's keys belong to, or None when any file
    is not a compacted file with visit ids (raw, older format, rewritten by `forget`)."""
    groups = set()
    for key in keys:
        match = _COMPACTED.match(key.rpartition("/")[2])
        if not match:
            return None
        groups.add(Group(match.group(1), match.group(2), match.group(3)))
    return groups.pop() if len(groups) == 1 else None


def up_to_date(keys: list[str], previous_keys: list[str] | None) -> bool:
    """True when a partition's stored visit ids are right: one compacted group that
    continued from the current state of the previous date (None: no data that day)."""
    group = compacted_group(keys)
    if group is None:
        return False
    if not previous_keys:
        return group.carry == NO_CARRY
    before = compacted_group(previous_keys)
    return before is not None and before.tail == group.carry
