"""Plausible clients from PyPI (test extras, installed by `make test`), driven against
a real `traceglider serve` on loopback, changing nothing but their base URL:

- `plausible-events` (Events API; it sends every screen as `app://localhost/<path>`),
  whose one outside call, a look-up of the machine's public address at ipify.org, is
  replaced by a test-net address: nothing leaves loopback;
- `plausible-mcp`, the MCP server, over MCP's stdio transport with the `mcp` SDK's
  client, telemetry off (`DO_NOT_TRACK=1`); it calls Stats API v1 and the Sites API.

`kctl-plausible` needs Python 3.12 and is not driven here (docs/stats.md)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest

from tests.helpers import BROWSER_UA, free_port, wait_for
from tests.server import start_server
from traceglider.storage.local import LocalStorage
from traceglider.storage.parquet import write_rows

SITE = "example.com"
TOKEN = "clients-token"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("clients")
    data = root / "data"
    now = int(time.time() * 1_000_000)
    # today's visits, as the collector would have stored them
    rows = [{"event_id": f"e{i}", "site": SITE, "type": "pageview", "name": "pageview", "received_at": now - i * 1000,
             "path": "/" if i % 2 else "/pricing", "hostname": SITE, "visitor_id": f"v{i}",
             "source": "Google" if i < 3 else "Direct / None", "device_type": "Desktop", "country": "DE"}
            for i in range(5)]
    write_rows(LocalStorage(data), rows, "seed")
    port = free_port()
    process = start_server(data, port, TG_API_TOKEN=TOKEN, TG_SECRET="c" * 32, TG_SITES=SITE)
    try:
        yield f"http://127.0.0.1:{port}", data
    finally:
        process.terminate()
        process.wait(timeout=30)


def api(origin: str, path: str, **params: str) -> Any:
    import urllib.parse
    import urllib.request

    request = urllib.request.Request(f"{origin}{path}?{urllib.parse.urlencode(params)}",
                                     headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def stored(data: Path) -> list[dict[str, Any]]:
    try:
        return ds.dataset(str(data / "events"), format="parquet", partitioning="hive").to_table().to_pylist()
    except (FileNotFoundError, OSError):
        return []


def test_plausible_events_from_pypi_records_app_screens(server: tuple[str, Path]) -> None:
    from plausible_events import PlausibleEvents

    class Offline(PlausibleEvents):
        def _get_ip(self) -> str:  # the client asks ipify.org; tests stay on loopback
            return "203.0.113.50"

    origin, data = server
    client = Offline(SITE, headers={"User-Agent": BROWSER_UA}, api=f"{origin}/api/event", timeout=0.2)
    client.worker.daemon = True  # its worker waits for tasks forever
    client.pageview("login", utm={"source": "newsletter"})
    client.event("Signup", props={"plan": "pro", "seats": 3}, path="signup")

    def arrived() -> list[dict[str, Any]]:
        return [r for r in stored(data) if r["hostname"] == "localhost"]
    assert wait_for(lambda: len(arrived()) == 2, timeout=30), stored(data)
    by_name = {r["name"]: r for r in arrived()}
    assert by_name["pageview"]["path"] == "/login" and by_name["pageview"]["utm_source"] == "newsletter"
    assert by_name["pageview"]["url"] == "app://localhost/login?utm_source=newsletter"
    assert by_name["Signup"]["path"] == "/signup"
    assert json.loads(by_name["Signup"]["props"]) == {"plan": "pro", "seats": "3"}
    assert by_name["Signup"]["browser"] == "Chrome" and by_name["Signup"]["device_type"] == "Desktop"


async def _mcp_calls(origin: str, home: Path) -> dict[str, str]:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "PLAUSIBLE_BASE_URL": origin,
           "PLAUSIBLE_API_KEY": TOKEN, "DO_NOT_TRACK": "1", "MCP_TELEMETRY_OPT_OUT": "1"}
    params = StdioServerParameters(command=sys.executable, args=["-m", "plausible_mcp.server"], env=env)
    out: dict[str, str] = {}
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = {t.name for t in (await session.list_tools()).tools}
        assert {"doctor", "get_aggregate_stats", "get_breakdown", "get_timeseries"} <= tools
        for name, arguments in [
            ("doctor", {}),
            ("get_aggregate_stats", {"site_id": SITE, "date_range": "day", "metrics": ["visitors", "pageviews"]}),
            ("get_breakdown", {"site_id": SITE, "date_range": "day", "property_name": "source"}),
            ("device", {"site_id": SITE, "date_range": "day", "property_name": "device"}),
            ("get_timeseries", {"site_id": SITE, "date_range": "7d"}),
            ("get_realtime_visitors", {"site_id": SITE}),
        ]:
            result = await session.call_tool("get_breakdown" if name == "device" else name, arguments)
            out[name] = "".join(getattr(c, "text", "") for c in result.content)
    return out


def test_plausible_mcp_from_pypi_over_stdio(server: tuple[str, Path], tmp_path: Path) -> None:
    origin, _ = server
    out = asyncio.run(asyncio.wait_for(_mcp_calls(origin, tmp_path), timeout=120))
    doctor = json.loads(out["doctor"])
    assert doctor["status"] == "healthy" and doctor["sample_sites"] == [SITE]
    # what the MCP server relays is what the API answers (the seed's 5 visitors, and
    # the other test's app screen when it ran first)
    totals = json.loads(out["get_aggregate_stats"])["totals"]
    direct = api(origin, "/api/v1/stats/aggregate", site_id=SITE, period="day", metrics="visitors,pageviews")
    assert totals == {m: v["value"] for m, v in direct["results"].items()} and totals["visitors"] >= 5
    breakdown = json.dumps(json.loads(out["get_breakdown"]))
    assert '"Google"' in breakdown and '"Direct / None"' in breakdown, breakdown
    assert json.loads(out["device"])["results"][0]["device"] == "Desktop"  # Plausible's name
    timeseries = json.loads(out["get_timeseries"])
    assert "results" in json.dumps(timeseries) or "timeseries" in json.dumps(timeseries), timeseries
    assert out["get_realtime_visitors"].strip(), out
