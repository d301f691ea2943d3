"""Erase one visitor's events (GDPR Art. 17), rewriting only the files that hold them.

Each affected file is replaced in two moves: the file without the visitor's rows is
written under a new name (derived from the old name and the visitor, so a rerun finds
it instead of writing a second copy), then the old file is deleted. A reader between
the two moves sees both files and removes the duplicate `event_id`s, as it always
does; an interruption at any point leaves no data lost and the rerun finishes the
job. A file left with no rows is simply deleted.

Events still in a collector's spool are not in storage yet: flush before forgetting.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow.compute as pc
import pyarrow.parquet as pq

from traceglider.schema import COMPACTED_SCHEMA, VISIT_SCHEMA
from traceglider.storage.base import Storage
from traceglider.storage.layout import EVENTS_PREFIX, VISITS_PREFIX, parse_key, parse_visits_key
from traceglider.storage.lock import WAIT_SECONDS, maintenance
from traceglider.storage.parquet import table_to_bytes

Progress = Callable[[int, int], None]
RENEW_EVERY = 200  # files between renewals of the maintenance lock
_FORGOTTEN_SUFFIX = re.compile(r"-f[0-9a-f]{12}$")


@dataclass
class ForgetReport:
    visitor_id: str
    files_scanned: int = 0
    files_rewritten: int = 0
    files_deleted: int = 0
    rows_removed: int = 0
    visits_removed: int = 0
    partitions: list[str] = field(default_factory=list)  # "site=S/date=D" touched

    def summary(self) -> str:
        return (f"removed {self.rows_removed} events of visitor {self.visitor_id} from "
                f"{len(self.partitions)} partitions ({self.files_rewritten} files rewritten, "
                f"{self.files_deleted} deleted, {self.files_scanned} scanned)")


def _new_key(key: str, visitor_id: str) -> str:
    directory, _, name = key.rpartition("/")
    stem = _FORGOTTEN_SUFFIX.sub("", name.removesuffix(".parquet"))
    digest = hashlib.blake2b(f"{key}\0{visitor_id}".encode(), digest_size=6).hexdigest()
    return f"{directory}/{stem}-f{digest}.parquet"


def forget_visitor(storage: Storage, visitor_id: str, progress: Progress | None = None,
                   site: str | None = None, wait: float = WAIT_SECONDS) -> ForgetReport:
    """Remove every event of `visitor_id` (optionally only in one site's partitions),
    holding the maintenance lock (waiting up to `wait` seconds for it)."""
    if not visitor_id:
        raise ValueError("visitor id must not be empty")
    with maintenance(storage, "forget", wait) as lock:
        return _forget(storage, visitor_id, progress, site, lock.renew)


def _forget(storage: Storage, visitor_id: str, progress: Progress | None, site: str | None,
            renew: Callable[[], None]) -> ForgetReport:
    prefix = EVENTS_PREFIX + (f"site={site}/" if site else "")
    keys = [info.key for info in storage.list(prefix) if parse_key(info.key)]
    report = ForgetReport(visitor_id)
    for done, key in enumerate(keys, 1):
        if done % RENEW_EVERY == 0:
            renew()  # a long erasure keeps the maintenance lock
        report.files_scanned += 1
        data = storage.get(key)
        parquet = pq.ParquetFile(io.BytesIO(data))
        # Row-group statistics answer most files without decoding a single row.
        if not _may_hold(parquet, visitor_id):
            if progress:
                progress(done, len(keys))
            continue
        # The compacted schema keeps `visit_id` where compaction wrote it (null elsewhere).
        table = pq.read_table(io.BytesIO(data), schema=COMPACTED_SCHEMA)
        keep = pc.invert(pc.fill_null(pc.equal(table.column("visitor_id"), visitor_id), False))
        remaining = table.filter(keep)
        removed = table.num_rows - remaining.num_rows
        if removed:
            report.rows_removed += removed
            parsed = parse_key(key)
            assert parsed is not None
            partition = f"site={parsed[0]}/date={parsed[1]}"
            if partition not in report.partitions:
                report.partitions.append(partition)
            if remaining.num_rows:
                storage.put(_new_key(key, visitor_id), table_to_bytes(remaining, COMPACTED_SCHEMA), if_absent=True)
                report.files_rewritten += 1
            else:
                report.files_deleted += 1
            storage.delete([key])
        if progress:
            progress(done, len(keys))
    _forget_visits(storage, visitor_id, site, report)
    return report


def visitor_hash(visitor_id: str) -> int:
    """The visits' `visitor_hash` of a visitor id (`visits_sql.VISITOR_HASH_SQL`)."""
    return int(hashlib.md5(visitor_id.encode()).hexdigest()[:15], 16)


def _forget_visits(storage: Storage, visitor_id: str, site: str | None, report: ForgetReport) -> None:
    """The visits dataset is a second copy: the visitor's visits go from it too. A
    rewritten visits file no longer names its events group, so readers sessionise that
    date from its (rewritten) events until the next compaction writes its visits again."""
    wanted = visitor_hash(visitor_id)
    prefix = VISITS_PREFIX + (f"site={site}/" if site else "")
    for info in storage.list(prefix):
        if not parse_visits_key(info.key):
            continue
        table = pq.read_table(io.BytesIO(storage.get(info.key)), schema=VISIT_SCHEMA)
        keep = pc.invert(pc.fill_null(pc.equal(table.column("visitor_hash"), wanted), False))
        remaining = table.filter(keep)
        if remaining.num_rows == table.num_rows:
            continue
        report.visits_removed += table.num_rows - remaining.num_rows
        if remaining.num_rows:
            storage.put(_new_key(info.key, visitor_id), table_to_bytes(remaining, VISIT_SCHEMA), if_absent=True)
        storage.delete([info.key])


def _may_hold(parquet: pq.ParquetFile, visitor_id: str) -> bool:
    metadata = parquet.metadata
    try:
        column = parquet.schema_arrow.get_field_index("visitor_id")
    except KeyError:
        return False
    if column < 0:
        return False
    for index in range(metadata.num_row_groups):
        stats = metadata.row_group(index).column(column).statistics
        if stats is None or not stats.has_min_max:
            if stats is None or stats.null_count != metadata.row_group(index).num_rows:
                return True
            continue
        if stats.min <= visitor_id <= stats.max:
            return True
    return False
