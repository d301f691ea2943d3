"""Types that cross the parts of the package, so that a part can name another's object
without importing it. A leaf: it imports nothing from the package.

The row types are TypedDicts: plain dicts at run time (no copy, no check on the hot
path), named keys and value types for mypy. tests/test_types.py holds `EventRow` to
the columns of `traceglider.schema`, so the two cannot drift apart."""

from __future__ import annotations

from typing import Any, Protocol, TypedDict


class EventRow(TypedDict, total=False):
    """One event as it crosses from the pipeline to the sink, the spool's flusher and
    `storage.parquet` (the "wire shape", `parquet.WIRE_SCHEMA`): `site` plus the
    columns a writer fills (`schema.FILE_SCHEMA`; `visit_id` is compaction's),
    `received_at` in microseconds and `client_ts` in milliseconds since the epoch.
    Not total: parsing fills some keys and each pipeline step adds its own; a column
    left out is stored as null."""

    site: str
    event_id: str
    type: str
    name: str
    received_at: int
    client_ts: int | None
    url: str
    hostname: str | None
    path: str | None
    query: str | None
    referrer: str | None
    referrer_host: str | None
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None
    utm_term: str | None
    utm_content: str | None
    title: str | None
    visitor_id: str | None
    session_id: str | None
    browser: str | None
    browser_version: str | None
    os: str | None
    os_version: str | None
    device_type: str | None
    screen_width: int | None
    screen_height: int | None
    viewport_width: int | None
    viewport_height: int | None
    language: str | None
    timezone: str | None
    country: str | None
    region: str | None
    city: int | None
    city_name: str | None
    source: str | None
    channel: str | None
    scroll_depth: int | None
    engagement_ms: int | None
    metric_name: str | None
    metric_value: float | None
    props: str | None  # JSON object text
    ctx: str | None  # JSON object text
    revenue: str | None  # JSON text: {amount, currency}
    user_agent: str | None


class LaterWork(TypedDict):
    """What the flusher needs to finish a row whose user agent was left for later
    (`ingest.later`): the user agent and its hints, never the address."""

    ua: str
    ctx: dict[str, Any]  # the client-hint keys of the batch's ctx
    headers: dict[str, str]  # the client-hint request headers


class PipelineRow(EventRow, total=False):
    """A row between the pipeline and the spool: an `EventRow` that may carry
    `_later`, which the flusher pops (`ingest.later`) before the row is stored."""

    _later: LaterWork


class Sink(Protocol):
    """Where accepted rows go (`traceglider.sinks`: the spool, or storage directly;
    `traceglider.firehose` on Lambda): `accept` returns once they are durable."""

    async def accept(self, rows: list[PipelineRow]) -> None: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def healthy(self) -> bool: ...

    def flush(self) -> bool: ...

    def status(self) -> dict[str, Any]: ...
