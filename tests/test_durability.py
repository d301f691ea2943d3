"""Nothing accepted is ever lost: kill -9 at random moments, and storage outages."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.conftest import make_bucket
from tests.helpers import BROWSER_UA, free_port, stored_ids, wait_for
from tests.server import SITE, drain, kill_round
from tests.tcp_proxy import PausableProxy


@pytest.mark.slow
def test_every_acknowledged_event_survives_kill_9(tmp_path: Path) -> None:
    from traceglider.storage.local import LocalStorage

    data, rng, acked = tmp_path / "data", random.Random(7), []
    for _round in range(6):
        kill_round(data, free_port(), acked, rng)
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
        return wait_for(condition, timeout, step=0.05)

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
            # the flusher has sealed them for delivery, and they wait in the spool
            assert wait(lambda: client.get("/healthz").json()["pending_events"] >= 50
                        and client.get("/healthz").json()["spool_segments"] >= 1)
            assert client.get("/healthz").status_code == 503
            assert len(stored_ids(direct)) == 10
            proxy.resume()
            assert wait(lambda: sorted(stored_ids(direct)) == sorted(acked), timeout=60)
            assert wait(lambda: client.get("/healthz").status_code == 200)
    finally:
        proxy.close()
