"""DuckDB connections over the storage: how many threads read object storage."""

from __future__ import annotations

import os
from typing import Any

from traceglider.storage.duck import REMOTE_THREADS, THREAD_MEMORY, connect, remote_threads


def _threads(con: Any) -> int:
    return int(con.execute("SELECT current_setting('threads')").fetchone()[0])


def test_a_connection_reading_s3_waits_on_round_trips_with_more_threads_than_cores(s3_storage: Any) -> None:
    """httpfs blocks a thread per range request: one thread per core idles the cores
    behind the store's round trips (3.3x slower at 20 ms a request, docs/benchmarks.md)."""
    memory = 4 << 30
    con = connect(s3_storage, memory)
    try:
        assert _threads(con) == remote_threads(memory) == max(os.cpu_count() or 1, REMOTE_THREADS)
    finally:
        con.close()


def test_local_disk_keeps_a_thread_per_core_and_an_explicit_count_wins(local_storage: Any,
                                                                        s3_storage: Any) -> None:
    con = connect(local_storage, 4 << 30)
    try:
        assert _threads(con) == (os.cpu_count() or 1)
    finally:
        con.close()
    con = connect(s3_storage, 4 << 30, threads=3)
    try:
        assert _threads(con) == 3
    finally:
        con.close()


def test_remote_threads_leave_each_thread_its_share_of_the_memory_limit() -> None:
    assert remote_threads(256 << 20, cores=2) == 2  # never below the cores
    assert remote_threads(6 * THREAD_MEMORY, cores=2) == 6
    assert remote_threads(64 << 30, cores=2) == REMOTE_THREADS
    assert remote_threads(64 << 30, cores=32) == 32
