"""The flusher delivers the spool to storage, survives outages and tells the truth."""

from __future__ import annotations

import errno
import threading

import orjson

from tests.helpers import row, stored_ids, wait_for
from traceglider.errors import StorageError
from traceglider.spool.flusher import DELIVERY_NICENESS, Flusher
from traceglider.spool.wal import Spool, read_records


class FlakyStorage:
    """Real local storage that can be switched off, as an unplugged disk or network."""

    def __init__(self, inner):  # type: ignore[no-untyped-def]
        self.inner, self.down = inner, False
        self.url = inner.url

    def __getattr__(self, name):  # type: ignore[no-untyped-def]
        attr = getattr(self.inner, name)
        if callable(attr):
            def guarded(*args, **kwargs):  # type: ignore[no-untyped-def]
                if self.down:
                    raise StorageError("storage is switched off")
                return attr(*args, **kwargs)
            return guarded
        return attr


def ndjson(rows: list[dict]) -> bytes:
    """A spool record as the sink writes it: one JSON row per line."""
    return b"\n".join(orjson.dumps(r) for r in rows)


def test_spooled_rows_arrive_in_storage_and_the_segment_is_removed(tmp_path, storage):
    spool = Spool(tmp_path / "spool", max_bytes=10**6)
    spool.append(ndjson([row("e1"), row("e2")]), 2)
    flusher = Flusher(spool, storage, flush_seconds=60, flush_events=10)
    assert flusher.flush_once()
    assert sorted(stored_ids(storage)) == ["e1", "e2"]
    assert spool.sealed() == [] and spool.pending_events == 0 and spool.bytes == 0
    spool.close()


def test_flush_happens_on_event_count_without_waiting_for_the_timer(tmp_path, local_storage):
    spool = Spool(tmp_path / "spool", max_bytes=10**6)
    flusher = Flusher(spool, local_storage, flush_seconds=3600, flush_events=3)
    flusher.start()
    spool.append(ndjson([row("a"), row("b"), row("c")]), 3)
    flusher.notify()
    assert wait_for(lambda: sorted(stored_ids(local_storage)) == ["a", "b", "c"])
    flusher.stop()
    spool.close()


def test_an_outage_keeps_events_spooled_and_delivery_resumes(tmp_path, local_storage):
    storage = FlakyStorage(local_storage)
    spool = Spool(tmp_path / "spool", max_bytes=10**6)
    flusher = Flusher(spool, storage, flush_seconds=0.05, flush_events=1000)
    assert flusher.storage_ok is None  # not proven reachable yet
    flusher.start()
    assert wait_for(lambda: flusher.storage_ok is True)
    storage.down = True
    spool.append(ndjson([row("during")]), 1)
    assert wait_for(lambda: flusher.storage_ok is False)
    assert wait_for(lambda: bool(spool.sealed()))
    assert stored_ids(local_storage) == []
    storage.down = False
    assert wait_for(lambda: stored_ids(local_storage) == ["during"])
    assert wait_for(lambda: flusher.storage_ok is True)
    flusher.stop()
    spool.close()


def test_stop_delivers_what_is_left(tmp_path, local_storage):
    spool = Spool(tmp_path / "spool", max_bytes=10**6)
    flusher = Flusher(spool, local_storage, flush_seconds=3600, flush_events=1000)
    flusher.start()
    spool.append(ndjson([row("last")]), 1)
    flusher.stop()
    assert stored_ids(local_storage) == ["last"]
    spool.close()


def test_a_segment_that_cannot_be_written_is_quarantined_not_retried_forever(tmp_path, local_storage):
    spool = Spool(tmp_path / "spool", max_bytes=10**6)
    spool.append(ndjson([{"event_id": "x"}]), 1)  # no site: cannot be partitioned
    spool.append(b"not json", 1)
    flusher = Flusher(spool, local_storage, flush_seconds=60, flush_events=10)
    assert flusher.flush_once()
    assert flusher.quarantined == 1 and flusher.damaged_records == 1
    assert spool.sealed() == [] and list((tmp_path / "spool" / "bad").iterdir())
    spool.close()


