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


def test_writes_waiting_together_each_get_their_503_and_the_next_is_watched_again(tmp_path, monkeypatch):
    sink = sinks.SpoolSink(LocalStorage(str(tmp_path / "data")), tmp_path / "spool", 10**6, 3600, 10**6)
    sink.start()
    hang, write_group = threading.Event(), Spool._write_group
    hang.set()

    def maybe_hanging(self, batch):  # type: ignore[no-untyped-def]
        if hang.is_set():
            release.wait(10)
        write_group(self, batch)

    release = threading.Event()
    monkeypatch.setattr(Spool, "_write_group", maybe_hanging)
    monkeypatch.setattr(sinks, "ACCEPT_TIMEOUT", 0.1)

    async def scenario() -> list[object]:
        first = await asyncio.gather(*(sink.accept([{"event_id": f"e{i}", "site": "example.com"}])
                                       for i in range(5)), return_exceptions=True)
        hang.clear()
        release.set()  # the spool writes again: a later write is confirmed, not expired
        await sink.accept([{"event_id": "later", "site": "example.com"}])
        return first

    try:
        answers = asyncio.run(scenario())
        assert all(isinstance(a, Unavailable) and "in time" in str(a) for a in answers), answers
    finally:
        release.set()
        sink.stop()
