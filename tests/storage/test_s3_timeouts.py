"""A store that accepts connections and never answers: every S3 call and every DuckDB
read of it gives up within TG_STORAGE_TIMEOUT, against a real silent server on loopback.
(botocore's defaults waited 30 s and more for one call, httpfs's 120 s for one read.)"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.tcp_proxy import SilentServer
from traceglider.errors import StorageError

TIMEOUT = 2.0
SLACK = 4.0  # scheduling on a loaded machine; the old waits were 20-120 s


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


def _elapsed(call: Callable[[], Any], expected: type[BaseException]) -> float:
    started = time.monotonic()
    with pytest.raises(expected):
        call()
    return time.monotonic() - started


def test_every_s3_call_gives_up_within_the_storage_timeout(silent: SilentServer) -> None:
    from traceglider.storage.s3 import S3Storage

    storage = S3Storage("s3://bucket/data", endpoint_url=silent.url, timeout=TIMEOUT)
    calls: dict[str, Callable[[], Any]] = {
        "list": lambda: storage.list("events/"),
        "get": lambda: storage.get("events/x.parquet"),
        "put": lambda: storage.put("events/x.parquet", b"x" * 100, if_absent=True),
        "delete": lambda: storage.delete(["events/x.parquet"]),
        "health": storage.health,
    }
    for name, call in calls.items():
        took = _elapsed(call, StorageError)
        assert took < TIMEOUT + SLACK, f"{name} waited {took:.1f} s for a silent store"
    assert silent.accepted  # it really reached the server


def test_the_timeout_comes_from_the_settings(silent: SilentServer) -> None:
    from traceglider.config import load
    from traceglider.storage import open_storage

    storage = open_storage(load(env={"TG_STORAGE": "s3://bucket/data", "TG_S3_ENDPOINT_URL": silent.url,
                                     "TG_STORAGE_TIMEOUT": "1"}))
    assert _elapsed(lambda: storage.list("events/"), StorageError) < 1 + SLACK


def test_the_call_budget_keeps_a_retry_only_where_it_fits() -> None:
    from traceglider.storage.s3 import call_config

    default = call_config(10.0)
    assert default.retries == {"total_max_attempts": 2, "mode": "standard"}
    # two attempts, each with the wait for 100 Continue, and the backoff between: 10 s
    assert 2 * (default.read_timeout + 1.0) + 1.0 <= 10.0
    short = call_config(2.0)
    assert short.retries["total_max_attempts"] == 1 and short.read_timeout + 1.0 <= 2.0


def test_duckdb_reads_of_a_silent_store_give_up_within_the_storage_timeout(silent: SilentServer) -> None:
    import duckdb

    from traceglider.storage.duck import connect, timed_out
    from traceglider.storage.s3 import S3Storage

    con = connect(S3Storage("s3://bucket/data", endpoint_url=silent.url, timeout=TIMEOUT))
    started = time.monotonic()
    with pytest.raises(duckdb.IOException) as raised:
        con.execute("SELECT count(*) FROM read_parquet(['s3://bucket/data/events/a.parquet'])").fetchall()
    took = time.monotonic() - started
    assert took < TIMEOUT + SLACK, f"DuckDB waited {took:.1f} s for a silent store"
    assert timed_out(raised.value)
    settings = dict(con.execute("SELECT name, value FROM duckdb_settings() WHERE name LIKE 'http_%'").fetchall())
    assert settings["http_timeout"] == "1" and settings["http_retries"] == "1"


def test_a_stats_read_that_timed_out_is_not_read_again() -> None:
    """Reading again would wait as long again (and list a store that does not answer):
    the engine answers 503 at once."""
    import duckdb

    from traceglider.errors import Unavailable
    from traceglider.stats.engine import Engine
    from traceglider.storage.local import LocalStorage

    tries = []

    def hung() -> None:
        tries.append(1)
        raise duckdb.IOException("IO Error: Timeout was reached error for HTTP HEAD to 'http://127.0.0.1:1/x'")

    with pytest.raises(Unavailable) as raised:
        Engine(LocalStorage("/nonexistent")).reading(hung)
    assert tries == [1] and raised.value.status == 503 and raised.value.headers["Retry-After"]
