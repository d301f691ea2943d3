"""The spool sink: a write the spool does not confirm in time is a 503, not a hang."""

from __future__ import annotations

import asyncio
import threading

import pytest

from traceglider import sinks
from traceglider.errors import Unavailable
from traceglider.spool.wal import Spool
from traceglider.storage.local import LocalStorage


def test_a_write_the_spool_does_not_confirm_in_time_is_a_503(tmp_path, monkeypatch):
    sink = sinks.SpoolSink(LocalStorage(str(tmp_path / "data")), tmp_path / "spool", 10**6, 3600, 10**6)
    sink.start()
    stuck, release = threading.Event(), threading.Event()
    write_group = Spool._write_group

    def hanging(self, batch):  # type: ignore[no-untyped-def]
        stuck.set()
        release.wait(10)
        write_group(self, batch)

    monkeypatch.setattr(Spool, "_write_group", hanging)
    monkeypatch.setattr(sinks, "ACCEPT_TIMEOUT", 0.05)
    try:
        with pytest.raises(Unavailable, match="did not confirm the write in time") as info:
            asyncio.run(sink.accept([{"event_id": "e", "site": "example.com"}]))
        assert stuck.is_set() and info.value.headers["Retry-After"] == "5"
    finally:
        release.set()
        sink.stop()
