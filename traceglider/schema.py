"""The stored event columns: one Arrow schema shared by writers, readers and the DDL."""

from __future__ import annotations

import pyarrow as pa

from traceglider.visits import INTERACTION_TYPES as INTERACTION_TYPES  # where the writers find them
from traceglider.visits import INTERACTIONS_SQL as INTERACTIONS_SQL

# Order matters only for readability of the files; readers select by name.
EVENT_FIELDS: list[tuple[str, pa.DataType, str]] = [
    ("event_id", pa.string(), "unique id of the event (client-made, or server-made when absent)"),
    ("site", pa.string(), "site domain the event belongs to"),
    ("type", pa.string(), "pageview, engagement, click, form_submit, vital, error or custom"),
    ("name", pa.string(), "event name: 'pageview', a custom event name, the click kind ..."),
    ("received_at", pa.timestamp("us", tz="UTC"), "server time of receipt, UTC"),
    ("client_ts", pa.timestamp("ms", tz="UTC"), "browser clock time of the event, UTC"),
    ("url", pa.string(), "page URL after query hygiene"),
    ("hostname", pa.string(), "host of the page URL"),
    ("path", pa.string(), "path of the page URL, with a hash router's route when there is one (/app#/settings)"),
    ("query", pa.string(), "query string kept after hygiene"),
    ("referrer", pa.string(), "referrer URL after hygiene"),
    ("referrer_host", pa.string(), "host of the referrer"),
    ("utm_source", pa.string(), ""),
    ("utm_medium", pa.string(), ""),
    ("utm_campaign", pa.string(), ""),
    ("utm_term", pa.string(), ""),
    ("utm_content", pa.string(), ""),
    ("title", pa.string(), "document title"),
    ("visitor_id", pa.string(), "cookie id (with consent) or daily-rotating cookieless hash"),
    ("session_id", pa.string(), "visit id (30-minute inactivity rule)"),
    ("browser", pa.string(), ""),
    ("browser_version", pa.string(), ""),
    ("os", pa.string(), ""),
    ("os_version", pa.string(), ""),
    ("device_type", pa.string(), "Desktop, Mobile or Tablet (desktop, mobile, tablet, other before: read alike)"),
    ("screen_width", pa.int32(), ""),
    ("screen_height", pa.int32(), ""),
    ("viewport_width", pa.int32(), ""),
    ("viewport_height", pa.int32(), ""),
    ("language", pa.string(), ""),
    ("timezone", pa.string(), ""),
    ("country", pa.string(), "ISO 3166-1 alpha-2"),
    ("region", pa.string(), "ISO 3166-2 subdivision where known"),
    ("city", pa.int32(), "GeoNames id of the city (a City database in TG_GEOIP_DB), as Plausible's visit:city"),
    ("city_name", pa.string(), "English name of the city"),
    ("source", pa.string(), "traffic source name (Google, Hacker News, ...)"),
    ("channel", pa.string(), "search, social, email, paid, referral or direct"),
    ("scroll_depth", pa.int16(), "deepest scroll reached, percent (engagement)"),
    ("engagement_ms", pa.int64(), "visible and active time on the page (engagement)"),
    ("metric_name", pa.string(), "LCP, CLS, INP, FCP or TTFB (vital)"),
    ("metric_value", pa.float64(), ""),
    ("props", pa.string(), "custom properties, JSON object text"),
    ("ctx", pa.string(), "environment profile extras, JSON object text"),
    ("revenue", pa.string(), "revenue JSON ({amount, currency}) from the Plausible Events API"),
    ("user_agent", pa.string(), "raw user agent, only when TG_STORE_USER_AGENT is on"),
    ("visit_id", pa.int64(), "visit key written by compaction: 30-minute inactivity rule per "
                             "visitor, a hash of visitor_id and the visit's first received_at"),
]

EVENT_SCHEMA = pa.schema([pa.field(n, t) for n, t, _ in EVENT_FIELDS])
COLUMNS: list[str] = [n for n, _, _ in EVENT_FIELDS]

