"""The cookieless salts live apart from the data, are shared, and go after their day;
the derivation from a salt to an id is costly."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import BROWSER_UA, wait_for
from traceglider.config import load
from traceglider.errors import ConfigError
from traceglider.ingest.enrich.identity import KDF_N, KDF_R, derive_address_key
from traceglider.storage.local import LocalStorage
from traceglider.storage.salts import (
    LEGACY_PREFIX,
    SaltStore,
    check_apart,
    open_salt_storage,
    salt_location,
)

''' + open('/tmp/salt_tests.py').read() + '''

@pytest.mark.parametrize(("storage", "expected"), [
    ("/srv/tg-data", "/srv/tg-data.salts"),
    ("file:///srv/tg-data/", "/srv/tg-data.salts"),
    ("s3://bucket/data", "s3://bucket/data.salts"),
    ("s3://bucket/a/b/", "s3://bucket/a/b.salts"),
    ("s3://bucket", "s3://bucket/_traceglider.salts"),
])
def test_by_default_the_salts_sit_beside_the_data_never_inside(storage: str, expected: str) -> None:
    assert salt_location(load(env={"TG_STORAGE": storage})) == expected


def test_salts_inside_the_data_directory_are_refused(tmp_path: Path) -> None:
    settings = load(env={"TG_STORAGE": str(tmp_path / "data"), "TG_SALTS": str(tmp_path / "data" / "s")})
    with pytest.raises(ConfigError, match="inside the data directory"):
        check_apart(settings)
    check_apart(load(env={"TG_STORAGE": str(tmp_path / "data"), "TG_SALTS": str(tmp_path / "private")}))


def test_the_local_salt_directory_is_private_to_the_collector(tmp_path: Path) -> None:
    storage = open_salt_storage(load(env={"TG_STORAGE": str(tmp_path / "data")}))
    SaltStore(storage).salt("2026-11-27")
    assert (tmp_path / "data.salts" / "salts" / "2026-11-27").stat().st_size == 32
    assert (tmp_path / "data.salts").stat().st_mode & 0o777 == 0o700


def test_the_collector_keeps_no_salt_in_the_data_directory(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from traceglider.app import create_app

    data = tmp_path / "data"
    legacy = LocalStorage(data)
    legacy.put(LEGACY_PREFIX + "2026-11-27", b"s" * 32)  # as versions before 0.2 kept it
    settings = load(env={"TG_STORAGE": str(data), "TG_FLUSH_SECONDS": "0.05", "TG_COMPACT_SECONDS": "0"})
    with TestClient(create_app(settings), headers={"user-agent": BROWSER_UA}) as client:
        response = client.post("/collect", json={"site": "example.com", "events": [
            {"id": "e1", "type": "pageview", "url": "https://example.com/"}]})
        assert response.status_code == 202
        assert wait_for(lambda: list(data.glob("events/site=*/date=*/*.parquet")))
    files = [p for p in data.rglob("*") if p.is_file()]
    assert not [p for p in files if "salt" in str(p.relative_to(data))]
    assert not [p for p in files if p.stat().st_size == 32]  # no salt under any name
    assert list((tmp_path / "data.salts" / "salts").iterdir())


def test_salts_on_s3_live_under_their_own_prefix(s3_endpoint: str) -> None:
    from tests.conftest import make_bucket
    from traceglider.storage.s3 import S3Storage

    bucket = make_bucket(s3_endpoint)
    settings = load(env={"TG_STORAGE": f"s3://{bucket}/data", "TG_S3_ENDPOINT_URL": s3_endpoint})
    SaltStore(open_salt_storage(settings)).salt("2026-11-27")
    everything = S3Storage(f"s3://{bucket}", endpoint_url=s3_endpoint)
    assert [i.key for i in everything.list("")] == ["data.salts/salts/2026-11-27"]
    assert S3Storage(f"s3://{bucket}/data", endpoint_url=s3_endpoint).list("") == []


def test_the_derivation_is_memory_hard_and_keyed() -> None:
    assert KDF_N * KDF_R * 128 >= 4 * 1024 * 1024  # scrypt's memory: 4 MiB per guess
    salt, pepper = os.urandom(32), os.urandom(32)
    key = derive_address_key(salt, pepper, "203.0.113.7")
    assert key != derive_address_key(salt, os.urandom(32), "203.0.113.7")  # the secret matters
    assert key != derive_address_key(os.urandom(32), pepper, "203.0.113.7")  # the salt matters
    assert key == derive_address_key(salt, pepper, "203.0.113.7")
