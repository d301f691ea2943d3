"""Behind a reverse proxy on defaults: who is believed about the client's address, and
a rate limit that never refuses real visitors who share one."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest
from fastapi.testclient import TestClient

from tests.helpers import BROWSER_UA, batch
from traceglider.app import create_app
from traceglider.config import load
from traceglider.errors import ConfigError
from traceglider.ingest.enrich import identity
from traceglider.proxies import TrustedProxies

SITE = "example.com"


def collector(tmp_path: Path, peer: str, **env: str) -> TestClient:
    """The app on its defaults (only where the data goes is set), seen from `peer`."""
    settings = load(env={"TG_STORAGE": str(tmp_path / "data"), **env})
    return TestClient(create_app(settings), base_url="http://collector.test",
                      headers={"user-agent": BROWSER_UA}, client=(peer, 50000))


def stored_visitors(client: TestClient, tmp_path: Path) -> list[dict[str, Any]]:
    assert client.app.state.sink.flush()  # type: ignore[attr-defined]
    table = ds.dataset(str(tmp_path / "data" / "events"), partitioning="hive").to_table(
        columns=["event_id", "visitor_id", "country"])
    return table.to_pylist()


def visitor_address(n: int) -> str:
    return f"81.{2 + n // 65536}.{n // 256 % 256}.{n % 256}"


def test_1200_visitors_behind_a_same_host_proxy_on_defaults_are_all_accepted_as_distinct_visitors(
        tmp_path, monkeypatch):
    # Each new address costs one scrypt derivation of its cookieless key (15 ms, 18 of
    # this test's 28 s): a cheaper one derives distinct keys through the same code.
    monkeypatch.setattr(identity, "KDF_N", 2 ** 6)
    with collector(tmp_path, "127.0.0.1") as client:
        codes = [client.post("/collect", json=batch(SITE, [f"v{n}"]),
                             headers={"x-forwarded-for": visitor_address(n)}).status_code
                 for n in range(1200)]
        assert codes.count(202) == 1200, {code: codes.count(code) for code in set(codes)}
        rows = stored_visitors(client, tmp_path)
    assert len(rows) == 1200
    assert len({row["visitor_id"] for row in rows}) == 1200
    assert client.get("/healthz").json()["proxy"]["ignored_forwarded_for"] == 0


def test_a_clients_own_forwarded_for_without_a_trusted_proxy_is_ignored_and_said_once(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="traceglider.ingest")
    with collector(tmp_path, "203.0.113.7", TG_RATE_LIMIT="6") as client:
        codes = [client.post("/collect", json=batch(SITE, [f"s{n}"]),
                             headers={"x-forwarded-for": visitor_address(n)}).status_code
                 for n in range(8)]
        # Rotating X-Forwarded-For neither escapes the limit of the real address...
        assert codes[:6] == [202] * 6 and codes[6:] == [429, 429]
        refused = client.post("/collect", json=batch(SITE, ["s9"]), headers={"x-forwarded-for": "1.1.1.1"})
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        # ...nor makes new visitors: all are the one peer.
        rows = stored_visitors(client, tmp_path)
        assert len(rows) == 6 and len({row["visitor_id"] for row in rows}) == 1
        proxy = client.get("/healthz").json()["proxy"]
    assert proxy["ignored_forwarded_for"] == 9
    assert "TG_TRUSTED_PROXIES" in proxy["warning"] and "public address" in proxy["warning"]
    warnings = [r for r in caplog.records if "X-Forwarded-For is ignored" in r.getMessage()]
    assert len(warnings) == 1
    assert "203.0.113.7" not in caplog.text and "203.0.113.7" not in str(proxy)


def test_a_visitors_own_forwarded_for_entries_through_a_trusted_proxy_are_not_believed(tmp_path):
    with collector(tmp_path, "127.0.0.1") as client:
        for n, forwarded in enumerate(["81.2.69.160", "6.6.6.6, 81.2.69.160", "10.9.9.9, 81.2.69.160"]):
            assert client.post("/collect", json=batch(SITE, [f"c{n}"]),
                               headers={"x-forwarded-for": forwarded}).status_code == 202
        rows = stored_visitors(client, tmp_path)
    assert len({row["visitor_id"] for row in rows}) == 1
    assert {row["country"] for row in rows} == {"GB"}  # 81.2.69.160, not 6.6.6.6


def test_configured_proxy_networks_are_believed_and_loopback_then_only_if_listed(tmp_path):
    with collector(tmp_path, "10.1.2.3", TG_TRUSTED_PROXIES="10.0.0.0/8, 192.168.1.5") as client:
        for n in range(3):
            # Two proxies of ours in a chain: both hops are skipped.
            client.post("/collect", json=batch(SITE, [f"n{n}"]),
                        headers={"x-forwarded-for": f"{visitor_address(n)}, 10.0.0.9"})
        rows = stored_visitors(client, tmp_path)
        assert len({row["visitor_id"] for row in rows}) == 3
    with collector(tmp_path / "b", "127.0.0.1", TG_TRUSTED_PROXIES="10.0.0.0/8") as client:
        client.post("/collect", json=batch(SITE, ["l"]), headers={"x-forwarded-for": "81.2.69.160"})
        assert client.get("/healthz").json()["proxy"]["ignored_forwarded_for"] == 1


def test_visitors_sharing_an_address_are_not_refused_on_defaults(tmp_path):
    """An office or a carrier's NAT: 600 batches from one address and one browser build
    within seconds (far more than its visitors send) are all accepted."""
    with collector(tmp_path, "198.51.100.20") as client:
        codes = [client.post("/collect", json=batch(SITE, [f"o{n}"])).status_code for n in range(600)]
    assert codes.count(202) == 600


def test_the_limit_counts_address_and_user_agent_apart(tmp_path):
    with collector(tmp_path, "198.51.100.21", TG_RATE_LIMIT="2") as client:
        first = [client.post("/collect", json=batch(SITE, [f"a{n}"])).status_code for n in range(3)]
        other = client.post("/collect", json=batch(SITE, ["b"]), headers={"user-agent": BROWSER_UA + " Edg/130"})
    assert first == [202, 202, 429] and other.status_code == 202


@pytest.mark.parametrize("spec, peer, forwarded, client", [
    ("loopback", "127.0.0.1", "81.2.69.160", "81.2.69.160"),
    ("loopback", "::1", "2001:db8::5", "2001:db8::5"),
    ("loopback", "::ffff:127.0.0.1", "81.2.69.160", "81.2.69.160"),
    ("loopback", "203.0.113.7", "81.2.69.160", "203.0.113.7"),
    ("loopback", "127.0.0.1", "unknown", "127.0.0.1"),
    ("loopback", "127.0.0.1", "127.0.0.1, 127.0.0.2", "127.0.0.1"),
    ("0", "127.0.0.1", "81.2.69.160", "127.0.0.1"),
    ("1", "203.0.113.7", "6.6.6.6, 81.2.69.160", "81.2.69.160"),
    ("2", "203.0.113.7", "6.6.6.6, 81.2.69.160, 10.0.0.1", "81.2.69.160"),
    ("2", "203.0.113.7", "81.2.69.160", "203.0.113.7"),
    ("10.0.0.0/8,loopback", "10.0.0.2", "81.2.69.160, 127.0.0.1", "81.2.69.160"),
    ("192.168.1.5", "192.168.1.5", "[2001:db8::7]", "2001:db8::7"),
])
def test_who_is_the_client(spec, peer, forwarded, client):
    assert TrustedProxies(spec).client(peer, forwarded) == client


@pytest.mark.parametrize("raw", ["-1", "proxy.example", "10.0.0.0/33", "1.2.3"])
def test_a_bad_trusted_proxies_setting_is_a_config_error(raw):
    with pytest.raises(ConfigError, match="TG_TRUSTED_PROXIES"):
        load(env={"TG_TRUSTED_PROXIES": raw})


def test_the_setting_round_trips_through_the_environment_for_workers():
    settings = load(env={"TG_TRUSTED_PROXIES": " 10.0.0.0/8 , loopback"})
    assert load(env={"TG_TRUSTED_PROXIES": str(settings.trusted_proxies)}).trusted_proxies == settings.trusted_proxies
    assert str(load(env={}).trusted_proxies) == "loopback"
