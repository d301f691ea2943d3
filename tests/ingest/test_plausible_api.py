"""POST /api/event over HTTP against the real app and local storage: Plausible's
documented example, its leniency (the bad part dropped, the event kept) and its
answers (`x-plausible-dropped`, `X-Debug-Request`), and where we stay strict."""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any

import orjson
import pyarrow.dataset as ds
import pytest
from fastapi.testclient import TestClient

from tests.helpers import wait_for
from tests.ingest.conftest import make_client

PLAUSIBLE_DOCS_UA = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_6) AppleWebKit/537.36 (KHTML, like Gecko) "
                     "Chrome/85.0.4183.121 Safari/537.36 OPR/71.0.3770.284")


def stored(root: Path) -> list[dict[str, Any]]:
    if not glob.glob(str(root / "events/site=*/date=*/*.parquet")):
        return []
    return ds.dataset(str(root / "events"), format="parquet", partitioning="hive").to_table().to_pylist()


def rows_where(root: Path, **match: Any) -> list[dict[str, Any]]:
    return [r for r in stored(root) if all(r.get(k) == v for k, v in match.items())]


@pytest.fixture
def api(tmp_path: Path) -> Any:
    with make_client(tmp_path, TG_SITES="example.com,dummy.site", TG_TRUSTED_PROXIES="1") as client:
        yield client


def post(client: TestClient, document: Any, **headers: str) -> Any:
    return client.post("/api/event", content=orjson.dumps(document),
                       headers={"content-type": "application/json", **headers})


def test_plausibles_documented_example(api: TestClient, tmp_path: Path) -> None:
    # events-api.md: "Try it yourself", answered 202.
    response = post(api, {"name": "pageview", "url": "http://dummy.site", "domain": "dummy.site",
                          "screen_width": 1666},
                    **{"user-agent": PLAUSIBLE_DOCS_UA, "x-forwarded-for": "127.0.0.1"})
    assert response.status_code == 202 and response.text == "ok"
    assert "x-plausible-dropped" not in response.headers
    assert wait_for(lambda: rows_where(tmp_path / "data", site="dummy.site"))
    [row] = rows_where(tmp_path / "data", site="dummy.site")
    assert (row["hostname"], row["path"], row["screen_width"]) == ("dummy.site", "/", 1666)


@pytest.mark.parametrize(("document", "expected"), [
    # Plausible's npm script for an element tagged plausible-event-name=Signup
    ({"n": "Signup", "u": "https://example.com/a", "d": "example.com", "$": {}},
     {"name": "Signup", "path": "/a", "revenue": None}),
    ({"n": "Purchase", "u": "https://example.com/b", "d": "example.com",
      "$": {"amount": "many", "currency": "EUR"}}, {"name": "Purchase", "path": "/b", "revenue": None}),
    # Plausible's advice for mobile apps (and what the PyPI client plausible-events sends)
    ({"name": "pageview", "url": "app://localhost/login", "domain": "example.com"},
     {"hostname": "localhost", "path": "/login"}),
    ({"name": "pageview", "url": "/blog?utm_source=news&token=secret", "domain": "example.com"},
     {"hostname": "(none)", "path": "/blog", "utm_source": "news", "url": "/blog?utm_source=news"}),
    ({"name": "Signup", "url": "https://example.com/c", "domain": "example.com",
      "props": {f"p{i:02}": str(i) for i in range(35)}},
     {"name": "Signup", "path": "/c", "props": orjson.dumps({f"p{i:02}": str(i) for i in range(30)}).decode()}),
])
def test_plausibles_leniency_keeps_the_event(api: TestClient, tmp_path: Path, document: Any,
                                             expected: dict[str, Any]) -> None:
    response = post(api, document)
    assert response.status_code == 202 and "x-plausible-dropped" not in response.headers
    assert wait_for(lambda: rows_where(tmp_path / "data", **expected)), stored(tmp_path / "data")


def test_a_dropped_event_is_202_with_x_plausible_dropped(api: TestClient, tmp_path: Path) -> None:
    bot = {"user-agent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"}
    response = post(api, {"n": "pageview", "u": "https://example.com/", "d": "example.com"}, **bot)
    assert response.status_code == 202 and response.headers["x-plausible-dropped"] == "1"
    both = post(api, {"n": "pageview", "u": "https://example.com/", "d": "example.com,dummy.site"}, **bot)
    assert both.headers["x-plausible-dropped"] == "2"
    assert stored(tmp_path / "data") == []


def test_x_debug_request_answers_the_address_counted(api: TestClient, tmp_path: Path) -> None:
    response = post(api, {"n": "pageview", "u": "https://example.com/debug", "d": "example.com"},
                    **{"x-debug-request": "true", "x-forwarded-for": "203.0.113.7"})
    assert response.status_code == 200 and response.text == "203.0.113.7"
    # the event itself is recorded as any other, and the address nowhere
    assert wait_for(lambda: rows_where(tmp_path / "data", path="/debug"))
    assert "203.0.113.7" not in str(stored(tmp_path / "data"))


@pytest.mark.parametrize(("document", "status", "message"), [
    ({"n": "pageview", "u": "https://other.org/", "d": "other.org"}, 403, "not configured"),
    ({"n": "pageview", "u": "data:text/html,x", "d": "example.com"}, 400, "scheme is not allowed"),
    ({"n": "pageview", "u": "https://example.com/" + "a" * 2100, "d": "example.com"}, 400, "longer than"),
    ({"n": "x", "u": "https://example.com/", "d": "example.com", "p": {"k": "v" * 2001}}, 400, "longer than"),
])
def test_it_stays_strict_where_leniency_would_hurt(api: TestClient, tmp_path: Path, document: Any,
                                                   status: int, message: str) -> None:
    response = post(api, document)
    assert response.status_code == status and message in response.json()["error"]
    assert stored(tmp_path / "data") == []


def test_an_oversized_body_is_413(api: TestClient) -> None:
    response = api.post("/api/event", content=b"[" + b" " * 600_000 + b"]",
                        headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_a_city_database_fills_region_and_city(tmp_path: Path) -> None:
    from tests.geo_db import write_city_db

    db = write_city_db(tmp_path / "city.mmdb")
    with make_client(tmp_path, TG_SITES="example.com", TG_TRUSTED_PROXIES="1", TG_GEOIP_DB=str(db)) as client:
        response = post(client, {"n": "pageview", "u": "https://example.com/geo", "d": "example.com"},
                        **{"x-forwarded-for": "198.51.100.20"})
        assert response.status_code == 202
        assert wait_for(lambda: rows_where(tmp_path / "data", path="/geo"))
    [row] = rows_where(tmp_path / "data", path="/geo")
    assert (row["country"], row["region"], row["city"], row["city_name"]) == ("US", "US-MD", 4347778, "Baltimore")
