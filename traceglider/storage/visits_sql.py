"""The one definition of a visit, in SQL: compaction writes visits with it, and the
stats engine applies it to days not compacted yet, so both give the same visits.

A visit is a visitor's run of events with no gap over 30 minutes (by `received_at`).
Its id is a hash of `visitor_id` and its first `received_at` (`VISIT_ID_SQL`). A run
of days is sessionised from three relations the caller defines (as views or CTEs):

- `raw`: every row of the run's files (`rid` unique per row), duplicates included;
- `carry`: the events of the visits still running at the end of the day before the
  run (from its compacted files, with their `visit_id`), so they continue;
- `nxt`: the events of the day after the run (compacted, with `visit_id`) that
  belong to visits started in the run, so those visits are whole.

`keys_sql()` gives each kept raw row (each event id once, and not one already in
`carry`: a retry stored just after midnight) and each carry row its visit id and the
visit's start; `visits_sql()` aggregates one row per visit from `rows_sql()`.
Only our own names and constants are formatted into this SQL; values are bound.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from traceglider.storage.layout import VISIT_ID_SQL, VISIT_TIMEOUT_MINUTES
from traceglider.visits import INTERACTIONS_SQL

# A visit's attributes: those of its first pageview, or of its first event without one.
_EVENT_ATTRIBUTES = ("referrer", "source", "channel", "utm_source", "utm_medium", "utm_campaign",
                     "utm_term", "utm_content", "country", "region", "city", "city_name", "device_type",
                     "browser", "browser_version", "os", "os_version", "screen_width", "language", "timezone")
# the columns of the event files a visit is made of
VISIT_INPUT_COLUMNS = ("visitor_id", "received_at", "type", "path", "hostname", "scroll_depth",
                       "engagement_ms", *_EVENT_ATTRIBUTES)
# the visits' attribute columns (schema.VISIT_ATTRIBUTES; no pyarrow import here)
VISIT_ATTRIBUTES = ("referrer", "source", "channel", "utm_source", "utm_medium", "utm_campaign", "utm_term",
                    "utm_content", "country", "region", "city", "city_name", "device_type", "browser",
                    "browser_version", "os", "os_version", "screen", "language", "timezone")
_DEFAULTS = {"source": "'Direct / None'", "channel": "'direct'"}
VISITOR_HASH_SQL = "('0x' || md5(coalesce({v}, ''))[1:15])::BIGINT"
SCREEN_SQL = ("CASE WHEN {w} IS NULL THEN NULL WHEN {w} < 576 THEN 'Mobile' WHEN {w} < 992 THEN 'Tablet' "
              "WHEN {w} < 1440 THEN 'Laptop' ELSE 'Desktop' END")
# rows of `raw`/`carry` from read_parquet(..., file_row_number = true): unique per file list
RID_SQL = "((file_index::BIGINT << 40) + file_row_number)"


def keys_sql() -> str:
    """(rid, visit_id, visit_start): carry rows get -1 - their rid."""
    first = VISIT_ID_SQL.format(v="visitor_id", t="received_at")
    return f"""
WITH d AS (
  SELECT rid, visitor_id, received_at FROM raw
  WHERE event_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM carry c WHERE c.event_id = raw.event_id)
  QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY received_at, rid) = 1),
u AS (SELECT rid, visitor_id, received_at, NULL::BIGINT AS cid FROM d
      UNION ALL SELECT -1 - rid, visitor_id, received_at, visit_id FROM carry),
g AS (SELECT *, CASE WHEN received_at - lag(received_at) OVER w <= INTERVAL {VISIT_TIMEOUT_MINUTES} MINUTE
                     THEN 0 ELSE 1 END AS new_visit
      FROM u WINDOW w AS (PARTITION BY visitor_id ORDER BY received_at, rid)),
n AS (SELECT *, sum(new_visit) OVER (PARTITION BY visitor_id ORDER BY received_at, rid
                                     ROWS UNBOUNDED PRECEDING) AS run FROM g)
SELECT rid, first_value(CASE WHEN cid IS NOT NULL THEN cid WHEN new_visit = 1 THEN {first} END) OVER v AS visit_id,
       first_value(received_at) OVER v AS visit_start
