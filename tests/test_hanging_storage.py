"""While S3 hangs (it accepts connections and never answers), a stats request and an
erasure answer 503 with Retry-After within TG_STORAGE_TIMEOUT, and the server still
shuts down in seconds with the events kept in its spool. Real HTTP: moto on loopback
behind a proxy that stops answering. (Before the bound: forget 33 s, stats 30 s.)"""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient

from tests.conftest import make_bucket
from tests.helpers import BROWSER_UA, batch
from tests.tcp_proxy import PausableProxy

TIMEOUT = 2.0
SLACK = 6.0  # scheduling on a loaded machine (5.1 s seen at load 8 for a 2 s bound); the old waits were 30-56 s
AUTH = {"authorization": "Bearer owner-token"}


def _timed(call):  # type: ignore[no-untyped-def]
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def test_stats_and_forget_answer_503_within_the_storage_timeout_while_s3_hangs(
        tmp_path: Path, s3_endpoint: str) -> None:
    from traceglider.app import create_app
    from traceglider.config import load

    proxy = PausableProxy(int(s3_endpoint.rsplit(":", 1)[1]))
    settings = load(env={
        "TG_STORAGE": f"s3://{make_bucket(s3_endpoint)}/tg", "TG_S3_ENDPOINT_URL": f"http://127.0.0.1:{proxy.port}",
        "TG_SPOOL_DIR": str(tmp_path / "spool"), "TG_FLUSH_SECONDS": "3600", "TG_SECRET": "s" * 32,
        "TG_API_TOKEN": "owner-token", "TG_SITES": "example.com", "TG_DASHBOARD_PREPARE": "false",
        "TG_COMPACT_SECONDS": "0", "TG_STORAGE_TIMEOUT": str(TIMEOUT)})
    try:
        client = TestClient(create_app(settings), headers={"user-agent": BROWSER_UA})
        with client:
            assert client.post("/collect", json=batch("example.com", ["a1", "a2"])).status_code == 202
            proxy.stall()

            # events wait in the spool: the erasure would deliver them first
            response, took = _timed(lambda: client.post("/api/v1/forget", params={"visitor_id": "v"}, headers=AUTH))
            assert response.status_code == 503 and response.headers["Retry-After"], response.text
            assert "nothing was erased" in response.json()["error"]
            assert took < TIMEOUT + SLACK, f"forget answered after {took:.1f} s"

            response, took = _timed(lambda: client.get(
                "/api/v1/stats/aggregate", params={"site_id": "example.com", "period": "30d"}, headers=AUTH))
            assert response.status_code == 503 and response.headers["Retry-After"], response.text
            assert took < TIMEOUT + SLACK, f"stats answered after {took:.1f} s"
            started = time.monotonic()
        shutdown = time.monotonic() - started
        # the flusher's last try and the one in flight, each within the bound
        assert shutdown < 2 * TIMEOUT + SLACK, f"shutdown took {shutdown:.1f} s"
        assert any((tmp_path / "spool").rglob("*.wal"))  # the events are still spooled
    finally:
        proxy.close()


def test_forget_answers_503_within_the_storage_timeout_when_the_lock_write_hangs(
        tmp_path: Path, s3_endpoint: str) -> None:
    """Nothing spooled: the first call to hang is the maintenance lock's write."""
    from traceglider.app import create_app
    from traceglider.config import load

    proxy = PausableProxy(int(s3_endpoint.rsplit(":", 1)[1]))
    settings = load(env={
        "TG_STORAGE": f"s3://{make_bucket(s3_endpoint)}/tg", "TG_S3_ENDPOINT_URL": f"http://127.0.0.1:{proxy.port}",
        "TG_SPOOL_DIR": str(tmp_path / "spool"), "TG_SECRET": "s" * 32, "TG_API_TOKEN": "owner-token",
        "TG_DASHBOARD_PREPARE": "false", "TG_COMPACT_SECONDS": "0", "TG_STORAGE_TIMEOUT": str(TIMEOUT)})
    try:
        with TestClient(create_app(settings)) as client:
            proxy.stall()
            response, took = _timed(lambda: client.post("/api/v1/forget", params={"visitor_id": "v"}, headers=AUTH))
            assert response.status_code == 503 and response.headers["Retry-After"], response.text
            assert took < TIMEOUT + SLACK, f"forget answered after {took:.1f} s"
    finally:
        proxy.close()