def test_the_delivery_thread_survives_an_unexpected_error(tmp_path, local_storage, monkeypatch):
    spool = Spool(tmp_path / "spool", max_bytes=10**6)
    flusher = Flusher(spool, local_storage, flush_seconds=0.05, flush_events=1000)
    real = flusher.deliver
    calls = []

    def broken_once(segment):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 1:
            raise OSError(5, "Input/output error")
        return real(segment)

    monkeypatch.setattr(flusher, "deliver", broken_once)
    flusher.start()
    spool.append(ndjson([row("survivor")]), 1)
    assert wait_for(lambda: stored_ids(local_storage) == ["survivor"])
    assert flusher.running
    flusher.stop()
    spool.close()


def test_a_partition_whose_name_cannot_be_a_key_is_set_aside_and_the_rest_delivered(tmp_path, storage):
    # A site name that a collector before the edge check accepted: `site=<it>` is
    # longer than a file name may be. It used to block this and every later segment.
    long_site = "a" * 247 + ".com"
    spool = Spool(tmp_path / "spool", max_bytes=10**6)
    spool.append(ndjson([row("ok1"), row("long", site=long_site), row("ok2", site="other.org")]), 3)
    spool.seal()
    spool.append(ndjson([row("later")]), 1)
    flusher = Flusher(spool, storage, flush_seconds=60, flush_events=10)
    assert flusher.flush_once()
    assert sorted(stored_ids(storage)) == ["later", "ok1", "ok2"]
    assert spool.sealed() == [] and spool.pending_events == 0
    status = flusher.status()
    assert status["quarantined_partitions"] == 1 and status["quarantined_events"] == 1
    assert status["quarantine_reasons"] == {"invalid_key": 1}
    bad = sorted((tmp_path / "spool" / "bad").iterdir())
    kept = [p for p in bad if p.suffix == ".wal"]
    reason = [p for p in bad if p.suffix == ".reason"]
    assert len(kept) == 1 and len(reason) == 1 and "255 bytes" in reason[0].read_text()
    records, _ = read_records(kept[0])
    assert [orjson.loads(line)["event_id"] for line in records[0].split(b"\n")] == ["long"]
    spool.close()


def test_a_name_the_disk_refuses_is_set_aside_not_taken_for_an_outage(tmp_path, local_storage):
    class RefusesOneName(FlakyStorage):
        def put(self, key, data, *, if_absent=False):  # type: ignore[no-untyped-def]
            if "site=refused.org" in key:
                raise StorageError("cannot write: File name too long") from OSError(
                    errno.ENAMETOOLONG, "File name too long")
            return self.inner.put(key, data, if_absent=if_absent)

    spool = Spool(tmp_path / "spool", max_bytes=10**6)
    spool.append(ndjson([row("kept"), row("refused", site="refused.org")]), 2)
    flusher = Flusher(spool, RefusesOneName(local_storage), flush_seconds=60, flush_events=10)
    assert flusher.flush_once()
    assert stored_ids(local_storage) == ["kept"]
    assert flusher.status()["quarantine_reasons"] == {"name_refused": 1}
    spool.close()


def _niceness(thread_id: int) -> int:
    stat = open(f"/proc/self/task/{thread_id}/stat").read()  # noqa: SIM115 - one read
    return int(stat.rpartition(")")[2].split()[16])  # field 19, after "(comm)"


def test_delivery_runs_at_a_lower_cpu_priority_than_the_requests(tmp_path, local_storage):
    spool = Spool(tmp_path / "spool", max_bytes=10**6)
    flusher = Flusher(spool, local_storage, flush_seconds=3600, flush_events=1000)
    flusher.start()
    try:
        delivery = next(t for t in flusher._threads if t.name == "tg-flusher")
        assert delivery.native_id is not None
        here = _niceness(threading.get_native_id())
        assert wait_for(lambda: _niceness(delivery.native_id) == min(19, here + DELIVERY_NICENESS))
        # the rest of the process (the event loop, the spool's writer) keeps its own
        assert _niceness(threading.get_native_id()) == here
        writer = next(t for t in threading.enumerate() if t.name == "tg-spool-writer")
        assert _niceness(writer.native_id) == here  # type: ignore[arg-type]
    finally:
        flusher.stop()
        spool.close()
