"""How long a collector waits on an S3 that hangs: moto on loopback behind a proxy that,
once the site has data, accepts connections and answers nothing. Times a forget, a
stats request (both should answer 503 with Retry-After), and the shutdown with a batch
still spooled, for one TG_STORAGE_TIMEOUT. Figures in docs/durability.md.

    PYTHONPATH=$PWD .venv/bin/python bench/hanging_s3.py --timeout 10

Against an older checkout (without the setting), run it from that checkout with
`--timeout 0`, which leaves the setting out.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.getcwd())

import tests.conftest  # noqa: E402,F401 - fake AWS credentials, no TG_ settings from outside


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="TG_STORAGE_TIMEOUT in seconds (0: leave it unset, for older checkouts)")
    args = parser.parse_args()

    from fastapi.testclient import TestClient
    from moto.server import ThreadedMotoServer

    from tests.conftest import make_bucket
    from tests.helpers import BROWSER_UA, batch, free_port
    from tests.tcp_proxy import PausableProxy
    from traceglider.app import create_app
    from traceglider.config import load

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    proxy = PausableProxy(port)
    spool = tempfile.mkdtemp(prefix="tg-hanging-")
    env = {"TG_STORAGE": f"s3://{make_bucket(f'http://127.0.0.1:{port}')}/tg",
           "TG_S3_ENDPOINT_URL": f"http://127.0.0.1:{proxy.port}", "TG_SPOOL_DIR": spool,
           "TG_FLUSH_SECONDS": "0.2", "TG_SECRET": "x" * 32, "TG_API_TOKEN": "tok", "TG_RATE_LIMIT": "0",
           "TG_SITES": "example.com", "TG_COMPACT_SECONDS": "0"}
    if args.timeout:
        env["TG_STORAGE_TIMEOUT"] = str(args.timeout)
    auth = {"authorization": "Bearer tok"}
    results: dict[str, Any] = {}
    try:
        with TestClient(create_app(load(env=env)), headers={"user-agent": BROWSER_UA}) as client:
            assert client.post("/collect", json=batch("example.com", ["a1", "a2"])).status_code == 202
            assert client.post("/api/v1/forget", params={"visitor_id": "x"}, headers=auth).status_code == 200
            proxy.stall()
            for name, call in (
                ("forget", lambda: client.post("/api/v1/forget", params={"visitor_id": "x"}, headers=auth)),
                ("stats", lambda: client.get("/api/v1/stats/breakdown", headers=auth, params={
                    "site_id": "example.com", "period": "30d", "property": "event:page"})),
            ):
                started = time.monotonic()
                response = call()
                results[name] = (response.status_code, response.headers.get("retry-after"),
                                 time.monotonic() - started)
            assert client.post("/collect", json=batch("example.com", ["b1", "b2"])).status_code == 202
            time.sleep(1)  # the flusher is writing them to the silent store now
            started = time.monotonic()
        results["shutdown"] = (None, None, time.monotonic() - started)
    finally:
        proxy.close()
        server.stop()
    label = f"TG_STORAGE_TIMEOUT={args.timeout:g}" if args.timeout else "TG_STORAGE_TIMEOUT unset"
    print(f"{label}, load average {os.getloadavg()[0]:.1f}")
    for name, (status, retry_after, took) in results.items():
        answer = f"{status} (Retry-After {retry_after})" if status else "done"
        print(f"  {name:9} {answer:22} after {took:5.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
