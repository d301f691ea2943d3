"""Whatever a client sends is data: control characters, overlong names and absurd
numbers get a clear 4xx (or are made harmless) and never break a later stage."""

from __future__ import annotations

import pytest

from tests.helpers import BROWSER_UA, dataset_ids, wait_for
from tests.ingest.conftest import make_client

TOKEN = "hostile-input-token-0123"


@pytest.fixture
def open_client(tmp_path):  # type: ignore[no-untyped-def]
    """A collector with TG_SITES unset (the default) and the stats API on."""
    with make_client(tmp_path, TG_SITES="", TG_API_TOKEN=TOKEN, TG_COMPACT_SECONDS="0") as client:
        yield client


def aggregate(client, site="example.com"):  # type: ignore[no-untyped-def]
    return client.get(f"/api/v1/stats/aggregate?site_id={site}&period=30d",
                      headers={"authorization": f"Bearer {TOKEN}"})


def delivered(tmp_path, event_id):  # type: ignore[no-untyped-def]
    return wait_for(lambda: event_id in dataset_ids(str(tmp_path / "data")))


def event(**fields):  # type: ignore[no-untyped-def]
    return {"id": "x1", "type": "custom", "name": "signup", "url": "https://example.com/", **fields}


@pytest.mark.parametrize("fields, field", [
    ({"name": "a\u0000b"}, "events[0].name"),
    ({"url": "https://example.com/a\u0000b"}, "events[0].url"),
    ({"url": "https://exa\u0000mple.com/"}, "events[0].url"),
    ({"ref": "https://other.org/\u0007"}, "events[0].ref"),
    ({"id": "x\u001f1"}, "events[0].id"),
    ({"type": "click", "name": "Outbound\u0085"}, "events[0].name"),
])
def test_control_characters_in_names_urls_and_hosts_are_refused_at_collect(open_client, fields, field):
    response = open_client.post("/collect", json={"site": "example.com", "events": [event(**fields)]})
    assert response.status_code == 400
    assert response.json()["error"].startswith(f"{field}: must not contain control characters")


@pytest.mark.parametrize("document", [
    {"name": "a\u0000b", "url": "https://example.com/", "domain": "example.com"},
    {"name": "pageview", "url": "https://example.com/\u0000", "domain": "example.com"},
    {"name": "pageview", "url": "https://example.com/", "domain": "example.com", "referrer": "https://a\u0000/"},
])
def test_control_characters_are_refused_at_the_plausible_api(open_client, document):
    response = open_client.post("/api/event", json=document)
    assert response.status_code == 400 and "control characters" in response.json()["error"]


def test_a_nul_in_a_pixel_url_is_refused(open_client):
    response = open_client.get("/collect.gif?site=example.com&url=https://example.com/%00")
    assert response.status_code == 400 and "control characters" in response.json()["error"]


def test_the_reported_nul_event_leaves_the_sites_stats_working(open_client, tmp_path):
    # The repro: before, the row was stored and every query for the site 500ed.
    open_client.post("/collect", json={"site": "example.com", "events": [event(name="a\u0000b")]})
    assert open_client.post("/collect", json={"site": "example.com",
                                              "events": [event(id="fine", type="pageview")]}).status_code == 202
    assert delivered(tmp_path, "fine")
    response = aggregate(open_client)
    assert response.status_code == 200, response.text
    assert response.json()["results"]["visitors"]["value"] == 1


def test_free_text_keeps_its_words_and_loses_its_control_characters(open_client, tmp_path):
    import pyarrow.dataset as ds

    body = {"site": "example.com", "events": [event(
        id="t1", type="pageview", title="Tab\u0000one\u0007", props={"k\u0001": "line\u0000two"})]}
    assert open_client.post("/collect", json=body).status_code == 202
    assert delivered(tmp_path, "t1")
    stored = ds.dataset(str(tmp_path / "data" / "events"), format="parquet",
                        partitioning="hive").to_table(columns=["title", "props"]).to_pylist()
    assert stored == [{"title": "Tab one ", "props": '{"k ":"line two"}'}]


def test_a_site_name_too_long_for_a_partition_is_refused_and_delivery_goes_on(open_client, tmp_path):
    long_site = "a" * 247 + ".com"
    for site in (long_site, "a" * 242 + ".com:8080"):
        response = open_client.post("/collect", json={"site": site, "events": [event(type="pageview")]})
        assert response.status_code == 400 and "longer than 250 characters" in response.json()["error"]
    fits = "a" * 240 + ".com:8080"  # site=<it> is 254 bytes: a file name anywhere
    assert open_client.post("/collect", json={"site": fits, "events": [event(id="fits", type="pageview")]}
                            ).status_code == 202
    assert open_client.post("/collect", json={"site": "example.com", "events": [event(id="after", type="pageview")]}
                            ).status_code == 202
    assert delivered(tmp_path, "fits") and delivered(tmp_path, "after")
    health = open_client.get("/healthz")
    assert health.status_code == 200 and health.json()["quarantined_partitions"] == 0


