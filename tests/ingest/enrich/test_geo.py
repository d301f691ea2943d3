"""The geo step finds the country offline; local addresses have none."""

from __future__ import annotations

import pytest

from tests.geo_db import write_city_db
from traceglider.errors import ConfigError
from traceglider.ingest.enrich.geo import (
    Geoip2FastLookup,
    MaxMindLookup,
    make_geo_step,
    open_lookup,
    record_location,
)

from .conftest import make_request, make_row

BUNDLED = Geoip2FastLookup()

# Addresses are only data here: nothing is sent anywhere.
@pytest.mark.parametrize(("ip", "country"), [
    ("81.2.69.160", "GB"),
    ("2a00:1450:4001::1", "DE"),
    ("::ffff:81.2.69.160", "GB"),
    ("127.0.0.1", None),
    ("::1", None),
    ("10.1.2.3", None),
    ("192.168.0.10", None),
    ("172.16.5.4", None),
    ("fd00::1", None),
    ("169.254.1.1", None),
    ("not an address", None),
    (None, None),
])
def test_country_from_the_bundled_database(ip: str | None, country: str | None) -> None:
    row = make_geo_step(BUNDLED)(make_row(), make_request(ip=ip))
    assert isinstance(row, dict)
    assert (row["country"], row["region"]) == (country, None)
    assert ip is None or ip not in str(row)


def test_a_broken_lookup_keeps_the_event_without_a_country() -> None:
    def broken(ip: str) -> tuple[str | None, str | None]:
        raise RuntimeError("corrupt database")

    row = make_geo_step(broken)(make_row(), make_request(ip="81.2.69.160"))
    assert isinstance(row, dict) and row["country"] is None


def test_the_lookup_runs_once_per_request() -> None:
    calls = []

    def counting(ip: str) -> tuple[str | None, str | None]:
        calls.append(1)
        return "FR", "FR-IDF"

    step, request = make_geo_step(counting), make_request(ip="81.2.69.160")
    rows = [step(make_row(), request) for _ in range(3)]
    assert len(calls) == 1 and all(r["country"] == "FR" for r in rows)  # type: ignore[index]


@pytest.mark.parametrize(("record", "expected"), [
    ({"country": {"iso_code": "GB"}, "subdivisions": [{"iso_code": "ENG"}]}, ("GB", "GB-ENG")),
    ({"country": {"iso_code": "US"}}, ("US", None)),
    ({"registered_country": {"iso_code": "NL"}}, ("NL", None)),
    (None, (None, None)),
])
def test_maxmind_records_give_country_and_region(record: object, expected: tuple) -> None:
    assert record_location(record)[:2] == expected


def test_a_city_database_gives_region_and_city(tmp_path) -> None:  # type: ignore[no-untyped-def]
    lookup = open_lookup(str(write_city_db(tmp_path / "city.mmdb")))
    step = make_geo_step(lookup)
    row = step(make_row(), make_request(ip="81.2.69.160"))
    assert isinstance(row, dict)
    assert (row["country"], row["region"], row["city"], row["city_name"]) == ("GB", "GB-ENG", 2643743, "London")
    row = step(make_row(), make_request(ip="2001:db8::5"))
    assert (row["country"], row["region"], row["city"]) == ("EE", "EE-37", 588409)  # type: ignore[index]
    row = step(make_row(), make_request(ip="10.0.0.1"))
    assert (row["country"], row["city"]) == (None, None)  # type: ignore[index]


def test_the_bundled_database_gives_the_country_only() -> None:
    row = make_geo_step(BUNDLED)(make_row(), make_request(ip="81.2.69.160"))
    assert isinstance(row, dict)
    assert (row["country"], row["region"], row["city"], row["city_name"]) == ("GB", None, None, None)


def test_a_missing_mmdb_file_is_a_config_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="TG_GEOIP_DB"):
        MaxMindLookup(str(tmp_path / "missing.mmdb"))


def test_without_a_database_path_the_bundled_one_is_used() -> None:
    assert isinstance(open_lookup(None), Geoip2FastLookup)


def test_an_address_is_looked_up_once_for_its_requests_and_a_failure_is_tried_again() -> None:
    calls: list[str] = []
    failing = {"203.0.113.9"}

    def counting(ip: str) -> tuple[str | None, str | None]:
        calls.append(ip)
        if ip in failing:
            raise RuntimeError("database not loaded yet")
        return "FR", None

    step = make_geo_step(counting)
    for _ in range(3):  # three requests of one visitor: the database is searched once
        row = step(make_row(), make_request(ip="81.2.69.160"))
        assert isinstance(row, dict) and row["country"] == "FR"
    assert calls == ["81.2.69.160"]
    assert step(make_row(), make_request(ip="203.0.113.9"))["country"] is None  # type: ignore[index]
    failing.clear()  # the database works again: a failure was not remembered
    assert step(make_row(), make_request(ip="203.0.113.9"))["country"] == "FR"  # type: ignore[index]
    assert calls == ["81.2.69.160", "203.0.113.9", "203.0.113.9"]