FROM n WINDOW v AS (PARTITION BY visitor_id, run ORDER BY received_at, rid)
"""


def rows_sql(keys: str) -> str:
    """The rows visits are made of: kept raw rows and carry rows with their keys, and
    the next day's rows of the run's visits (their start is not on that day)."""
    cols = ", ".join(VISIT_INPUT_COLUMNS)
    rcols = ", ".join(f"r.{c}" for c in VISIT_INPUT_COLUMNS)
    return f"""
SELECT k.visit_id, k.visit_start, {rcols} FROM raw r JOIN {keys} k ON k.rid = r.rid
UNION ALL SELECT k.visit_id, k.visit_start, {rcols} FROM carry r JOIN {keys} k ON k.rid = -1 - r.rid
UNION ALL SELECT visit_id, NULL::TIMESTAMPTZ, {cols} FROM nxt
"""


def visits_sql(rows: str) -> str:
    """One row per visit (the columns of `schema.VISIT_SCHEMA`, in order) of `rows`."""
    pv = "type = 'pageview'"
    inter = f"type IN {INTERACTIONS_SQL}"
    day1 = "received_at < date_trunc('day', visit_start) + INTERVAL 1 DAY"
    first = f"(CASE WHEN {pv} THEN 0 ELSE 1 END::BIGINT << 60) + epoch_us(received_at)"
    attrs = ", ".join(f"'{c}': {c}" for c in _EVENT_ATTRIBUTES)
    picked = []
    for c in VISIT_ATTRIBUTES:
        if c == "screen":
            picked.append(SCREEN_SQL.format(w="a.screen_width") + " AS screen")
        elif c in _DEFAULTS:
            picked.append(f"coalesce(a.{c}, {_DEFAULTS[c]}) AS {c}")
        else:
            picked.append(f"a.{c} AS {c}")
    return f"""
SELECT visit_id, {VISITOR_HASH_SQL.format(v="visitor_id")} AS visitor_hash, start, "end",
       epoch("end" - start) AS duration, entry_page, exit_page, hostname,
       pageviews, interactions, pageviews + interactions AS events,
       start_day_pageviews, start_day_events, engaged_ms,
       pageviews <= 1 AND interactions = 0 AS bounce, scroll_depth, {", ".join(picked)}
FROM (
  SELECT visit_id, any_value(visitor_id) AS visitor_id, min(received_at) AS start, max(received_at) AS "end",
         arg_min(path, received_at) FILTER (WHERE {pv}) AS entry_page,
         arg_max(path, received_at) FILTER (WHERE {pv}) AS exit_page,
         arg_min(hostname, received_at) FILTER (WHERE {pv}) AS hostname,
         (count(*) FILTER (WHERE {pv}))::INTEGER AS pageviews,
         (count(*) FILTER (WHERE {inter}))::INTEGER AS interactions,
         (count(*) FILTER (WHERE {pv} AND {day1}))::INTEGER AS start_day_pageviews,
         (count(*) FILTER (WHERE ({pv} OR {inter}) AND {day1}))::INTEGER AS start_day_events,
         coalesce(sum(engagement_ms), 0)::BIGINT AS engaged_ms,
         max(scroll_depth) AS scroll_depth,
         arg_min({{{attrs}}}, {first}) AS a
  FROM ({rows}) GROUP BY visit_id)
"""


def tail_tag_sql(kept: str) -> str:
    """A digest of the rows of `kept` (event_id, visitor_id, received_at, visit_id) at
    or after `$tail_since`: what the next day's visit ids depend on."""
    return f"""
SELECT md5(coalesce(string_agg(event_id || chr(31) || coalesce(visitor_id, '') || chr(31)
                               || epoch_us(received_at)::VARCHAR || chr(31) || visit_id::VARCHAR, chr(30)
                               ORDER BY received_at, event_id), ''))[1:12]
FROM ({kept}) WHERE received_at >= $tail_since
"""