@pytest.mark.parametrize("amount", ["1e999999999", "-1e999999999", 1e300, "1E+15"])
def test_an_absurd_revenue_amount_is_discarded_not_a_500(open_client, tmp_path, amount):
    # As Plausible: unusable revenue is dropped and the event kept (it was a 500).
    response = open_client.post("/api/event", json={
        "name": "Purchase", "url": "https://example.com/", "domain": "example.com",
        "revenue": {"amount": amount, "currency": "EUR"}}, headers={"user-agent": BROWSER_UA})
    assert response.status_code == 202
    import pyarrow.dataset as ds

    assert wait_for(lambda: (tmp_path / "data" / "events").is_dir())
    assert wait_for(lambda: ds.dataset(str(tmp_path / "data" / "events"), format="parquet",
                                       partitioning="hive").count_rows() == 1)
    stored = ds.dataset(str(tmp_path / "data" / "events"), format="parquet",
                        partitioning="hive").to_table(columns=["name", "revenue"]).to_pylist()
    assert stored == [{"name": "Purchase", "revenue": None}]


def test_a_domain_of_only_commas_is_a_400(open_client):
    response = open_client.post("/api/event", json={"name": "pageview", "url": "https://example.com/",
                                                    "domain": " , ,"})
    assert response.status_code == 400 and "required, the site domain" in response.json()["error"]


def consent(client, origin=None, referer=None, fetch_site=None, site="example.com"):  # type: ignore[no-untyped-def]
    headers = {"content-type": "text/plain"}
    for name, value in (("origin", origin), ("referer", referer), ("sec-fetch-site", fetch_site)):
        if value is not None:
            headers[name] = value
    return client.post("/consent", content=f'{{"site": "{site}", "consent": "granted"}}', headers=headers)


@pytest.mark.parametrize("headers", [
    {"origin": "https://evil.example"},  # the auto-submitted text/plain form of the report
    {"origin": "https://example.com.evil.example"},
    {"origin": "null"},  # a sandboxed frame hides where it is
    {"referer": "https://evil.example/page"},
    {"fetch_site": "cross-site"},
])
def test_a_consent_change_from_another_sites_page_is_refused_with_tg_sites_unset(open_client, headers):
    response = consent(open_client, **headers)
    assert response.status_code == 403 and "page of the site" in response.json()["error"]
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize("headers", [
    {"origin": "https://example.com"},
    {"origin": "https://www.example.com"},
    {"origin": "https://shop.example.com", "fetch_site": "cross-site"},
    {"referer": "https://example.com/pricing"},
    {"origin": "https://collector.test"},  # the collector's own pages (the demo)
    {},  # not a browser: it cannot set a cookie in anyone's browser
])
def test_a_consent_change_from_a_page_of_the_site_is_accepted(open_client, headers):
    response = consent(open_client, **headers)
    assert response.status_code == 200 and "tg_vid=" in response.headers["set-cookie"]


def test_a_configured_sites_page_may_not_send_for_another_configured_site(tmp_path):  # type: ignore[no-untyped-def]
    with make_client(tmp_path) as client:  # TG_SITES=example.com,shop.example.org
        body = {"site": "shop.example.org", "events": [event(type="pageview", url="https://shop.example.org/")]}
        refused = client.post("/collect", json=body, headers={"origin": "https://example.com"})
        assert refused.status_code == 403 and "may not send events for shop.example.org" in refused.json()["error"]
        assert client.post("/collect", json=body, headers={"origin": "https://shop.example.org"}).status_code == 202
        plausible = {"name": "pageview", "url": "https://shop.example.org/", "domain": "shop.example.org"}
        assert client.post("/api/event", json=plausible, headers={"origin": "https://example.com"}).status_code == 403


def test_a_planted_visitor_cookie_is_neither_stored_nor_refreshed(open_client, tmp_path):
    import pyarrow.dataset as ds

    planted = "P" * 22  # the right shape; any script on the page could have written it
    response = open_client.post("/collect", json={"site": "example.com", "events": [
        event(id="planted", type="pageview")]}, headers={"cookie": f"tg_vid={planted}"})
    assert response.status_code == 202 and "set-cookie" not in response.headers
    assert delivered(tmp_path, "planted")
    stored = ds.dataset(str(tmp_path / "data" / "events"), format="parquet",
                        partitioning="hive").to_table(columns=["visitor_id"]).to_pylist()
    assert stored[0]["visitor_id"] != planted and len(stored[0]["visitor_id"]) == 16  # cookieless
