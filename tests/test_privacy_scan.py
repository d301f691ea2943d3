"""No client IP is ever written anywhere: storage, spool, salts or logs."""

from __future__ import annotations

import http.client
import json
import signal
from pathlib import Path

from tests.helpers import BROWSER_UA, dataset_ids, free_port, wait_for
from tests.server import start_server

IPS = ["81.2.69.160", "203.0.113.77", "2001:db8::1234", "198.51.100.23"]
FORMS = {ip: {ip, ip.replace(".", "-"), ip.replace(":", "-")} for ip in IPS}


def test_known_ips_appear_in_no_byte_the_system_wrote(tmp_path: Path) -> None:
    data, spool = tmp_path / "data", tmp_path / "spool"
    port = free_port()
    # The server's log (DEBUG) lands in tmp_path and is scanned with everything else.
    server = start_server(data, port, TG_SPOOL_DIR=str(spool), TG_TRUSTED_PROXIES="1", TG_LOG_LEVEL="DEBUG")
    try:
        for n, ip in enumerate(IPS):
            for route, body in (
                ("/collect", {"site": "example.com", "events": [
                    {"id": f"e{n}", "type": "pageview", "url": f"https://example.com/?ip={ip}"}]}),
                ("/api/event", {"name": "pageview", "url": "https://example.com/x", "domain": "example.com"}),
                ("/collect", {"site": "example.com", "events": [{"id": 5}]}),  # a 400, logged or not
            ):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("POST", route, body=json.dumps(body), headers={
                    "content-type": "application/json", "x-forwarded-for": ip,
                    "user-agent": f"{BROWSER_UA} probe/{n}"})
                conn.getresponse().read()
        # the events stored (the pageviews of both routes), the server's log written meanwhile
        assert wait_for(lambda: len(dataset_ids(str(data))) == 2 * len(IPS), timeout=20)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert any(tmp_path.glob("server-*.log")), "the server log must be among the files scanned"
    # compaction writes the visits dataset, a second copy of the events: scanned too
    from traceglider.storage.compact import compact
    from traceglider.storage.local import LocalStorage

    assert compact(LocalStorage(data)) and any((data / "visits").rglob("*.parquet"))

    files = [p for root in (data, spool, tmp_path) for p in root.rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in files), "nothing was stored: the scan would prove nothing"
    import pyarrow.dataset as ds

    stored = ds.dataset(str(data / "events"), partitioning="hive").to_table().to_pylist()
    # The addresses were really used (country from 81.2.69.160), just never kept.
    assert "GB" in {row["country"] for row in stored} and len({row["visitor_id"] for row in stored}) >= 4
    # Compressed files can hide a string from a byte scan: scan the decoded values too.
    visits = ds.dataset(str(data / "visits"), partitioning="hive").to_table().to_pylist()
    assert visits and "GB" in {row["country"] for row in visits}
    decoded = "\n".join(str(value) for row in stored + visits for value in row.values()).encode()
    for blob, where in [(path.read_bytes(), str(path)) for path in files] + [(decoded, "decoded Parquet")]:
        for ip, forms in FORMS.items():
            for form in forms:
                assert form.encode() not in blob, f"{ip} found in {where}"


def test_no_ip_in_the_spool_of_a_killed_server(tmp_path: Path) -> None:
    """Segments that were never delivered (the server was killed) hold no address either."""

    data = tmp_path / "data"
    port = free_port()
    server = start_server(data, port, TG_FLUSH_SECONDS="3600", TG_TRUSTED_PROXIES="1")
    try:
        for n, ip in enumerate(IPS):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("POST", "/collect", body=json.dumps({"site": "example.com", "events": [
                {"id": f"k{n}", "type": "pageview", "url": "https://example.com/"}]}), headers={
                "content-type": "text/plain", "x-forwarded-for": ip, "user-agent": BROWSER_UA})
            assert conn.getresponse().status == 202
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)
    segments = list((data / "spool").rglob("*.open")) + list((data / "spool").rglob("*.wal"))
    assert segments, "the events should still be in the spool"
    for path in segments:
        content = path.read_bytes()
        assert b'"k0"' in content or b'"k3"' in content
        for forms in FORMS.values():
            for form in forms:
                assert form.encode() not in content, f"an address was found in {path}"
