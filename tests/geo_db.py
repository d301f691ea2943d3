"""A small MaxMind City database written for tests (mmdb-writer, from PyPI), so the
City path of the geo step runs on a real `.mmdb` file without downloading one."""

from __future__ import annotations

from pathlib import Path

# documentation and test-net addresses, with made-up but well-formed locations
CITIES = {
    "81.2.69.0/24": ("GB", "ENG", 2643743, "London"),
    "2001:db8::/32": ("EE", "37", 588409, "Tallinn"),
    "198.51.100.0/24": ("US", "MD", 4347778, "Baltimore"),
}


def write_city_db(path: Path) -> Path:
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=6, database_type="GeoLite2-City", ipv4_compatible=True)
    for network, (country, region, geoname_id, name) in CITIES.items():
        writer.insert_network(IPSet([network]), {
            "country": {"iso_code": country, "names": {"en": country}},
            "subdivisions": [{"iso_code": region}],
            "city": {"geoname_id": geoname_id, "names": {"en": name, "de": name + "-de"}},
        })
    writer.to_db_file(str(path))
    return path
