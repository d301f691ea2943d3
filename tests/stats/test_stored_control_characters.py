"""A row with a NUL in its name, path and host, written to storage by something other
than the collector (or before the edge refused them), does not break the site's stats."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.helpers import row
from traceglider.config import load
from traceglider.stats.api import AppEngine, stats_router
from traceglider.storage.local import LocalStorage
from traceglider.storage.parquet import write_rows

TOKEN = "nul-rows-token-0123456"


@pytest.fixture
def client(tmp_path):  # type: ignore[no-untyped-def]
    storage = LocalStorage(tmp_path)
    write_rows(storage, [
        row("a", type="custom", name="a\x00b", path="/x\x00y", hostname="ex\x00ample.com",
            visitor_id="v1", session_id="s1"),
        row("b", visitor_id="v2", session_id="s2"),
    ], "seg1")
    settings = load(env={"TG_STORAGE": str(tmp_path), "TG_API_TOKEN": TOKEN, "TG_SECRET": "x" * 32})
    app = FastAPI()
    app.include_router(stats_router(settings, AppEngine(settings, storage)))
    with TestClient(app, headers={"authorization": f"Bearer {TOKEN}"}) as test_client:
        yield test_client


@pytest.mark.parametrize("query", [
    "aggregate?site_id=example.com&period=30d&metrics=visitors,events",
    "timeseries?site_id=example.com&period=7d",
    "breakdown?site_id=example.com&period=30d&property=event:name",
    "breakdown?site_id=example.com&period=30d&property=event:page",
    "breakdown?site_id=example.com&period=30d&property=event:hostname",
    "aggregate?site_id=example.com&period=30d&filters=event:page%3D%3D/p",
])
def test_every_stats_query_answers(client, query):
    response = client.get("/api/v1/stats/" + query)
    assert response.status_code == 200, response.text


def test_the_nul_name_is_counted_as_the_text_it_is(client):
    response = client.get("/api/v1/stats/breakdown?site_id=example.com&period=30d&property=event:name")
    assert {r["name"]: r["visitors"] for r in response.json()["results"]} == {"a\x00b": 1, "pageview": 1}
