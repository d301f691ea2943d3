"""The write-ahead spool: framing, recovery of damaged segments, group commit, cap."""

from __future__ import annotations

import threading

import pytest

from traceglider.errors import Unavailable
from traceglider.spool.wal import MAGIC, Spool, frame, read_records


def test_records_written_are_read_back(tmp_path):
    spool = Spool(tmp_path, max_bytes=10**6)
    for i in range(5):
        spool.append(f"record-{i}".encode(), 1)
    spool.seal()
    (segment,) = spool.sealed()
    assert read_records(segment.path) == ([f"record-{i}".encode() for i in range(5)], 0)
    assert spool.pending_events == 5
    spool.close()


@pytest.mark.parametrize(
    "damage, expected, damaged",
    [
        ("torn tail", [b"one", b"two"], 1),
        ("flipped byte in the middle record", [b"one", b"three"], 1),
        ("garbage between records", [b"one", b"two", b"three"], 1),
        ("zeroed file", [], 1),
    ],
)
def test_damaged_segments_recover_every_intact_record(tmp_path, damage, expected, damaged):
    records = [frame(b"one"), frame(b"two"), frame(b"three")]
    if damage == "torn tail":
        data = records[0] + records[1] + records[2][:7]
    elif damage == "flipped byte in the middle record":
        middle = bytearray(records[1])
        middle[-1] ^= 0xFF
        data = records[0] + bytes(middle) + records[2]
    elif damage == "garbage between records":
        data = records[0] + records[1] + b"\x00garbage" + MAGIC[:2] + records[2]
    else:
        data = b"\x00" * 100
    path = tmp_path / "seg.wal"
    path.write_bytes(data)
    assert read_records(path) == (expected, damaged)


def test_concurrent_appends_share_fsyncs(tmp_path):
    spool = Spool(tmp_path, max_bytes=10**8)
    start = threading.Barrier(32)

    def client() -> None:
        start.wait()
        for _ in range(20):
            spool.append(b"x" * 200, 1)

    threads = [threading.Thread(target=client) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert spool.pending_events == 640
    assert spool.fsyncs < 640  # group commit: many records per fsync
    spool.close()


def test_the_spool_says_how_long_its_fsyncs_take(tmp_path):
    spool = Spool(tmp_path, max_bytes=10**8)
    assert spool.fsync_ms() == {"count": 0}
    for _ in range(5):
        spool.append(b"x" * 200, 1)
    timings = spool.fsync_ms()
    assert timings["count"] == spool.fsyncs == 5
    assert 0 <= timings["p50"] <= timings["p99"] <= timings["max"]
    spool.close()


def test_the_cap_refuses_instead_of_accepting(tmp_path):
    spool = Spool(tmp_path, max_bytes=300)
    spool.append(b"x" * 200, 1)
    with pytest.raises(Unavailable) as info:
        spool.append(b"x" * 200, 1)
    assert info.value.status == 503 and "Retry-After" in info.value.headers
    spool.close()


def test_each_process_claims_its_own_directory_and_leftovers_are_replayed(tmp_path):
    first = Spool(tmp_path, max_bytes=10**6)
    second = Spool(tmp_path, max_bytes=10**6)
    assert first.dir != second.dir
    first.append(b"left behind", 1)  # the open segment is never sealed: a crash
    first._lock_fd, fd = -1, first._lock_fd
    import os

    os.close(fd)  # the process died: its lock is gone
    third = Spool(tmp_path, max_bytes=10**6)
    assert third.dir == first.dir
    (segment,) = third.sealed()
    assert read_records(segment.path)[0] == [b"left behind"]
    second.close()
    third.close()


def test_a_write_error_becomes_503_and_the_spool_stays_usable(tmp_path, monkeypatch):
    import os as os_module

    from traceglider.spool import wal

    spool = Spool(tmp_path, max_bytes=10**6)
    spool.append(b"before", 1)
    real_fdatasync = os_module.fdatasync

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(wal.os, "fdatasync", full_disk)
    with pytest.raises(Unavailable, match="No space left"):
        spool.append(b"lost", 1)
    monkeypatch.setattr(wal.os, "fdatasync", real_fdatasync)
    spool.append(b"after", 1)
    spool.seal()
    records = [r for s in spool.sealed() for r in read_records(s.path)[0]]
    assert records == [b"before", b"after"]
    spool.close()


def test_the_writer_survives_an_unexpected_error(tmp_path, monkeypatch):
    spool = Spool(tmp_path, max_bytes=10**6)
    real = spool._write_group
    calls = []

    def broken_once(batch):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 1:
            raise MemoryError("simulated")
        return real(batch)

    monkeypatch.setattr(spool, "_write_group", broken_once)
    with pytest.raises(Unavailable):
        spool.append(b"lost", 1)
    spool.append(b"kept", 1)  # the writer thread is still there
    assert spool.alive
    spool.close()


def test_a_restarted_spool_counts_the_events_it_holds(tmp_path):
    first = Spool(tmp_path, max_bytes=10**6)
    first.append(b'{"a":1}\n{"a":2}', 2)
    first.append(b'{"a":3}', 1)
    first.close()
    again = Spool(tmp_path, max_bytes=10**6)
    assert again.pending_events == 3 and again.bytes > 0
    again.close()


def test_segments_of_a_worker_that_no_longer_runs_are_adopted(tmp_path):
    import os

    kept = Spool(tmp_path, max_bytes=10**6)  # worker-0
    gone = Spool(tmp_path, max_bytes=10**6)  # worker-1, about to disappear
    gone.append(b'{"x":1}', 1)
    gone.append(b'{"x":2}', 1)
    os.close(gone._lock_fd)  # the process is gone (its open segment was never sealed)
    assert kept.adopt_orphans() == 1
    (segment,) = kept.sealed()
    assert read_records(segment.path)[0] == [b'{"x":1}', b'{"x":2}']
    assert kept.pending_events == 2
    assert list((tmp_path / "worker-1").glob("*.wal")) == []
    kept.close()


def test_a_record_alone_is_written_on_the_calling_thread_and_never_beside_a_queue(tmp_path):
    spool = Spool(tmp_path, max_bytes=10**6)
    assert spool.append_alone(b"alone", 1) is True
    assert spool.fsyncs == 1 and spool.pending_events == 1
    spool._writing = True  # the writer thread has a group in hand: queue behind it instead
    assert spool.append_alone(b"second", 1) is False
    spool._writing = False
    assert spool.append_alone(b"x" * 10**6, 1) is False  # over the cap: `submit` says why
    spool.seal()
    (segment,) = spool.sealed()
    assert read_records(segment.path) == ([b"alone"], 0)
    spool.close()
    assert spool.append_alone(b"closed", 1) is False


def test_a_live_workers_directory_is_neither_claimed_nor_adopted(tmp_path):
    from traceglider.spool.wal import _try_claim

    kept = Spool(tmp_path, max_bytes=10**6)  # worker-0
    live = Spool(tmp_path, max_bytes=10**6)  # worker-1, running
    live.append(b'{"x":1}', 1)
    live.seal()
    assert _try_claim(tmp_path / "worker-1") is None  # held: one claim, whoever asks
    assert kept.adopt_orphans() == 0 and len(live.sealed()) == 1
    third = Spool(tmp_path, max_bytes=10**6)
    assert third.dir.name == "worker-2"  # the claim skips the held ones
    for spool in (kept, live, third):
        spool.close()
