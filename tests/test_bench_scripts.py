"""The benchmarks' load scripts send what the benchmarks claim to send."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_batch_lua_never_sends_the_same_event_id_twice_across_wrk_threads() -> None:
    ids, bodies = sent_by_wrk(threads=4)  # four threads started in the same second, as bench/ingest.py does
    assert len(ids) >= 40
    assert len(set(ids)) == len(ids)
    assert bodies


def test_the_in_process_benchmark_parses_the_body_wrk_sends() -> None:
    from bench.ingest_parts import body

    _, bodies = sent_by_wrk(threads=1)

    def without_ids(document: dict[str, Any]) -> dict[str, Any]:
        return {**document, "events": [{k: v for k, v in event.items() if k != "id"} for event in document["events"]]}

    assert without_ids(json.loads(body(7))) == without_ids(bodies[0])


def sent_by_wrk(threads: int) -> tuple[list[str], list[dict[str, Any]]]:
    """The event ids, and the first body, bench/batch.lua sent in one second of wrk."""
    if not shutil.which("wrk"):
        pytest.fail("wrk is missing: `make test` installs Debian's wrk")
    ids: list[str] = []
    bodies: list[dict[str, Any]] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with lock:
                ids.extend(event["id"] for event in body["events"])
                if not bodies:
                    bodies.append(body)
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        subprocess.run(["wrk", "-t", str(threads), "-c", str(threads), "-d", "1s",
                        "-s", str(ROOT / "bench" / "batch.lua"), f"http://127.0.0.1:{server.server_address[1]}/collect"],
                       check=True, capture_output=True, timeout=30)
    finally:
        server.shutdown()
        server.server_close()
    return ids, bodies
