"""POST /collect and friends, over HTTP against the real app and real local storage."""

from __future__ import annotations

import json
import time

import pytest

from tests.helpers import batch, dataset_ids
from tests.ingest.conftest import make_client


def wait_for_ids(root, expected, timeout=10.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if sorted(dataset_ids(root)) == sorted(expected):
                return True
        except (FileNotFoundError, OSError):
            pass
        time.sleep(0.05)
    return False


def test_a_batch_is_accepted_and_lands_in_storage(client, tmp_path):
    response = client.post("/collect", json=batch("example.com", ["a", "b"]))
    assert response.status_code == 202 and response.json() == {"accepted": 2}
    assert wait_for_ids(str(tmp_path / "data"), ["a", "b"])


def test_send_beacon_text_plain_is_accepted(client):
    body = json.dumps(batch("example.com", ["c"]))
    response = client.post("/collect", content=body, headers={"content-type": "text/plain;charset=UTF-8"})
    assert response.status_code == 202


@pytest.mark.parametrize(
    "kwargs, status, message",
    [
        ({"content": b"{", "headers": {"content-type": "application/json"}}, 400, "body is not valid JSON"),
        ({"content": b"{}", "headers": {"content-type": "application/xml"}}, 415, "content-type must be"),
        ({"content": b"{}", "headers": {}}, 415, "content-type must be"),
        ({"json": batch("other.com", ["x"])}, 403, "site 'other.com' is not configured"),
        ({"json": batch("example.com", ["x"]), "headers": {"origin": "https://evil.test"}}, 403, "origin"),
        ({"content": b"[" + b" " * 600_000 + b"]", "headers": {"content-type": "application/json"}},
         413, "larger than"),
    ],
)
def test_bad_requests_get_a_clear_4xx(client, kwargs, status, message):
    response = client.post("/collect", **kwargs)
    assert response.status_code == status
    assert message in response.json()["error"]


def test_a_declared_oversized_body_is_refused_before_reading(client):
    response = client.post("/collect", content=b"{}", headers={
        "content-type": "application/json", "content-length": "999999999"})
    assert response.status_code == 413


def test_wrong_method_is_405(client):
    assert client.get("/collect").status_code == 405
    assert client.put("/collect", json={}).status_code == 405


def test_cors_preflight_is_answered_and_cached_for_configured_sites(client):
    response = client.options("/collect", headers={
        "origin": "https://www.example.com", "access-control-request-method": "POST",
        "access-control-request-headers": "content-type"})
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "https://www.example.com"
    assert response.headers["access-control-allow-credentials"] == "true"
    assert response.headers["access-control-max-age"] == "86400"
    denied = client.options("/collect", headers={"origin": "https://evil.test"})
    assert denied.status_code == 403


def test_cors_headers_on_the_answer(client):
    response = client.post("/collect", json=batch("example.com", ["d"]),
                           headers={"origin": "https://blog.example.com"})
    assert response.headers["access-control-allow-origin"] == "https://blog.example.com"


@pytest.mark.parametrize("origin", [None, "https://blog.example.com"])
def test_the_answer_carries_the_headers_of_the_documented_route(client, origin):
    """The 202 is sent as two ASGI messages without a Starlette Response: it has the
    headers that Response gives the FastAPI route of the same path, in their order."""
    from starlette.responses import Response

    from traceglider.ingest import edge

    headers = {"origin": origin} if origin else {}
    answer = client.post("/collect", json=batch("example.com", ["h1", "h2"]), headers=headers)
    expected = Response(b'{"accepted":2}', status_code=202, headers=edge.cors_headers(origin),
                        media_type="application/json")
    assert answer.status_code == 202 and answer.content == b'{"accepted":2}'
    assert answer.headers.multi_items() == [(k.decode(), v.decode()) for k, v in expected.raw_headers]


def test_the_pixel_records_a_pageview(client, tmp_path):
    response = client.get("/collect.gif", params={"site": "example.com", "url": "https://example.com/mail"})
    assert response.status_code == 200 and response.headers["content-type"] == "image/gif"
    assert response.content.startswith(b"GIF89a")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(dataset_ids(str(tmp_path / "data"))) != 1:
        time.sleep(0.05)
    assert len(dataset_ids(str(tmp_path / "data"))) == 1
    assert client.get("/collect.gif", params={"site": "example.com"}).status_code == 400


def test_urls_are_split_into_columns(client, tmp_path):
    import pyarrow.dataset as ds

    client.post("/collect", json={"site": "example.com", "events": [{
        "id": "u1", "type": "pageview", "url": "https://example.com/shop/item?utm_source=news&utm_campaign=bf",
        "ref": "https://www.google.com/search?q=x"}]})
    assert wait_for_ids(str(tmp_path / "data"), ["u1"])
    table = ds.dataset(str(tmp_path / "data" / "events"), partitioning="hive").to_table()
    stored = table.to_pylist()[0]
    assert (stored["site"], stored["hostname"], stored["path"]) == ("example.com", "example.com", "/shop/item")
    assert (stored["utm_source"], stored["utm_campaign"], stored["referrer_host"]) == ("news", "bf", "google.com")


def test_healthz_reports_storage_and_spool(client):
    deadline = time.monotonic() + 5
    while client.get("/healthz").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["storage_ok"] is True and "spool_bytes" in body
    client.post("/collect", json=batch("example.com", ["synced"]))
    assert client.get("/healthz").json()["spool_fsync_ms"]["count"] >= 1  # each 202 waited for one


def test_healthz_is_503_while_storage_is_unreachable(tmp_path):
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x")
    with make_client(tmp_path, TG_STORAGE=str(blocker / "data"), TG_SPOOL_DIR=str(tmp_path / "spool"),
                     TG_SECRET="s" * 32) as client:
        deadline = time.monotonic() + 10
        while client.get("/healthz").json()["storage_ok"] is None and time.monotonic() < deadline:
            time.sleep(0.05)  # null until the first probe; then it must say false
        response = client.get("/healthz")
        assert response.status_code == 503 and response.json()["storage_ok"] is False
        # Events are still accepted into the spool: nothing is lost while storage is down.
        assert client.post("/collect", json=batch("example.com", ["kept"])).status_code == 202


def test_the_tracker_is_served_with_etag_and_compression(client):
    response = client.get("/t.js", headers={"accept-encoding": "br, gzip"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/javascript")
    assert response.headers["content-encoding"] == "br" and "max-age" in response.headers["cache-control"]
    again = client.get("/insertTracker.js", headers={"if-none-match": response.headers["etag"]})
    assert again.status_code == 304
    gz = client.get("/t.js", headers={"accept-encoding": "gzip"})
    assert gz.headers["content-encoding"] == "gzip" and gz.content == response.content


def test_rate_limit_answers_429(tmp_path):
    with make_client(tmp_path, TG_RATE_LIMIT="2") as client:
        responses = [client.post("/collect", json=batch("example.com", [f"r{i}"])) for i in range(3)]
        assert [r.status_code for r in responses] == [202, 202, 429]
        assert int(responses[-1].headers["retry-after"]) >= 1


def test_the_demo_site_and_its_spa_routes_are_served(client):
    assert "t.js" in client.get("/demo/").text
    assert client.get("/demo/app/settings").status_code == 200
    assert client.get("/", follow_redirects=False).headers["location"] == "/demo/"


def test_the_favicon_is_served_so_pages_log_no_404(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200 and response.headers["content-type"].startswith("image/svg+xml")


def test_a_refused_batch_still_carries_cors_headers_so_the_browser_can_read_why(client):
    response = client.post("/collect", content=b"{", headers={
        "content-type": "text/plain", "origin": "https://www.example.com"})
    assert response.status_code == 400
    assert response.headers["access-control-allow-origin"] == "https://www.example.com"


def test_answers_expose_retry_after_so_the_tracker_can_wait_as_long_as_asked(client):
    response = client.post("/collect", json=batch("example.com", ["r"]),
                           headers={"origin": "https://blog.example.com"})
    assert response.headers["access-control-expose-headers"] == "Retry-After"


def test_collect_is_still_described_in_the_openapi_document(client):
    operation = client.get("/openapi.json").json()["paths"]["/collect"]["post"]
    assert operation["summary"] == "Receive a batch of events"
    assert "requestBody" in operation and {"202", "400", "413", "429", "503"} <= set(operation["responses"])


def test_the_fastapi_route_of_collect_answers_as_the_asgi_endpoint_does(client, tmp_path):
    """The app answers POST /collect before routing; its route, reached when that is off,
    gives the same answers."""
    answers = []
    for fast in (client.app.collector, None):  # type: ignore[attr-defined]
        client.app.collector = fast  # type: ignore[attr-defined]
        good = client.post("/collect", json=batch("example.com", [f"f{fast is None}"]),
                           headers={"origin": "https://www.example.com"})
        bad = client.post("/collect", content=b"{", headers={"content-type": "text/plain"})
        answers.append((good.status_code, good.json(), good.headers["access-control-allow-origin"],
                        bad.status_code, bad.json()))
    assert answers[0] == answers[1] == (202, {"accepted": 1}, "https://www.example.com", 400,
                                        {"error": answers[0][4]["error"]})
    assert wait_for_ids(str(tmp_path / "data"), ["fFalse", "fTrue"])


def test_a_refusal_of_the_rate_limit_or_a_full_spool_says_when_to_come_back(tmp_path):
    with make_client(tmp_path, TG_SPOOL_MAX_BYTES="100") as client:
        response = client.post("/collect", json=batch("example.com", ["full"]))
        assert response.status_code == 503 and int(response.headers["retry-after"]) > 0
