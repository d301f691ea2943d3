"""What Firehose delivered becomes partition files: every event once, whatever the
moment the conversion is killed, and nothing deleted that is not stored."""

from __future__ import annotations

import gzip
from typing import Any

import orjson
import pytest

from tests.helpers import DAY_US, row, stored_ids
from traceglider.delivered import convert_delivered
from traceglider.storage.compact import compact
from traceglider.storage.local import LocalStorage

NOW_US = 1_764_280_000_000_000  # 2025-11-27T21:46:40Z
DELIVERED = "incoming/2025/11/27/21/tg-stream-1-2025-11-27-21-46-40-abc"


def ndjson(*rows: dict[str, Any]) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in rows)


class DeleteFails:
    """Local storage that fails the first delete, as a conversion killed right after
    writing its partition files would leave things."""

    def __init__(self, storage: LocalStorage) -> None:
        self.storage = storage

    def __getattr__(self, name: str) -> Any:
        return getattr(self.storage, name)

    def delete(self, keys: list[str]) -> None:
        raise RuntimeError("killed")


def test_a_conversion_killed_before_its_delete_is_finished_by_the_next_without_a_copy(
    local_storage: LocalStorage,
) -> None:
    rows = [row("d1", when_us=NOW_US), row("d2", when_us=NOW_US + DAY_US), row("d3", site="b.org", when_us=NOW_US)]
    local_storage.put(DELIVERED, gzip.compress(ndjson(*rows)))

    with pytest.raises(RuntimeError):
        convert_delivered(DeleteFails(local_storage))  # type: ignore[arg-type]
    written = sorted(o.key for o in local_storage.list("events/"))
    assert len(written) == 3 and [o.key for o in local_storage.list("incoming/")] == [DELIVERED]

    result = convert_delivered(local_storage)

    assert sorted(o.key for o in local_storage.list("events/")) == written  # the same names: nothing twice
    assert local_storage.list("incoming/") == []
    assert result.objects == 1 and result.events == 3
    assert result.partitions == [("b.org", "2025-11-27"), ("example.com", "2025-11-27"),
                                 ("example.com", "2025-11-28")]
    compact(local_storage)
    assert sorted(stored_ids(local_storage)) == ["d1", "d2", "d3"]


def test_a_redelivered_record_and_an_already_compacted_copy_count_once(local_storage: LocalStorage) -> None:
    local_storage.put(DELIVERED, ndjson(row("r1", when_us=NOW_US), row("r2", when_us=NOW_US)))
    convert_delivered(local_storage)
    compact(local_storage)
    # Firehose delivers at least once: the same record again, in a later object.
    local_storage.put(DELIVERED + "-again", ndjson(row("r2", when_us=NOW_US)))
    convert_delivered(local_storage)
    compact(local_storage)
    assert sorted(stored_ids(local_storage)) == ["r1", "r2"]


def test_stop_ends_after_the_object_in_hand(local_storage: LocalStorage) -> None:
    for n in range(3):
        local_storage.put(f"incoming/2025/11/27/21/object-{n}", ndjson(row(f"s{n}", when_us=NOW_US)))
    calls = iter([False, True])
    renewed: list[int] = []
    result = convert_delivered(local_storage, stop=lambda: next(calls), renew=lambda: renewed.append(1))
    assert result.objects == 1 and renewed == [1]
    assert len(local_storage.list("incoming/")) == 2


def test_an_empty_delivery_is_removed_and_a_garbled_one_kept(local_storage: LocalStorage) -> None:
    local_storage.put("incoming/2025/11/27/21/empty", b"")
    local_storage.put("incoming/2025/11/27/21/garbled", b'{"event_id": "x", "site": ')
    result = convert_delivered(local_storage)
    assert result.objects == 1 and result.unreadable == ["incoming/2025/11/27/21/garbled"]
    assert [o.key for o in local_storage.list("incoming/")] == ["incoming/2025/11/27/21/garbled"]
    assert stored_ids(local_storage) == []
