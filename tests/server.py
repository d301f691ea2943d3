"""A real `traceglider serve` process for tests and benchmarks: start it, load it
with batches, kill it."""

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

from tests.helpers import BROWSER_UA

SITE = "example.com"


def wait_healthy(port: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def start_server(data: Path, port: int, **env: str) -> subprocess.Popen[bytes]:
    """`traceglider serve` on `data`, answering /healthz; its output goes to
    `<data>/../server-<port>.log` (an unread pipe would fill and stall it)."""
    environment = {**os.environ, "TG_STORAGE": str(data), "TG_FLUSH_SECONDS": "0.2",
                   "TG_SITES": SITE, "TG_LOG_LEVEL": "WARNING", "TG_RATE_LIMIT": "0",
                   "TG_DASHBOARD_PREPARE": "false", "TG_COMPACT_SECONDS": "0", **env}
    data.parent.mkdir(parents=True, exist_ok=True)
    log = data.parent / f"server-{port}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "traceglider", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=environment, stdout=out, stderr=subprocess.STDOUT)
    if not wait_healthy(port):
        process.kill()
        raise AssertionError(f"server did not start: {log.read_text()[-2000:]}")
    return process


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


def kill_round(data: Path, port: int, acked: list[str], rng: random.Random, threads: int = 6) -> None:
    """Start the server, load it from `threads` senders, SIGKILL it at a random moment
    once traffic flows."""
    process = start_server(data, port)
    stop = threading.Event()
    workers = [threading.Thread(target=sender, args=(port, acked, stop)) for _ in range(threads)]
    for worker in workers:
        worker.start()
    before, deadline = len(acked), time.monotonic() + 30
    while len(acked) == before and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(rng.uniform(0.0, 0.6))
    process.send_signal(signal.SIGKILL)
    process.wait()
    stop.set()
    for worker in workers:
        worker.join()


def drain(data: Path, port: int) -> None:
    """Start the server once more and stop it cleanly: the spool is delivered."""
    process = start_server(data, port)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
