"""Parse Plausible Stats API v1 parameters, once, into a typed `Query` from allowlists.

Anything not in an allowlist is a `BadRequest` with Plausible's wording, so a bad
metric, property or filter never reaches the SQL builder.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from traceglider.errors import BadRequest
from traceglider.sites import site_id

# Plausible's metric names, plus scroll_depth and time_on_page (page engagement).
METRICS = ("visitors", "visits", "pageviews", "views_per_visit", "bounce_rate",
           "visit_duration", "events", "scroll_depth", "time_on_page", "conversion_rate")
PERIODS = ("day", "7d", "30d", "month", "6mo", "12mo", "custom", "realtime")
INTERVALS = {"hour": "hour", "date": "day", "day": "day", "week": "week", "month": "month"}

# Property -> (level, column). Event properties live on every event; visit properties
# are the visit's (its entry pageview's) and come from the visits table.
PROPERTIES: dict[str, tuple[str, str]] = {
    "event:page": ("event", "path"),
    "event:hostname": ("event", "hostname"),
    "event:name": ("event", "name"),
    "event:goal": ("goal", ""),
    "visit:entry_page": ("visit", "entry_page"),
    "visit:exit_page": ("visit", "exit_page"),
    "visit:source": ("visit", "source"),
    "visit:referrer": ("visit", "referrer"),
    "visit:channel": ("visit", "channel"),
    "visit:utm_source": ("visit", "utm_source"),
    "visit:utm_medium": ("visit", "utm_medium"),
    "visit:utm_campaign": ("visit", "utm_campaign"),
    "visit:utm_term": ("visit", "utm_term"),
    "visit:utm_content": ("visit", "utm_content"),
    "visit:country": ("visit", "country"),
    "visit:region": ("visit", "region"),
    "visit:city": ("visit", "city"),  # GeoNames id, from a City database (TG_GEOIP_DB)
    "visit:city_name": ("visit", "city_name"),
    "visit:device": ("visit", "device_type"),
    "visit:browser": ("visit", "browser"),
    "visit:browser_version": ("visit", "browser_version"),
    "visit:os": ("visit", "os"),
    "visit:os_version": ("visit", "os_version"),
    "visit:screen": ("visit", "screen"),  # Mobile < 576 px, Tablet < 992, Laptop < 1440, Desktop
    "visit:language": ("visit", "language"),  # the browser's, an extension of ours
    "visit:timezone": ("visit", "timezone"),  # the browser's IANA zone, ours too
}
PROP_KEY = re.compile(r"^[A-Za-z0-9_.\- ]{1,64}$")
OPERATORS = ("==", "!=", "~", "!~")  # match (with * and ** globs), not, contains, not contains
MAX_LIMIT = 1000
MAX_FILTERS = 20
MAX_VALUES = 50


@dataclass(frozen=True)
class Filter:
    property: str
    op: str
    values: tuple[str, ...]

    @builtins.property
    def level(self) -> str:
        return level_of(self.property)


@dataclass(frozen=True)
class Query:
    site: str
    period: str
    start: datetime  # inclusive, naive UTC
    end: datetime  # exclusive, naive UTC
    metrics: tuple[str, ...] = ("visitors",)
    property: str | None = None
    filters: tuple[Filter, ...] = ()
    interval: str = "day"
    limit: int = 100
    page: int = 1
    compare: bool = False
    extra: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def previous(self) -> Query:
        """The period of the same length just before this one (for `change`)."""
        span = self.end - self.start
        return Query(self.site, "custom", self.start - span, self.start, self.metrics,
                     self.property, self.filters, self.interval, self.limit, self.page)

    def with_filters(self, filters: tuple[Filter, ...]) -> Query:
        return Query(self.site, self.period, self.start, self.end, self.metrics, self.property,
                     filters, self.interval, self.limit, self.page, self.compare)


def level_of(prop: str) -> str:
    if prop.startswith("event:props:"):
        return "event"
    if prop not in PROPERTIES:
        raise BadRequest(f"Invalid property '{prop}'")
    return PROPERTIES[prop][0]


def check_property(prop: str) -> str:
    if prop.startswith("event:props:"):
        key = prop.removeprefix("event:props:")
        if not PROP_KEY.match(key):
            raise BadRequest(f"Invalid property '{prop}': custom property names are 1-64 "
                             "letters, digits, spaces, dots, dashes or underscores")
        return prop
    level_of(prop)
    return prop


def parse_metrics(raw: str | None, allowed: tuple[str, ...] = METRICS) -> tuple[str, ...]:
    names = tuple(m.strip() for m in (raw or "visitors").split(",") if m.strip())
    if not names:
        raise BadRequest("The metrics parameter must not be empty")
    for name in names:
        if name not in allowed:
            raise BadRequest(f"The metric `{name}` is not recognized. Find valid metrics from "
                             "the documentation: https://plausible.io/docs/stats-api#metrics")
    if len(set(names)) != len(names):
        raise BadRequest("Each metric may be requested once")
    return names


_SPLIT_FILTERS = re.compile(r"(?<!\\);")
_SPLIT_VALUES = re.compile(r"(?<!\\)\|")
_FILTER = re.compile(r"^\s*((?:event|visit):[A-Za-z_]+(?::[^=!~]+)?)\s*(==|!=|!~|~)\s*(.*)$", re.S)


def parse_filters(raw: str | None) -> tuple[Filter, ...]:
    """Plausible v1 filters: `event:page==/blog/**;visit:country==DE|FR`."""
    if not raw or not raw.strip():
        return ()
    parts = [p for p in _SPLIT_FILTERS.split(raw) if p.strip()]
    if len(parts) > MAX_FILTERS:
        raise BadRequest(f"At most {MAX_FILTERS} filters are allowed")
    filters = []
    for part in parts:
        match = _FILTER.match(part)
        if not match:
            raise BadRequest(f"Invalid filter '{part}'. Filters look like "
                             "event:page==/blog/**;visit:country==DE|FR")
        prop, op, value = match.group(1).strip(), match.group(2), match.group(3)
        check_property(prop)
        values = tuple(v.replace("\\|", "|").replace("\\;", ";") for v in _SPLIT_VALUES.split(value))
        if len(values) > MAX_VALUES or any(len(v) > 2000 for v in values):
            raise BadRequest(f"Filter '{prop}' has too many or too long values")
        filters.append(Filter(prop, op, values))
    return tuple(filters)


# Events carry times since the Unix epoch; a date outside these is a client's mistake,
# and near the calendar's ends a period, its previous period or the day after it
# would not be a date at all (date(9999, 12, 31) + 1 day overflows).
MIN_DATE = date(1970, 1, 1)
MAX_DATE = date(2999, 12, 31)


def parse_date(raw: str, name: str = "date") -> date:
    """A YYYY-MM-DD date from MIN_DATE to MAX_DATE, or a BadRequest saying so."""
    try:
        value = date.fromisoformat(raw.strip())
    except ValueError:
        raise BadRequest(f"Failed to parse '{raw[:40]}' as {name}: use the format YYYY-MM-DD") from None
    if not MIN_DATE <= value <= MAX_DATE:
        raise BadRequest(f"The {name} {value} is out of range: dates are from {MIN_DATE} to {MAX_DATE}")
    return value


_date = parse_date


def parse_site_id(params: Mapping[str, str]) -> str:
    """The `site_id` parameter, which must be a site domain: it names storage paths."""
    return site_id(params.get("site_id"))


def _month_start(d: date, back: int = 0) -> date:
    month = d.year * 12 + d.month - 1 - back
    return date(month // 12, month % 12 + 1, 1)


def period_range(period: str, raw_date: str | None, now: datetime) -> tuple[datetime, datetime]:
    """[start, end) in naive UTC. Rolling periods end with today, as Plausible's v1 did."""
    today = now.date()
    ref = _date(raw_date) if raw_date and period != "custom" else today
    if period == "day":
        start_d, end_d = ref, ref
    elif period in ("7d", "30d"):
        days = 7 if period == "7d" else 30
        start_d, end_d = ref - timedelta(days=days - 1), ref
    elif period == "month":
        start_d = _month_start(ref)
        end_d = _month_start(ref, -1) - timedelta(days=1)
    elif period in ("6mo", "12mo"):
        start_d = _month_start(ref, 5 if period == "6mo" else 11)
        end_d = _month_start(ref, -1) - timedelta(days=1)
    elif period == "custom":
        if not raw_date or "," not in raw_date:
            raise BadRequest("The `date` parameter is required for a custom period: "
                             "date=2021-01-01,2021-01-31")
        first, _, last = raw_date.partition(",")
        start_d, end_d = _date(first), _date(last)
        if end_d < start_d:
            raise BadRequest("The custom period ends before it starts")
        if (end_d - start_d).days > 3660:
            raise BadRequest("A custom period may span at most ten years")
    elif period == "realtime":
        end = now.replace(tzinfo=None, microsecond=0) + timedelta(seconds=1)
        return end - timedelta(minutes=30), end
    else:
        raise BadRequest(f"Error parsing `period` parameter: invalid period `{period}`. Valid "
                         f"periods are {', '.join(PERIODS)}")
    return (datetime.combine(start_d, datetime.min.time()),
            datetime.combine(end_d + timedelta(days=1), datetime.min.time()))