# `site` and `date` live in the Hive path (`site=S/date=D`), not inside the files:
# Spark and Athena refuse a column that is both a partition and a data column.
PARTITION_KEYS = ("site", "date")
# Columns only compaction fills. Every other writer (the collector, Lambda batches,
# demo data) writes them as nulls, so that every file has the same columns and every
# reader on its defaults (polars, pandas, pyarrow.dataset, DuckDB, Spark, Athena) sees
# one schema without merging (polars, for one, fails on a column some files lack).
COMPACTION_COLUMNS = ("visit_id",)
# The columns of every stored file.
STORED_SCHEMA = pa.schema([f for f in EVENT_SCHEMA if f.name not in PARTITION_KEYS])
COMPACTED_SCHEMA = STORED_SCHEMA
# The columns a writer fills before compaction (rows in, see storage/parquet.py).
FILE_SCHEMA = pa.schema([f for f in STORED_SCHEMA if f.name not in COMPACTION_COLUMNS])
FILE_COLUMNS: list[str] = FILE_SCHEMA.names
# The type every reader should give the Hive `date` column: a calendar date. DuckDB,
# polars, Spark and the Athena DDL infer or declare it; pyarrow and pandas infer only
# integers and strings from a path, so they are told (see docs/storage.md).
DATE_TYPE = pa.date32()

# The visits dataset (`visits/site=S/date=D/`): one row per visit, dated by its start,
# written by compaction (`storage/visits_sql.py` defines it). A visit's attributes are
# those of its first pageview (its first event when it had none).
VISIT_FIELDS: list[tuple[str, pa.DataType, str]] = [
    ("visit_id", pa.int64(), "the visit key (the events' visit_id)"),
    ("visitor_hash", pa.int64(), "first 60 bits of md5(visitor_id): counts unique visitors"),
    ("start", pa.timestamp("us", tz="UTC"), "first event's received_at"),
    ("end", pa.timestamp("us", tz="UTC"), "last event's received_at"),
    ("duration", pa.float64(), "seconds from the first to the last event"),
    ("entry_page", pa.string(), "path of the first pageview"),
    ("exit_page", pa.string(), "path of the last pageview"),
    ("hostname", pa.string(), "host of the first pageview"),
    ("pageviews", pa.int32(), "pageview events"),
    ("interactions", pa.int32(), "custom, click and form_submit events"),
    ("events", pa.int32(), "pageviews plus interactions"),
    ("start_day_pageviews", pa.int32(), "pageviews on the UTC date the visit started (visits over midnight)"),
    ("start_day_events", pa.int32(), "events on the UTC date the visit started"),
    ("engaged_ms", pa.int64(), "visible, active time summed over the visit's pages"),
    ("bounce", pa.bool_(), "at most one pageview and no interaction"),
    ("scroll_depth", pa.int16(), "deepest scroll of the visit, percent"),
    ("referrer", pa.string(), ""),
    ("source", pa.string(), "traffic source, 'Direct / None' when there is none"),
    ("channel", pa.string(), "channel, 'direct' when there is none"),
    ("utm_source", pa.string(), ""),
    ("utm_medium", pa.string(), ""),
    ("utm_campaign", pa.string(), ""),
    ("utm_term", pa.string(), ""),
    ("utm_content", pa.string(), ""),
    ("country", pa.string(), "ISO 3166-1 alpha-2"),
    ("region", pa.string(), "ISO 3166-2 subdivision"),
    ("city", pa.int32(), "GeoNames id of the city"),
    ("city_name", pa.string(), "English name of the city"),
    ("device_type", pa.string(), "desktop, mobile, tablet or other"),
    ("browser", pa.string(), ""),
    ("browser_version", pa.string(), ""),
    ("os", pa.string(), ""),
    ("os_version", pa.string(), ""),
    ("screen", pa.string(), "screen class by width: Mobile < 576 px, Tablet < 992, Laptop < 1440, Desktop"),
    ("language", pa.string(), ""),
    ("timezone", pa.string(), "the browser's IANA time zone, such as Europe/Berlin"),
]
VISIT_SCHEMA = pa.schema([pa.field(n, t) for n, t, _ in VISIT_FIELDS])
# Visit attributes, as the stats read them (the first pageview's).
VISIT_ATTRIBUTES: tuple[str, ...] = tuple(n for n, _, _ in VISIT_FIELDS[VISIT_SCHEMA.names.index("referrer"):])
