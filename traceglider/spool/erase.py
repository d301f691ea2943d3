"""Erasure in the spool's quarantine: a segment moved to `bad/` (it could not be
written to storage, which only a bug causes) is kept for a person to look at, and
would otherwise keep an erased visitor's events there.

Each quarantined segment that mentions the visitor is rewritten without their rows
(write to a temporary file, fsync, rename). A line that cannot be read as JSON but
holds the id is removed too; damaged spans between records (which a reader skips)
are not carried into the rewritten file.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from traceglider.fsutil import fsync_dir, write_durably
from traceglider.spool.wal import QUARANTINE, frame, read_records


def erase_from_quarantine(spool_root: Path, visitor_id: str) -> int:
    """Remove the rows of `visitor_id` from every quarantined segment; rows removed."""
    bad = spool_root / QUARANTINE
    if not visitor_id or not bad.is_dir():
        return 0
    needle = orjson.dumps(visitor_id)[1:-1]  # as it appears inside a JSON string
    removed = 0
    for path in sorted(p for p in bad.iterdir() if p.is_file()):
        if needle not in path.read_bytes():
            continue
        records, _ = read_records(path)
        kept = []
        for record in records:
            lines = []
            for line in record.split(b"\n"):
                if needle in line and _holds(line, visitor_id):
                    removed += 1
                    continue
                lines.append(line)
            if lines:
                kept.append(b"\n".join(lines))
        _rewrite(path, b"".join(frame(r) for r in kept))
    return removed


def _holds(line: bytes, visitor_id: str) -> bool:
    try:
        row = orjson.loads(line)
    except orjson.JSONDecodeError:
        return True  # unreadable, and it mentions the id: it goes
    return not isinstance(row, dict) or row.get("visitor_id") == visitor_id


def _rewrite(path: Path, data: bytes) -> None:
    if not data:
        path.unlink()
        fsync_dir(path.parent)
        return
    write_durably(path, data, ".erasing")
