"""Country, region and city from the client address, offline.

The default database is the one geoip2fast bundles: country level only (IPv4 and
IPv6), so region and city stay empty. `TG_GEOIP_DB` points at a MaxMind GeoLite2 or
GeoIP2 `.mmdb` instead, read with `maxminddb` (`pip install maxminddb`): a Country
edition gives the country, a City edition also the region (ISO 3166-2, `GB-ENG`, as
Plausible's `visit:region`) and the city (its GeoNames id, as Plausible's
`visit:city`, and its English name). Nothing is downloaded at run time. Loopback,
private and reserved addresses have no location. The address is only read here; it
never reaches a row, a log or an error.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import lru_cache
from typing import Any, NamedTuple

from traceglider.errors import ConfigError
from traceglider.ingest.pipeline import Drop, RequestInfo
from traceglider.types import PipelineRow


class Location(NamedTuple):
    country: str | None = None  # ISO 3166-1 alpha-2
    region: str | None = None  # ISO 3166-2
    city: int | None = None  # GeoNames id
    city_name: str | None = None


NOWHERE = Location()
# A lookup may answer a Location or a shorter tuple (country, region).
Lookup = Callable[[str], "tuple[str | int | None, ...]"]


def lookup_form(ip: str) -> str:
    """IPv4-mapped IPv6 (`::ffff:1.2.3.4`, as dual-stack sockets report) as plain IPv4."""
    return ip[7:] if ip[:7].lower() == "::ffff:" and "." in ip else ip


class Geoip2FastLookup:
    """The bundled geoip2fast country database, loaded on first use (~0.1 s)."""

    def __init__(self) -> None:
        self._db: Any = None
        self._lock = threading.Lock()

    def __call__(self, ip: str) -> Location:
        if self._db is None:
            with self._lock:
                if self._db is None:
                    from geoip2fast import GeoIP2Fast

                    self._db = GeoIP2Fast(geoip2fast_data_file="geoip2fast-ipv6.dat.gz")
        code = self._db.lookup(ip).country_code
        return Location(code if code and len(code) == 2 and code.isalpha() else None)


class MaxMindLookup:
    """A MaxMind `.mmdb` file (City or Country edition)."""

    def __init__(self, path: str) -> None:
        try:
            import maxminddb
        except ImportError:
            raise ConfigError(
                "TG_GEOIP_DB needs the maxminddb package: pip install maxminddb"
            ) from None
        try:
            self._reader = maxminddb.open_database(path)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"invalid TG_GEOIP_DB: cannot open {path}: {exc}") from None

    def __call__(self, ip: str) -> Location:
        record = self._reader.get(ip)
        return record_location(record)


def record_location(record: Any) -> Location:
    """The location of a MaxMind record: ISO 3166-1 and ISO 3166-2 codes, the city's
    GeoNames id and English name (City editions; Country editions have no more than
    the country)."""
    if not isinstance(record, dict):
        return NOWHERE
    country = (record.get("country") or record.get("registered_country") or {}).get("iso_code")
    region = None
    subdivisions = record.get("subdivisions") or []
    if country and subdivisions and subdivisions[0].get("iso_code"):
        region = f"{country}-{subdivisions[0]['iso_code']}"
    city = record.get("city") or {}
    geoname_id = city.get("geoname_id")
    name = (city.get("names") or {}).get("en")
    return Location(country, region,
                    geoname_id if isinstance(geoname_id, int) and 0 < geoname_id < 2**31 else None,
                    name[:200] if isinstance(name, str) and name else None)


def open_lookup(geoip_db: str | None) -> Lookup:
    return MaxMindLookup(geoip_db) if geoip_db else Geoip2FastLookup()


# Locations of the addresses seen last, in memory only (as the cookieless id's
# address keys are): a visitor's next requests cost one lookup in C instead of the
# database's search in Python.
ADDRESS_CACHE_SIZE = 16384


def make_geo_step(lookup: Lookup) -> Callable[[PipelineRow, RequestInfo], PipelineRow | Drop]:
    @lru_cache(maxsize=ADDRESS_CACHE_SIZE)  # a failure raises, so it is not kept
    def locate(ip: str) -> Location:
        return Location(*lookup(lookup_form(ip)))  # type: ignore[arg-type]

    def geo(row: PipelineRow, request: RequestInfo) -> PipelineRow | Drop:
        found = request.cache.get("geo")
        if found is None:
            found = NOWHERE
            if request.ip:
                try:
                    # The databases know no country for loopback, private and
                    # reserved ranges; a malformed address raises, giving none.
                    found = locate(request.ip)
                except Exception:  # noqa: BLE001 - a broken lookup must not lose the event
                    found = NOWHERE
            request.cache["geo"] = found
        row["country"], row["region"], row["city"], row["city_name"] = found
        return row

    # Load the database before the first request rather than during it.
    geo.warm_up = lambda: lookup("81.2.69.160")  # type: ignore[attr-defined]
    return geo
