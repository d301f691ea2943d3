"""Both storage backends behave the same, through the same interface."""

from __future__ import annotations

import uuid

import pyarrow.parquet as pq
import pytest

from tests.helpers import DAY_US, row, stored_ids
from traceglider.errors import StorageError
from traceglider.storage.layout import object_key, parse_key
from traceglider.storage.local import LocalStorage
from traceglider.storage.parquet import list_partitions, write_rows
from traceglider.storage.s3 import S3Storage

NOW_US = 1_764_280_000_000_000  # 2025-11-27T21:46:40Z


def test_put_get_list_delete(storage):
    assert storage.put("a/b/one.bin", b"1")
    assert storage.put("a/b/two.bin", b"22")
    assert storage.get("a/b/one.bin") == b"1"
    assert [(o.key, o.size) for o in storage.list("a/")] == [("a/b/one.bin", 1), ("a/b/two.bin", 2)]
    storage.delete(["a/b/one.bin", "a/b/missing.bin"])
    assert [o.key for o in storage.list("a/")] == ["a/b/two.bin"]


def test_if_absent_never_replaces_an_object(storage):
    assert storage.put("x/obj", b"first", if_absent=True) is True
    assert storage.put("x/obj", b"second", if_absent=True) is False
    assert storage.get("x/obj") == b"first"


def test_health_passes_on_a_reachable_store_and_leaves_nothing_behind(storage):
    storage.put("kept/obj", b"1")
    storage.health()
    storage.health()  # again: the probe of a local store is removed, S3's only lists
    assert [o.key for o in storage.list("")] == ["kept/obj"]


def test_health_fails_with_a_storage_error_on_an_unreachable_store(storage, tmp_path):
    if isinstance(storage, LocalStorage):
        blocker = tmp_path / "a-file"
        blocker.write_text("x")
        unreachable = LocalStorage(blocker / "data")  # a root that cannot be a directory
    else:
        unreachable = S3Storage(f"s3://tg-missing-{uuid.uuid4().hex[:8]}/tg", endpoint_url=storage.endpoint_url)
    with pytest.raises(StorageError, match="not writable|not reachable"):
        unreachable.health()


def test_rows_land_in_hive_partitions_by_site_and_utc_date(storage):
    rows = [row("e1", when_us=NOW_US), row("e2", when_us=NOW_US + DAY_US), row("e3", site="b.org", when_us=NOW_US)]
    keys = write_rows(storage, rows, "seg-1")
    assert keys == [
        "events/site=b.org/date=2025-11-27/seg-1.parquet",
        "events/site=example.com/date=2025-11-27/seg-1.parquet",
        "events/site=example.com/date=2025-11-28/seg-1.parquet",
    ]
    assert sorted(stored_ids(storage)) == ["e1", "e2", "e3"]
    assert parse_key(keys[0]) == ("b.org", "2025-11-27", "seg-1.parquet")


def test_a_retried_write_makes_no_second_copy(storage):
    write_rows(storage, [row("e1", when_us=NOW_US)], "seg-1")
    write_rows(storage, [row("e1", when_us=NOW_US)], "seg-1")
    assert stored_ids(storage) == ["e1"]


def test_files_are_zstd_parquet_without_partition_columns(local_storage):
    (key,) = write_rows(local_storage, [row("e1", when_us=NOW_US)], "seg")
    meta = pq.read_metadata(local_storage.duckdb_uri(key))
    assert meta.row_group(0).column(0).compression == "ZSTD"
    assert "site" not in meta.schema.names and "received_at" in meta.schema.names


def test_local_keys_cannot_escape_the_root(local_storage):
    with pytest.raises(ValueError):
        local_storage.put("../outside", b"x")


def test_listing_partitions(storage):
    write_rows(storage, [row("e1", when_us=NOW_US), row("e2", site="b.org", when_us=NOW_US)], "s1")
    write_rows(storage, [row("e3", when_us=NOW_US)], "s2")
    parts = list_partitions(storage)
    assert parts[("example.com", "2025-11-27")] == [
        object_key("example.com", "2025-11-27", "s1"), object_key("example.com", "2025-11-27", "s2")]
    assert list(list_partitions(storage, "b.org")) == [("b.org", "2025-11-27")]


def test_a_concurrent_conditional_write_on_s3_is_a_write_conflict(s3_storage, monkeypatch):
    # S3 answers 409 when another conditional write of the key is in flight: whether the
    # object will exist is not known yet, which the maintenance lock counts as busy.
    from botocore.exceptions import ClientError

    from traceglider.errors import WriteConflict

    def in_flight(**kwargs):
        raise ClientError({"Error": {"Code": "ConditionalRequestConflict", "Message": "in flight"}}, "PutObject")

    monkeypatch.setattr(s3_storage.client, "put_object", in_flight)
    with pytest.raises(WriteConflict, match="is being written"):
        s3_storage.put("x/obj", b"data", if_absent=True)
