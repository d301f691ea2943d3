"""Parse a Stats API v2 query (`POST /api/v2/query`, Plausible's stats-api.md) once,
into a typed `V2Query` whose filters are the stats model's tree; every error is a
`BadRequest` worded as Plausible words it, so nothing unchecked reaches the SQL.

What is read: `site_id`, `metrics`, `date_range` (a period or `[from, to]` dates or
ISO 8601 date-times), `date` (the day periods are relative to), `dimensions`
(`event:*`, `visit:*`, `time`, `time:hour|day|week|month`, `event:props:<name>`),
`filters` (`is`, `is_not`, `contains`, `contains_not`, `matches`, `matches_not`,
`matches_wildcard(_not)`, with `{"case_sensitive": false}`; `and`, `or`, `not`),
`order_by`, `include` (`imports`, `time_labels`, `total_rows`) and `pagination`.
Refused with a message: behavioral filters (`has_done`), segments, comparisons.

Country and region names (`visit:country_name`, `visit:region_name`) are read from
the codes stored (ISO 3166 names from `pycountry`): a filter on names becomes one on
the matching codes, and a dimension groups by code and is named afterwards.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

from traceglider.errors import BadRequest
from traceglider.sites import site_id
from traceglider.stats.model import And, Condition, Node, Not, Or

EVENT_DIMENSIONS = ("event:goal", "event:page", "event:hostname", "event:name")
VISIT_DIMENSIONS = (
    "visit:entry_page", "visit:exit_page", "visit:source", "visit:referrer", "visit:channel",
    "visit:utm_medium", "visit:utm_source", "visit:utm_campaign", "visit:utm_content", "visit:utm_term",
    "visit:device", "visit:browser", "visit:browser_version", "visit:os", "visit:os_version",
    "visit:country", "visit:region", "visit:city", "visit:country_name", "visit:region_name",
    "visit:city_name",
)
NAMED = {"visit:country_name": "visit:country", "visit:region_name": "visit:region"}
TIME_DIMENSIONS = ("time", "time:hour", "time:day", "time:week", "time:month")
# metrics the stats chain computes, and those made here from them
NATIVE_METRICS = ("visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "visit_duration",
                  "events", "scroll_depth", "time_on_page")
DERIVED_METRICS = ("percentage", "conversion_rate", "group_conversion_rate")
REVENUE_METRICS = ("total_revenue", "average_revenue")
METRICS = NATIVE_METRICS + DERIVED_METRICS + REVENUE_METRICS
SESSION_METRICS = ("bounce_rate", "views_per_visit", "visit_duration")
LEAF_OPERATORS = ("is", "is_not", "contains", "contains_not", "matches", "matches_not",
                  "matches_wildcard", "matches_wildcard_not")
KEYS = ("site_id", "metrics", "date_range", "date", "dimensions", "filters", "order_by", "include",
        "pagination")
INCLUDE_KEYS = ("imports", "time_labels", "total_rows")
DEFAULT_LIMIT = 10_000
MAX_LIMIT = 10_000
MAX_FILTER_NODES = 100
MAX_CLAUSES = 100
MAX_CLAUSE = 2000
MAX_DAYS = 5000
MIN_YEAR, MAX_YEAR = 1970, 2999  # within datetime's range, with room for a period around them
PROP_NAME = re.compile(r"^[^\x00-\x1f]{1,300}$")
# What Python's `re` takes and RE2 (DuckDB's regexp, as Plausible's ClickHouse) refuses:
# lookarounds, backreferences, atomic groups, possessive repetition.
RE2_LACKS = re.compile(r"\(\?(?:[=!>]|<[=!]|P=)|\\[1-9]|\\g<|[*+?}]\+")


def _i(value: Any) -> str:
    """A value as Plausible's messages quote it (Elixir's inspect, near enough)."""
    import json

    try:
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))[:300]
    except (TypeError, ValueError):
        return repr(value)[:300]


@dataclass(frozen=True)
class V2Query:
    site: str
    start: datetime  # inclusive, naive UTC
    end: datetime  # exclusive, naive UTC
    metrics: tuple[str, ...]
    dimensions: tuple[str, ...]  # as asked (`time` resolved to its bucket)
    filters: Node | None
    order_by: tuple[tuple[str, str], ...]  # as given, or Plausible's default
    include: dict[str, bool] = field(default_factory=dict)
    include_given: dict[str, Any] | None = None
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    pagination_given: dict[str, Any] | None = None
    raw_filters: list[Any] = field(default_factory=list)

    @property
    def goal_filtered(self) -> bool:
        return any(c.dimension == "event:goal" for c in _leaves(self.filters))


def _leaves(node: Node | None) -> list[Condition]:
    if node is None:
        return []
    if isinstance(node, Condition):
        return [node]
    if isinstance(node, Not):
        return _leaves(node.child)
    return [c for child in node.children for c in _leaves(child)]


def _toplevel(node: Node | None) -> list[Node]:
    if node is None:
        return []
    return list(node.children) if isinstance(node, And) else [node]


def is_dimension(name: Any) -> bool:
    if not isinstance(name, str):
        return False
    if name.startswith("event:props:"):
        return bool(PROP_NAME.match(name.removeprefix("event:props:")))
    return name in EVENT_DIMENSIONS or name in VISIT_DIMENSIONS


def level(dimension: str) -> str:
    if dimension in TIME_DIMENSIONS:
        return "time"
    return "event" if dimension.startswith("event:") else "visit"


# -- date ranges ------------------------------------------------------------------------

def _month_start(d: date, back: int = 0) -> date:
    month = d.year * 12 + d.month - 1 - back
    return date(month // 12, month % 12 + 1, 1)


def _in_range(d: date, what: Any) -> date:
    if not MIN_YEAR <= d.year <= MAX_YEAR:
        raise BadRequest(f"Invalid date_range {_i(what)}: dates are from {MIN_YEAR} to {MAX_YEAR}.")
    return d


def _days(first: date, last: date) -> tuple[datetime, datetime]:
    _in_range(first, first.isoformat())
    _in_range(last, last.isoformat())
    if last < first:
        raise BadRequest(f"Invalid date_range {_i([first.isoformat(), last.isoformat()])}: it ends before it starts.")
    if (last - first).days > MAX_DAYS:
        raise BadRequest(f"Invalid date_range: at most {MAX_DAYS} days.")
    return (datetime.combine(first, datetime.min.time()),
            datetime.combine(last + timedelta(days=1), datetime.min.time()))


def _instant(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is None:
        return None
    return value.astimezone(UTC).replace(tzinfo=None)


def date_range(raw: Any, today: date, now: datetime, first_day: date | None) -> tuple[datetime, datetime]:
    """[start, end) in naive UTC, as Plausible's parser reads `date_range`: `Nd` and
    `Nmo` end before today and this month (`7d` is the 7 days before today), `day`,
    `month` and `year` are the whole current ones, `all` starts on the site's first
    day of data."""
    if isinstance(raw, list) and len(raw) == 2 and all(isinstance(x, str) for x in raw):
        try:
            return _days(date.fromisoformat(raw[0]), date.fromisoformat(raw[1]))
        except ValueError:
            pass
        start, last = _instant(raw[0]), _instant(raw[1])
        if start is None or last is None or last < start or not (
                start.year >= MIN_YEAR and last.year <= MAX_YEAR):
            raise BadRequest(f"Invalid date_range {_i(raw)}.")
        if (last - start).days > MAX_DAYS:
            raise BadRequest(f"Invalid date_range: at most {MAX_DAYS} days.")
        return start, last + timedelta(seconds=1)  # the end second is included
    if not isinstance(raw, str):
        raise BadRequest(f"Invalid date_range {_i(raw)}")
    if raw in ("realtime", "30m"):
        minutes = 5 if raw == "realtime" else 30
        end = now.replace(microsecond=0) + timedelta(seconds=5)
        return end - timedelta(minutes=minutes, seconds=5), end
    if raw == "day":
        return _days(today, today)
    if raw == "month":
        return _days(_month_start(today), _month_start(today, -1) - timedelta(days=1))
    if raw == "year":
        return _days(date(today.year, 1, 1), date(today.year, 12, 31))
    if raw == "all":
        return _days(min(first_day or today, today), today)
    match = re.fullmatch(r"(\d{1,4})(d|mo)", raw)
    if match:
        n, unit = int(match.group(1)), match.group(2)
        if unit == "d" and 0 < n <= MAX_DAYS:
            return _days(today - timedelta(days=n), today - timedelta(days=1))
        if unit == "mo" and 0 < n <= 100:
            return _days(_month_start(today, n), _month_start(today) - timedelta(days=1))
    raise BadRequest(f"Invalid date_range {_i(raw)}")


def time_bucket(start: datetime, end: datetime) -> str:
    """The bucket `time` stands for: hours for a day or less, days up to 40 days,
    weeks up to 52 weeks, months beyond."""
    span = end - start
    if span <= timedelta(days=1):
        return "time:hour"
    if span <= timedelta(days=40):
        return "time:day"
    if span <= timedelta(weeks=52):
        return "time:week"
    return "time:month"


# -- names of countries and regions ------------------------------------------------------

@lru_cache(maxsize=1)
def _countries() -> dict[str, str]:
    import pycountry

    return {c.alpha_2: getattr(c, "common_name", None) or c.name for c in pycountry.countries}


@lru_cache(maxsize=1)
def _regions() -> dict[str, str]:
    import pycountry

    return {s.code: s.name for s in pycountry.subdivisions}


def place_name(dimension: str, code: Any) -> str | None:
    """The English name of a stored country or region code."""
    if not isinstance(code, str):
        return None
    table = _countries() if dimension == "visit:country_name" else _regions()
    return table.get(code, code)


def _codes_named(dimension: str, op: str, clauses: tuple[str, ...], case_sensitive: bool) -> tuple[str, ...]:
    """The stored codes whose names pass one leaf on names (without its negation)."""
    table = _countries() if dimension == "visit:country_name" else _regions()
    flags = 0 if case_sensitive else re.IGNORECASE
    base = op.removesuffix("_not")
    found = []
    for code, name in table.items():
        text = name if case_sensitive else name.lower()
        for clause in clauses:
            wanted = clause if case_sensitive else clause.lower()
            if (base == "is" and text == wanted) or (base == "contains" and wanted in text):
                found.append(code)
            elif base in ("matches", "matches_wildcard"):
                pattern = clause if base == "matches" else _wildcard(clause)
                try:
                    if re.search(pattern, name, flags):
                        found.append(code)
                except re.error:
                    raise BadRequest(f"Invalid filter: {_i(clause)} is not a regular expression") from None
            else:
                continue
            break
    return tuple(found) or ("\x00none",)  # a code no row has: the leaf matches nothing


def _wildcard(glob: str) -> str:
    return "^" + ".*".join(re.escape(part) for part in glob.replace("**", "*").split("*")) + "$"


# -- filters ------------------------------------------------------------------------

def _filter(raw: Any, depth: int, counter: list[int]) -> Node:
    counter[0] += 1
    if counter[0] > MAX_FILTER_NODES or depth > 20:
        raise BadRequest(f"Invalid filters: at most {MAX_FILTER_NODES} filters, nested at most 20 deep.")
    if not isinstance(raw, list) or not raw or not isinstance(raw[0], str):
        raise BadRequest(f"Invalid filter {_i(raw)}.")
    op = raw[0]
    if op in ("and", "or"):
        if len(raw) != 2 or not isinstance(raw[1], list) or not raw[1]:
            raise BadRequest(f"Invalid filter {_i(raw)}.")
        children = tuple(_filter(child, depth + 1, counter) for child in raw[1])
        return And(children) if op == "and" else Or(children)
    if op == "not":
        if len(raw) != 2:
            raise BadRequest(f"Invalid filter {_i(raw)}.")
        return Not(_filter(raw[1], depth + 1, counter))
    if op in ("has_done", "has_not_done"):
        raise BadRequest(f"Invalid filter {_i(raw)}: behavioral filters (has_done, has_not_done) "
                         "are not supported by this server.")
    if op not in LEAF_OPERATORS:
        raise BadRequest(f"Unknown operator for filter {_i(raw)}.")
    if len(raw) not in (3, 4):
        raise BadRequest(f"Invalid filter {_i(raw)}.")
    dimension, clauses = raw[1], raw[2]
    if dimension == "segment":
        raise BadRequest("Invalid filter: segments are not supported by this server.")
    if not is_dimension(dimension):
        raise BadRequest(f"Invalid filter {_i(raw)}")
    if not isinstance(clauses, list) or not clauses or len(clauses) > MAX_CLAUSES:
        raise BadRequest(f"Invalid filter {_i(raw)}.")
    if dimension == "visit:city" and all(isinstance(c, int) and not isinstance(c, bool) for c in clauses):
        clauses = [str(c) for c in clauses]
    if not all(isinstance(c, str) and len(c) <= MAX_CLAUSE and "\x00" not in c for c in clauses):
        raise BadRequest(f"Invalid filter {_i(raw)}.")
    if dimension == "visit:country" and op in ("is", "is_not") and not all(len(c) == 2 for c in clauses):
        raise BadRequest("Invalid visit:country filter, visit:country needs to be a valid 2-letter country code.")
    if dimension == "event:goal" and op not in ("is", "contains"):
        raise BadRequest("Invalid filters. Only `is` and `contains` operators are valid for event:goal.")
    modifiers = raw[3] if len(raw) == 4 else {}
    if not isinstance(modifiers, dict) or set(modifiers) - {"case_sensitive"} or not isinstance(
            modifiers.get("case_sensitive", True), bool):
        raise BadRequest(f"Invalid filter {_i(raw)}: the only modifier is {{\"case_sensitive\": false}}.")
    case_sensitive = modifiers.get("case_sensitive", True)
    if op.startswith("matches") and not op.startswith("matches_wildcard"):
        for clause in clauses:
            try:
                re.compile(clause)
            except re.error:
                raise BadRequest(f"Invalid filter {_i(raw)}: {_i(clause)} is not a regular expression.") from None
            if RE2_LACKS.search(clause):
                raise BadRequest(f"Invalid filter {_i(raw)}: {_i(clause)} is not a regular expression in RE2 "
                                 "syntax (no lookarounds, backreferences, atomic groups or possessive "
                                 "repetition), which Plausible and this server use.")
    values = tuple(clauses)
    if dimension in NAMED:
        leaf = Condition("is", NAMED[dimension], _codes_named(dimension, op, values, case_sensitive))
        return Not(leaf) if op.endswith("_not") else leaf
    if dimension == "event:goal" and op == "contains":
        raise BadRequest("Invalid filters. The `contains` operator on event:goal is not supported by "
                         "this server: name the goals with `is`.")
    return Condition(op, dimension, values, case_insensitive=not case_sensitive)


def parse_filters(raw: Any) -> Node | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise BadRequest("Invalid filters passed.")
    counter = [0]
    nodes = [_filter(f, 0, counter) for f in raw]
    for nested in (n for n in nodes if not isinstance(n, Condition)):
        if any(c.dimension in ("event:goal", "event:hostname") for c in _leaves(nested)):
            dim = next(c.dimension for c in _leaves(nested) if c.dimension in ("event:goal", "event:hostname"))
            raise BadRequest(f"Invalid filters. Dimension `{dim}` can only be filtered at the top level.")
    if not nodes:
        return None
    return nodes[0] if len(nodes) == 1 else And(tuple(nodes))


# -- the query ------------------------------------------------------------------------

def _metric_list(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw:
        raise BadRequest("#/metrics: Required property metrics was not present, or is empty.")
    for metric in raw:
        if metric not in METRICS:
            raise BadRequest(f"Unknown metric '{_i(metric)}'.")
    if len(set(raw)) != len(raw):
        raise BadRequest("Metrics cannot be queried multiple times.")
    return tuple(raw)


def _dimension_list(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(is_dimension(d) or d in TIME_DIMENSIONS for d in raw):
        raise BadRequest(f"Invalid dimensions '{_i(raw)}'")
    if len(set(raw)) != len(raw) or sum(d in TIME_DIMENSIONS for d in raw) > 1:
        raise BadRequest(f"Invalid dimensions '{_i(raw)}': each at most once, one time dimension.")
    return tuple(raw)


def _order_by(raw: Any, metrics: tuple[str, ...], dimensions: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    if raw is None:
        time = [(d, "asc") for d in dimensions if d in TIME_DIMENSIONS]
        return (*time, (metrics[0], "desc"))
    if not isinstance(raw, list):
        raise BadRequest(f"Invalid order_by '{_i(raw)}'.")
    out = []
    for entry in raw:
        if not (isinstance(entry, list) and len(entry) == 2 and entry[1] in ("asc", "desc")
                and isinstance(entry[0], str)):
            raise BadRequest(f"Invalid order_by entry '{_i(entry)}'.")
        if entry[0] not in metrics and entry[0] not in dimensions:
            raise BadRequest(f"Invalid order_by entry '{_i(entry)}'. Entry is not a queried metric or dimension.")
        out.append((entry[0], entry[1]))
    return tuple(out)


def _include(raw: Any) -> dict[str, bool]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or set(raw) - set(INCLUDE_KEYS) or not all(isinstance(v, bool) for v in raw.values()):
        raise BadRequest(f"Invalid include '{_i(raw)}'.")
    return dict(raw)


def _pagination(raw: Any) -> tuple[int, int]:
    if raw is None:
        return DEFAULT_LIMIT, 0
    if not isinstance(raw, dict) or set(raw) - {"limit", "offset"}:
        raise BadRequest(f"Invalid pagination '{_i(raw)}'.")
    limit, offset = raw.get("limit", DEFAULT_LIMIT), raw.get("offset", 0)
    if not (isinstance(limit, int) and not isinstance(limit, bool) and 1 <= limit <= MAX_LIMIT):
        raise BadRequest(f"#/pagination/limit: must be a whole number from 1 to {MAX_LIMIT}.")
    if not (isinstance(offset, int) and not isinstance(offset, bool) and 0 <= offset <= 10_000_000):
        raise BadRequest("#/pagination/offset: must be a whole number from 0.")
    return limit, offset


def _validate_metrics(metrics: tuple[str, ...], dimensions: tuple[str, ...], filters: Node | None) -> None:
    top = _toplevel(filters)
    goal = "event:goal" in dimensions or any(c.dimension == "event:goal" for c in _leaves(filters))
    page_filter = any(isinstance(n, Condition) and n.dimension == "event:page" for n in top)
    any_page_filter = any(c.dimension == "event:page" for c in _leaves(filters))
    for metric in metrics:
        if metric in ("conversion_rate", "group_conversion_rate") and not goal:
            raise BadRequest(f"Metric `{metric}` can only be queried with event:goal filters or dimensions.")
        if metric in ("scroll_depth", "time_on_page") and "event:page" not in dimensions and not page_filter:
            raise BadRequest(f"Metric `{metric}` can only be queried with event:page filters or dimensions.")
        if metric == "views_per_visit":
            if any_page_filter:
                raise BadRequest(f"Metric `{metric}` cannot be queried with a filter on `event:page`.")
            if dimensions:
                raise BadRequest(f"Metric `{metric}` cannot be queried with `dimensions`.")
        if metric == "percentage" and not dimensions:
            raise BadRequest("Metric `percentage` can only be queried with dimensions.")
    session = [m for m in metrics if m in SESSION_METRICS]
    event_dims = [d for d in dimensions if level(d) == "event"]
    if session and event_dims:
        raise BadRequest(f"Session metric(s) `{'`, `'.join(session)}` cannot be queried along with event "
                         f"dimension(s) `{'`, `'.join(event_dims)}`")
    if any(m in ("scroll_depth", "time_on_page") for m in metrics) and any(level(d) == "visit" for d in dimensions):
        raise BadRequest("Metrics `scroll_depth` and `time_on_page` cannot be queried with visit dimensions.")


def parse(document: Any, now: datetime, first_day: Any = None) -> V2Query:
    """A V2Query from the decoded body; `now` is aware UTC, `first_day` a callable
    giving the site's first day of data (for `all`)."""
    if not isinstance(document, dict):
        raise BadRequest("Invalid query: the body must be a JSON object.")
    unknown = sorted(set(document) - set(KEYS))
    if unknown:
        raise BadRequest(f"Invalid query: unknown key '{unknown[0]}'.")
    site = site_id(document.get("site_id"), "#/site_id: Required property site_id was not present.",
                   "Invalid site ID")
    metrics = _metric_list(document.get("metrics"))
    if "date_range" not in document:
        raise BadRequest("#/date_range: Required property date_range was not present.")
    today = now.astimezone(UTC).date()
    if document.get("date") is not None:
        try:
            today = date.fromisoformat(str(document["date"]))
        except ValueError:
            raise BadRequest(f"Invalid date '{str(document['date'])[:100]}'.") from None
        if not MIN_YEAR < today.year < MAX_YEAR:
            raise BadRequest(f"Invalid date '{today.isoformat()}': from {MIN_YEAR + 1} to {MAX_YEAR - 1}.")
    raw_range = document["date_range"]
    first = first_day(site) if raw_range == "all" and callable(first_day) else None
    start, end = date_range(raw_range, today, now.astimezone(UTC).replace(tzinfo=None), first)
    asked = _dimension_list(document.get("dimensions"))
    dimensions = tuple(time_bucket(start, end) if d == "time" else d for d in asked)
    filters = parse_filters(document.get("filters"))
    _validate_metrics(metrics, dimensions, filters)
    include = _include(document.get("include"))
    if include.get("time_labels") and not any(d in TIME_DIMENSIONS for d in dimensions):
        raise BadRequest("Invalid include.time_labels: requires a time dimension.")
    order_by = _order_by(document.get("order_by"), metrics, asked)
    order_by = tuple((time_bucket(start, end) if k == "time" else k, d) for k, d in order_by)
    limit, offset = _pagination(document.get("pagination"))
    return V2Query(site, start, end, metrics, dimensions, filters, order_by, include,
                   document.get("include"), limit, offset, document.get("pagination"),
                   document.get("filters") or [])
