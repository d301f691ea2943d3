"""What Firehose delivered, turned into ordinary raw partition files: the step the
scheduled maintenance runs before compaction when TG_DELIVERY=firehose.

Firehose writes objects of concatenated records (NDJSON rows, see
`traceglider.firehose`) under `incoming/`, gzipped by the template's stream, and
records it could not deliver as it should under `incoming-failed/<error type>/`, one
JSON envelope per line with the record in `rawData`. Each object becomes
`events/site=<site>/date=<date>/fh-<digest of its key>.parquet` per partition it
touches; compaction then merges and de-duplicates them by event id like any raw file.

Safe to kill at any moment, and idempotent: the partition files are written under
names derived from the delivered object's key, only if absent, and the delivered
object is deleted only after all of them are stored, so a rerun writes nothing twice
and a copy that was already compacted is removed again by event id. An object that
cannot be read is left where it is and reported (logged, and in the summary), never
deleted.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from traceglider.storage.base import Storage
from traceglider.storage.layout import parse_key
from traceglider.storage.parquet import WIRE_SCHEMA, ndjson_to_table, write_table

log = logging.getLogger("traceglider.delivered")

INCOMING_PREFIX = "incoming/"
FAILED_PREFIX = "incoming-failed/"


@dataclass
class Conversion:
    objects: int = 0
    events: int = 0
    partitions: list[tuple[str, str]] = field(default_factory=list)  # (site, date), sorted
    unreadable: list[str] = field(default_factory=list)


def delivered_rows(key: str, data: bytes) -> bytes:
    """The NDJSON rows of one delivered object (gunzipped; error envelopes opened)."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if not key.startswith(FAILED_PREFIX):
        return data
    records = []
    for line in data.splitlines():
        if line.strip():
            envelope = orjson.loads(line)
            records.append(base64.b64decode(envelope["rawData"]))
    return b"".join(records)


def partition_name(key: str) -> str:
    return "fh-" + hashlib.sha256(key.encode()).hexdigest()[:40]


def convert_delivered(storage: Storage, stop: Callable[[], bool] | None = None,
                      renew: Callable[[], None] | None = None) -> Conversion:
    """Convert every delivered object into partition files, then delete it. `stop()`
    true: end after the object in hand; `renew()` after each object (the maintenance
    lock, which a backlog of many objects would outlast)."""
    result = Conversion()
    touched: set[tuple[str, str]] = set()
    pending = [info for prefix in (INCOMING_PREFIX, FAILED_PREFIX) for info in storage.list(prefix)
               if not info.key.endswith("/")]
    for info in pending:
        if stop and stop():
            break
        try:
            data = delivered_rows(info.key, storage.get(info.key))
            table = ndjson_to_table(data) if data.strip() else WIRE_SCHEMA.empty_table()
        except (ValueError, KeyError, OSError, EOFError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            log.error("cannot read the delivered object %s (left in place): %s", info.key, exc)
            result.unreadable.append(info.key)
            continue
        keys = write_table(storage, table, partition_name(info.key))
        storage.delete([info.key])  # only now: its rows are in the partitions
        result.objects += 1
        result.events += table.num_rows
        touched.update(parsed[:2] for parsed in map(parse_key, keys) if parsed)
        if renew:
            renew()
    result.partitions = sorted(touched)
    return result