def default_interval(period: str) -> str:
    return {"day": "hour", "realtime": "hour", "6mo": "month", "12mo": "month"}.get(period, "day")


def _int(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(str(raw))
    except ValueError:
        raise BadRequest(f"The `{name}` parameter must be a whole number") from None
    if not low <= value <= high:
        raise BadRequest(f"The `{name}` parameter must be from {low} to {high}")
    return value


def parse(params: Mapping[str, str], now: datetime | None = None, *,
          allowed_metrics: tuple[str, ...] = METRICS, need_property: bool = False) -> Query:
    now = now or datetime.now(UTC)
    site = parse_site_id(params)
    period = params.get("period") or "30d"
    start, end = period_range(period, params.get("date"), now)
    interval_raw = params.get("interval") or default_interval(period)
    if interval_raw not in INTERVALS:
        raise BadRequest(f"Error parsing `interval` parameter: invalid interval `{interval_raw}`. "
                         f"Valid intervals are {', '.join(INTERVALS)}")
    prop = params.get("property")
    if need_property and not prop:
        raise BadRequest("The `property` parameter is required for breakdown. Example: "
                         "property=event:page")
    if prop:
        check_property(prop)
    compare = params.get("compare")
    if compare not in (None, "", "previous_period"):
        raise BadRequest("The only supported value of `compare` is previous_period")
    return Query(
        site=site, period=period, start=start, end=end,
        metrics=parse_metrics(params.get("metrics"), allowed_metrics),
        property=prop, filters=parse_filters(params.get("filters")),
        interval=INTERVALS[interval_raw],
        limit=_int(params, "limit", 100, 1, MAX_LIMIT), page=_int(params, "page", 1, 1, 100000),
        compare=compare == "previous_period",
    )


def result_key(prop: str) -> str:
    """The key a breakdown row uses for its property, as Plausible names it."""
    if prop.startswith("event:props:"):
        return prop.removeprefix("event:props:")
    name = prop.split(":", 1)[1]
    return {"device_type": "device"}.get(name, name)
