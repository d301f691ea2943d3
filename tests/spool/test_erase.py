"""An erased visitor's rows leave the spool's quarantine too."""

from __future__ import annotations

from pathlib import Path

import orjson

from traceglider.spool.erase import erase_from_quarantine
from traceglider.spool.wal import MAGIC, frame, read_records

ALICE, BOB = "alice-0123456789abcdef", "bob-0123456789abcdef"


def rows(*visitors: str) -> bytes:
    return b"\n".join(orjson.dumps({"event_id": f"e{i}", "visitor_id": v, "path": "/"})
                      for i, v in enumerate(visitors))


def test_quarantined_segments_lose_the_visitors_rows_and_nothing_else(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    mixed = bad / "seg-1.wal"
    mixed.write_bytes(frame(rows(ALICE, BOB)) + MAGIC + b"torn" + frame(b'{"visitor_id": "' + ALICE.encode()
                                                                           + b'", broken') + frame(rows(BOB)))
    only = bad / "seg-2.wal"
    only.write_bytes(frame(rows(ALICE, ALICE)))
    other = bad / "seg-3.wal"
    other.write_bytes(frame(rows(BOB)))
    before = other.read_bytes()

    assert erase_from_quarantine(tmp_path, ALICE) == 4  # a row and an unreadable line here, two rows there
    records, damaged = read_records(mixed)
    assert damaged == 0
    assert [orjson.loads(line)["visitor_id"] for r in records for line in r.split(b"\n")] == [BOB, BOB]
    assert not only.exists()  # nothing left in it
    assert other.read_bytes() == before  # never mentioned her: untouched
    assert erase_from_quarantine(tmp_path, ALICE) == 0
    assert ALICE.encode() not in b"".join(p.read_bytes() for p in bad.iterdir())


def test_no_quarantine_no_work(tmp_path: Path) -> None:
    assert erase_from_quarantine(tmp_path, ALICE) == 0
    assert erase_from_quarantine(tmp_path / "missing", ALICE) == 0