# The types of the columns the stats read from files not compacted yet (no pyarrow
# import on the stats path: `traceglider stats` and a cold dashboard start faster);
# a test checks them against schema.FILE_SCHEMA.
READ_TYPES = {
    "event_id": "VARCHAR", "visitor_id": "VARCHAR", "received_at": "TIMESTAMPTZ", "type": "VARCHAR",
    "name": "VARCHAR", "path": "VARCHAR", "hostname": "VARCHAR", "props": "VARCHAR", "scroll_depth": "SMALLINT",
    "engagement_ms": "BIGINT", "referrer": "VARCHAR", "source": "VARCHAR", "channel": "VARCHAR",
    "utm_source": "VARCHAR", "utm_medium": "VARCHAR", "utm_campaign": "VARCHAR", "utm_term": "VARCHAR",
    "utm_content": "VARCHAR", "country": "VARCHAR", "region": "VARCHAR", "city": "INTEGER", "city_name": "VARCHAR",
    "device_type": "VARCHAR", "browser": "VARCHAR", "browser_version": "VARCHAR", "os": "VARCHAR",
    "os_version": "VARCHAR", "screen_width": "INTEGER", "language": "VARCHAR", "timezone": "VARCHAR",
}


def select_columns(present: dict[str, str], wanted: list[str] | None = None) -> str:
    """The event file columns (all, in FILE_SCHEMA order, or `wanted` of READ_TYPES),
    NULL of their type where a file set lacks one (files written before it existed)."""
    if wanted is not None:
        return ", ".join(c if c in present else f"NULL::{READ_TYPES[c]} AS {c}" for c in wanted)
    from traceglider.schema import FILE_SCHEMA

    return ", ".join(f.name if f.name in present else f"NULL::{_duck_type(f.type)} AS {f.name}"
                     for f in FILE_SCHEMA)


def _duck_type(t: object) -> str:
    import pyarrow as pa

    assert isinstance(t, pa.DataType)
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ"
    if pa.types.is_int16(t):
        return "SMALLINT"
    if pa.types.is_int32(t):
        return "INTEGER"
    if pa.types.is_int64(t):
        return "BIGINT"
    if pa.types.is_float64(t):
        return "DOUBLE"
    return "VARCHAR"


def scan(con: Any, name: str, uris: list[str], columns: list[str] | None = None, *,
         visit_id: bool = False) -> None:
    """A view `name` over `uris` with `rid` and the event columns (NULL where the files
    lack one); `visit_id` too when asked (compacted files)."""
    if not uris:
        cols = select_columns({}, columns)
        extra = ", NULL::BIGINT AS visit_id" if visit_id else ""
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT NULL::BIGINT AS rid, {cols}{extra} WHERE false")
        return
    files = "[" + ", ".join(quote(u) for u in uris) + "]"  # our own storage URIs (a view takes no parameters)
    source = f"read_parquet({files}, union_by_name = true, file_row_number = true, hive_partitioning = false)"
    present = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    cols = select_columns(present, columns)
    extra = (", visit_id" if "visit_id" in present else ", NULL::BIGINT AS visit_id") if visit_id else ""
    con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT {RID_SQL} AS rid, {cols}{extra} FROM {source}")


def quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def define_carry(con: Any, previous_uris: list[str], since: datetime) -> None:
    """`carry`: the events of the day before's visits still running in its last 30
    minutes (from compacted files, with their visit ids)."""
    scan(con, "carry_all", previous_uris, list(VISIT_INPUT_COLUMNS) + ["event_id"], visit_id=True)
    con.execute("CREATE OR REPLACE TEMP TABLE carry_ids AS SELECT DISTINCT visit_id FROM carry_all "
                "WHERE received_at >= $since", {"since": since})
    con.execute("CREATE OR REPLACE TEMP TABLE carry AS SELECT * FROM carry_all "
                "WHERE visit_id IN (SELECT visit_id FROM carry_ids)")


def define_next(con: Any, next_uris: list[str], since: datetime) -> None:
    """`nxt`: the next day's events of visits started in the run and running at its
    end (`keys` and `raw` defined)."""
    scan(con, "nxt_all", next_uris, list(VISIT_INPUT_COLUMNS), visit_id=True)
    con.execute("CREATE OR REPLACE TEMP TABLE nxt AS SELECT * FROM nxt_all WHERE visit_id IN ("
                "SELECT k.visit_id FROM keys k JOIN raw r ON r.rid = k.rid WHERE r.received_at >= $since)",
                {"since": since})
