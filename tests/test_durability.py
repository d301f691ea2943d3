"""Nothing accepted is ever lost: kill -9 at random moments, and storage outages."""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import free_port, make_bucket
from tests.helpers import BROWSER_UA, stored_ids
from tests.tcp_proxy import PausableProxy

SITE = "example.com"


def start_server(data: Path, port: int, **env: str) -> subprocess.Popen[bytes]:
    environment = {**os.environ, "TG_STORAGE": str(data), "TG_FLUSH_SECONDS": "0.2",
                   "TG_SITES": SITE, "TG_LOG_LEVEL": "WARNING", "TG_RATE_LIMIT": "0", **env}
    # The server's output goes to a file: an unread pipe would fill and stall it.
    log = open(data.parent / f"server-{port}.log", "wb")  # noqa: SIM115 - lives as long as the process
    process = subprocess.Popen(
        [sys.executable, "-m", "traceglider", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=environment, stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise AssertionError(f"server did not start: {Path(log.name).read_text()[-2000:]}")


def sender(port: int, acked: list[str], stop: threading.Event) -> None:
    """Send 10-event batches until the server dies; remember every id that got 202."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    while not stop.is_set():
        ids = [uuid.uuid4().hex for _ in range(10)]
        body = json.dumps({"site": SITE, "events": [
            {"id": i, "type": "pageview", "url": f"https://{SITE}/{i}"} for i in ids]})
        try:
            conn.request("POST", "/collect", body=body, headers={"content-type": "text/plain",
                                                                    "user-agent": BROWSER_UA})
            response = conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):  # the server was killed mid-answer
            return
        if response.status == 202:
            acked.extend(ids)


def drain(data: Path, port: int) -> None:
    """Start the server once more and stop it cleanly: the spool is delivered."""
    process = start_server(data, port)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)


@pytest.mark.slow
def test_every_acknowledged_event_survives_kill_9(tmp_path: Path) -> None:
    from traceglider.storage.local import LocalStorage

    data, rng, acked = tmp_path / "data", random.Random(7), []
    for _round in range(6):
        port = free_port()
        process = start_server(data, port)
        stop = threading.Event()
        threads = [threading.Thread(target=sender, args=(port, acked, stop)) for _ in range(6)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        already = len(acked)
        while len(acked) == already and time.monotonic() < deadline:
            time.sleep(0.01)  # traffic is flowing: now kill at a random moment
        time.sleep(rng.uniform(0.0, 0.6))
        process.send_signal(signal.SIGKILL)
        process.wait()
        stop.set()
        for thread in threads:
            thread.join()
    assert len(acked) > 100
    drain(data, free_port())
    stored = set(stored_ids(LocalStorage(data)))
    missing = set(acked) - stored
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged events were lost"


@pytest.mark.slow
def test_an_s3_outage_loses_nothing_and_healthz_tells_the_truth(tmp_path: Path, s3_endpoint: str) -> None:
    from fastapi.testclient import TestClient

    from traceglider.app import create_app
    from traceglider.config import load
    from traceglider.storage.s3 import S3Storage

    bucket = make_bucket(s3_endpoint)
    proxy = PausableProxy(int(s3_endpoint.rsplit(":", 1)[1]))
    settings = load(env={"TG_STORAGE": f"s3://{bucket}/tg", "TG_S3_ENDPOINT_URL": f"http://127.0.0.1:{proxy.port}",
                         "TG_SPOOL_DIR": str(tmp_path / "spool"), "TG_FLUSH_SECONDS": "0.1",
                         "TG_SECRET": "x" * 32, "TG_RATE_LIMIT": "0"})
    direct = S3Storage(f"s3://{bucket}/tg", endpoint_url=s3_endpoint)

    def wait(condition, timeout: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.05)
        return False

    def send(client: TestClient, prefix: str) -> list[str]:
        ids = [f"{prefix}-{n}" for n in range(10)]
        response = client.post("/collect", json={"site": SITE, "events": [
            {"id": i, "type": "pageview", "url": f"https://{SITE}/"} for i in ids]})
        assert response.status_code == 202
        return ids

    try:
        with TestClient(create_app(settings), headers={"user-agent": BROWSER_UA}) as client:
            assert wait(lambda: client.get("/healthz").status_code == 200)
            acked = send(client, "before")
            assert wait(lambda: sorted(stored_ids(direct)) == sorted(acked))
            proxy.pause()
            assert wait(lambda: client.get("/healthz").status_code == 503)
            for n in range(5):
                acked += send(client, f"during{n}")  # still accepted, into the spool
            time.sleep(0.5)
            assert client.get("/healthz").status_code == 503
            assert len(stored_ids(direct)) == 10
            proxy.resume()
            assert wait(lambda: sorted(stored_ids(direct)) == sorted(acked), timeout=60)
            assert wait(lambda: client.get("/healthz").status_code == 200)
    finally:
        proxy.close()
