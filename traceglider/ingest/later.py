"""What the flusher finishes of a spooled row before it becomes Parquet: the
user-agent work the request path left for later.

A user agent the collector has not seen yet costs about 270 us to classify (240 us
for the crawler patterns, 30 us for the parser): on the event loop that is as much
as the rest of a 10-event request. So `/collect`, whose rows go to the spool, does
it there only for user agents already known (one lookup); for a new one the row is
spooled with `_later` (the user agent and its client hints, never the address) and
completed here, on the flusher's thread, before it is stored. Whatever needs the
address (the country, the cookieless visitor id) was derived before the 202, and
the address itself was never written.

The result is the row the request path would have stored: a bot's rows are dropped
and counted under `bot` on /healthz (once, when the segment is delivered), the
others get browser, OS and device. Rows without `_later` pass through untouched, so
segments written before this existed are delivered as they were.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson

from traceglider.ingest.enrich.bots import is_bot_user_agent
from traceglider.ingest.enrich.useragent import user_agent_columns

log = logging.getLogger("traceglider.ingest")

MARK = b'"_later":'  # in a record's bytes only if one of its rows waits for completion
UA_COLUMNS = ("browser", "browser_version", "os", "os_version", "device_type")

Drops = Counter[tuple[str, str]]  # (step, reason) -> rows
Completion = Callable[[list[bytes]], "tuple[list[bytes], Drops]"]


def make_completion(drop_bots: bool) -> Completion:
    """`complete(records) -> (records, drops)`: the spool's NDJSON records with every
    `_later` row completed or dropped, and the drops by the step that would have
    dropped them and the reason."""

    def complete_row(row: dict[str, Any], drops: Drops) -> dict[str, Any] | None:
        later = row.pop("_later")
        user_agent = str(later.get("ua") or "")
        if drop_bots and is_bot_user_agent(user_agent):
            drops["bots", "bot"] += 1
            return None
        row.update(zip(UA_COLUMNS, user_agent_columns(user_agent, later.get("ctx") or {},
                                                      later.get("headers") or {}), strict=True))
        return row

    def complete(records: list[bytes]) -> tuple[list[bytes], Drops]:
        drops: Drops = Counter()
        out = []
        for record in records:
            if MARK not in record:
                out.append(record)
                continue
            lines = []
            for line in record.split(b"\n"):
                try:
                    row = orjson.loads(line)
                except orjson.JSONDecodeError:
                    lines.append(line)  # the flusher counts it as damaged, as before
                    continue
                if isinstance(row, dict) and "_later" in row:
                    try:
                        row = complete_row(row, drops)
                    except Exception:  # noqa: BLE001 - a bug must not hold the segment back
                        log.exception("completing a spooled row failed")
                        drops["useragent", "error"] += 1
                        row = None
                    if row is None:
                        continue
                    line = orjson.dumps(row)
                lines.append(line)
            if lines:
                out.append(b"\n".join(lines))
        return out, drops

    return complete
