"""The buffered delivery of Lambda mode: each accepted batch goes to an Amazon Data
Firehose stream (`PutRecordBatch`), which writes it to the bucket under `incoming/`
a few minutes later; `traceglider.delivered` turns those objects into partitions.

One request's rows are one Firehose record, newline-delimited JSON ending in a newline
(Firehose concatenates records without a separator, and bills each record rounded up
to 5 KB: one record per request is the cheapest shape). A batch counts as kept only
when Firehose has acknowledged every record: records it reports as failed
(`FailedPutCount`) are sent again, and if some still fail the request is refused
with a 503 and Retry-After, so the tracker sends it again; the copies of the records
that did get through are removed by event id when they are compacted.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from traceglider.awsapi import AwsError, Client, json_error, region
from traceglider.errors import ConfigError, StorageError, Unavailable
from traceglider.storage.base import Storage
from traceglider.types import EventRow, PipelineRow

if TYPE_CHECKING:
    from traceglider.config import Settings

log = logging.getLogger("traceglider.firehose")

MAX_RECORD_BYTES = 1_000 * 1024  # Firehose's limit per record, before base64
MAX_BATCH_RECORDS = 500
ATTEMPTS = 3  # the first try and two retries of what failed, well inside a 15 s timeout
BACKOFF_SECONDS = (0.05, 0.25)
BILLING_UNIT = 5 * 1024  # Firehose bills each record rounded up to this many bytes
# Whole-call errors worth another try; others (a missing stream, no permission) are not.
_RETRYABLE = {"ServiceUnavailableException", "ThrottlingException", "InternalFailure",
              "ServiceUnavailable", "RequestTimeout"}
_TARGET = "Firehose_20150804."


def encode_records(rows: Sequence[EventRow], limit: int = MAX_RECORD_BYTES) -> list[bytes]:
    """The rows as few records as Firehose allows: NDJSON lines, each record ending in
    a newline, so that records concatenated in a delivered object are still NDJSON."""
    records: list[bytes] = []
    current: list[bytes] = []
    size = 0
    for row in rows:
        # Unset columns are left out (about 15% of a record): the reader fills them in.
        line = orjson.dumps({k: v for k, v in row.items() if v is not None}) + b"\n"
        if len(line) > limit:
            raise ValueError(f"event {row.get('event_id')!r} is larger than a Firehose record")
        if size + len(line) > limit:
            records.append(b"".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line)
    if current:
        records.append(b"".join(current))
    return records


class Firehose:
    """The two Firehose calls the collector makes, over `traceglider.awsapi`."""

    def __init__(self, stream: str, endpoint_url: str | None = None, client: Client | None = None) -> None:
        self.stream = stream
        self.client = client or Client("firehose", endpoint_url or f"https://firehose.{region()}.amazonaws.com")

    def _call(self, operation: str, document: dict[str, Any]) -> dict[str, Any]:
        answer = self.client.call("POST", self.client.endpoint + "/", json.dumps(document).encode(), {
            "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": _TARGET + operation})
        if answer.status != 200:
            code, message = json_error(answer)
            raise AwsError(f"Firehose {operation}: {answer.status} {code} {message}".rstrip(), answer.status, code)
        result: dict[str, Any] = json.loads(answer.body)
        return result

    def put_record_batch(self, records: list[bytes]) -> list[str | None]:
        """The error code of each record (None: accepted)."""
        answer = self._call("PutRecordBatch", {
            "DeliveryStreamName": self.stream,
            "Records": [{"Data": base64.b64encode(record).decode()} for record in records]})
        responses = answer.get("RequestResponses") or []
        if len(responses) != len(records):
            raise AwsError(f"Firehose answered {len(responses)} results for {len(records)} records")
        return [r.get("ErrorCode") or None for r in responses]

    def status(self) -> str:
        answer = self._call("DescribeDeliveryStream", {"DeliveryStreamName": self.stream, "Limit": 1})
        return str(answer["DeliveryStreamDescription"]["DeliveryStreamStatus"])


def _retryable(exc: AwsError) -> bool:
    return exc.status == 0 or exc.status >= 500 or exc.code in _RETRYABLE


class FirehoseSink:
    """A `traceglider.sinks.Sink` that answers only once Firehose holds every record.
    `storage` is still the bucket's: the collector reads its salts and secret there,
    and /healthz checks both."""

    def __init__(self, firehose: Firehose, storage: Storage, sleep: Callable[[float], None] = time.sleep,
                 record_bytes: int = MAX_RECORD_BYTES) -> None:
        self.firehose, self.storage, self.sleep = firehose, storage, sleep
        self.record_bytes = record_bytes
        self.buffer_ok: bool | None = None
        self.delivered_events = self.records = self.billed_bytes = self.retried_records = 0
        self._lock = threading.Lock()

    def deliver(self, rows: Sequence[EventRow]) -> None:
        """Hand `rows` to Firehose; `Unavailable` (503) unless every record was taken."""
        pending = encode_records(rows, self.record_bytes)
        for start in range(0, len(pending), MAX_BATCH_RECORDS):
            self._put(pending[start:start + MAX_BATCH_RECORDS])
        with self._lock:
            self.delivered_events += len(rows)
            self.records += len(pending)
            self.billed_bytes += sum(-(-len(r) // BILLING_UNIT) * BILLING_UNIT for r in pending)
        self.buffer_ok = True

    def _put(self, records: list[bytes]) -> None:
        pending = records
        for attempt in range(ATTEMPTS):
            if attempt:
                self.sleep(BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS)) - 1])
            try:
                codes = self.firehose.put_record_batch(pending)
            except AwsError as exc:
                if not _retryable(exc) or attempt == ATTEMPTS - 1:
                    self.buffer_ok = False
                    log.warning("Firehose refused a batch: %s", exc)
                    raise Unavailable("the event buffer is unavailable; retry later", retry_after=5) from exc
                continue
            failed = [record for record, code in zip(pending, codes, strict=True) if code]
            if not failed:
                return
            log.info("Firehose failed %d of %d records (%s); retrying them", len(failed), len(pending),
                     next(code for code in codes if code))
            with self._lock:
                self.retried_records += len(failed)
            pending = failed
        self.buffer_ok = False
        raise Unavailable(f"the event buffer did not take {len(pending)} of {len(records)} records; retry",
                          retry_after=5)

    async def accept(self, rows: list[PipelineRow]) -> None:
        import asyncio  # only the app's routes come here; the Lambda /collect path calls deliver

        await asyncio.to_thread(self.deliver, rows)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        self.firehose.client.close()

    def flush(self) -> bool:
        return True  # nothing waits here: Firehose holds every acknowledged batch

    def healthy(self) -> bool:
        try:
            self.storage.health()
            self.buffer_ok = self.firehose.status() in ("ACTIVE", "UPDATING")
        except (StorageError, AwsError) as exc:
            log.warning("health check failed: %s", exc)
            self.buffer_ok = False
        return bool(self.buffer_ok)

    def status(self) -> dict[str, Any]:
        return {"mode": "firehose", "stream": self.firehose.stream, "storage": self.storage.url,
                "buffer_ok": bool(self.buffer_ok), "delivered_events": self.delivered_events,
                "records": self.records, "retried_records": self.retried_records,
                "billed_kb": self.billed_bytes // 1024}


def firehose_sink(settings: Settings, storage: Storage) -> FirehoseSink:
    """The sink of TG_DELIVERY=firehose, from the settings."""
    if not settings.firehose_stream:
        raise ConfigError("TG_DELIVERY=firehose needs TG_FIREHOSE_STREAM (the delivery stream's name)")
    return FirehoseSink(Firehose(settings.firehose_stream, settings.firehose_endpoint_url), storage)
