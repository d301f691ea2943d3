"""All stats SQL: a `model.Question` and the files that answer it in, SQL text with
named `$pN` parameters out.

Two relations are defined at the top of every statement and read with DuckDB's
projection and filter pushdown: `ev` (events: the compacted days' files, sorted by
type, name and page so their filters skip row groups, and today's events sessionised
while reading) and `vi` (visits: the visits files of those days and of the day before,
and the visits of the days sessionised while reading). Column names come only from
the allowlists here and in `query.py`/`metrics.py`; every value a client sent, and
every stored value, is a bound parameter or stays in the data: nothing read from the
files is ever formatted into SQL. Globs
(`*` and `**`, both any characters, as Plausible has them today) become bound
regular expressions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from traceglider import value_names
from traceglider.errors import BadRequest
from traceglider.stats import metrics as M
from traceglider.stats.model import TIME_DIMENSIONS, And, Condition, Node, Not, Or, Question
from traceglider.storage.visits_sql import VISITOR_HASH_SQL

INTER = M.INTER_SQL
# Property -> column of `ev` (event level) or of `vi` (visit level).
EVENT_COLUMNS = {"event:page": "path", "event:hostname": "hostname", "event:name": "name"}
VISIT_COLUMNS = {
    "visit:entry_page": "entry_page", "visit:exit_page": "exit_page", "visit:source": "source",
    "visit:referrer": "referrer", "visit:channel": "channel", "visit:utm_source": "utm_source",
    "visit:utm_medium": "utm_medium", "visit:utm_campaign": "utm_campaign", "visit:utm_term": "utm_term",
    "visit:utm_content": "utm_content", "visit:country": "country", "visit:region": "region",
    "visit:city": "city", "visit:city_name": "city_name",
    "visit:device": "device_type", "visit:browser": "browser", "visit:browser_version": "browser_version",
    "visit:os": "os", "visit:os_version": "os_version", "visit:screen": "screen", "visit:language": "language",
    "visit:entry_page_hostname": "hostname", "visit:timezone": "timezone",
}
_EVENT_SELECT = ("received_at AS ts, hash(visitor_id) AS vh, visit_id AS vkey, type, name, path, hostname, "
                 f"CASE WHEN type IN {INTER} THEN props END AS props, scroll_depth, engagement_ms")
_EVENT_NULLS = ("NULL::TIMESTAMPTZ AS ts, NULL::UBIGINT AS vh, NULL::BIGINT AS vkey, NULL::VARCHAR AS type, "
                "NULL::VARCHAR AS name, NULL::VARCHAR AS path, NULL::VARCHAR AS hostname, NULL::VARCHAR AS props, "
                "NULL::SMALLINT AS scroll_depth, NULL::BIGINT AS engagement_ms")
VISIT_COLUMNS_READ = ("vkey", "vh", "start", "end", "duration", "entry_page", "exit_page", "hostname", "pageviews",
                      "interactions", "events", "start_day_pageviews", "start_day_events", "engaged_ms", "bounce",
                      "scroll_depth", "referrer", "source", "channel", "utm_source", "utm_medium", "utm_campaign",
                      "utm_term", "utm_content", "country", "region", "city", "city_name", "device_type",
                      "browser", "browser_version", "os", "os_version", "screen", "language", "timezone")
# the columns of the visits files (`vkey` and `vh` are stored as visit_id, visitor_hash)
VISIT_FILE_COLUMNS = ("visit_id", "visitor_hash", *VISIT_COLUMNS_READ[2:])


def _visit_select(missing: tuple[str, ...] = ()) -> str:
    """The visits' columns as `vi` names them; NULL for those its files lack (files
    compacted before the column existed)."""
    return "visit_id AS vkey, visitor_hash AS vh, " + ", ".join(
        f'NULL::{_VISIT_TYPES.get(c, "VARCHAR")} AS "{c}"' if c in missing else f'"{c}"'
        for c in VISIT_COLUMNS_READ[2:])


@dataclass
class Params:
    values: dict[str, Any] = field(default_factory=dict)

    def add(self, value: Any) -> str:
        if isinstance(value, datetime):  # the files hold UTC instants
            value = value.replace(tzinfo=UTC) if value.tzinfo is None else value
        name = f"p{len(self.values)}"
        self.values[name] = value
        return "$" + name


@dataclass(frozen=True)
class Relations:
    """What `ev` and `vi` are made of: file URIs and the tables of sessionised runs."""
    event_files: tuple[str, ...] = ()
    visit_files: tuple[str, ...] = ()
    run_tables: tuple[tuple[str, str], ...] = ()  # (events table, visits table)
    visit_missing: tuple[str, ...] = ()  # visit columns none of visit_files has


def relations(r: Relations, p: Params) -> str:
    """The `ev` and `vi` CTEs (inlined where they are read, so filters reach the scans)."""
    ev = []
    if r.event_files:
        ev.append(f"SELECT {_EVENT_SELECT} FROM read_parquet({p.add(list(r.event_files))}, hive_partitioning = false)")
    ev += [f"SELECT {_EVENT_SELECT} FROM {e}" for e, _ in r.run_tables]
    vi = []
    replaced = " UNION ALL ".join(f"SELECT visit_id FROM {v}" for _, v in r.run_tables)
    if r.visit_files:
        # a run's visits replace those of the compacted day before that it continued
        where = f" WHERE visit_id NOT IN ({replaced})" if replaced else ""
        vi.append(f"SELECT {_visit_select(r.visit_missing)} FROM read_parquet({p.add(list(r.visit_files))}, "
                  f"union_by_name = true, hive_partitioning = false){where}")
    vi += [f"SELECT {_visit_select()} FROM {v}" for _, v in r.run_tables]
    if not ev:
        ev.append(f"SELECT {_EVENT_NULLS} WHERE false")
    if not vi:
        vi.append("SELECT " + ", ".join(f'NULL::{_VISIT_TYPES.get(c, "VARCHAR")} AS "{c}"' for c in VISIT_COLUMNS_READ)
                  + " WHERE false")
    return (f"ev AS NOT MATERIALIZED ({' UNION ALL '.join(ev)}), "
            f"vi AS NOT MATERIALIZED ({' UNION ALL '.join(vi)})")


_VISIT_TYPES = {"vkey": "BIGINT", "vh": "BIGINT", "start": "TIMESTAMPTZ", "end": "TIMESTAMPTZ",
                "duration": "DOUBLE", "pageviews": "INTEGER", "interactions": "INTEGER", "events": "INTEGER",
                "start_day_pageviews": "INTEGER", "start_day_events": "INTEGER", "engaged_ms": "BIGINT",
                "bounce": "BOOLEAN", "scroll_depth": "SMALLINT", "city": "INTEGER"}


# -- conditions ---------------------------------------------------------------------

def glob_regex(pattern: str) -> str:
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append(".*")  # Plausible today: `*` is any characters, as `**` is
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


def level(dimension: str) -> str:
    """event, visit or time (a dimension); goal conditions are event level."""
    if dimension in EVENT_COLUMNS or dimension.startswith("event:props:") or dimension == "event:goal":
        return "event"
    if dimension in VISIT_COLUMNS:
        return "visit"
    if dimension in TIME_DIMENSIONS:
        return "time"
    raise BadRequest(f"Invalid property '{dimension}'")


def column(dimension: str, p: Params, alias: str | None = None) -> str:
    """The SQL expression of a property on `e` (events) or `v` (visits)."""
    if dimension.startswith("event:props:"):
        key = dimension.removeprefix("event:props:")
        return f"json_extract_string({alias or 'e'}.props, {p.add('$.' + _json_key(key))})"
    if dimension in EVENT_COLUMNS:
        return f"{alias or 'e'}.{EVENT_COLUMNS[dimension]}"
    if dimension in VISIT_COLUMNS:  # old and new value names read as one
        return value_names.read_sql(dimension, f"{alias or 'v'}.{VISIT_COLUMNS[dimension]}")
    if dimension == "event:goal":
        raise BadRequest("event:goal can only be used in a breakdown or as a goal filter")
    raise BadRequest(f"Invalid property '{dimension}'")


def _json_key(key: str) -> str:
    return '"' + key.replace('"', "").replace("\\", "") + '"'


def condition(c: Condition, p: Params, alias: str) -> str:
    """One leaf on `alias` (`e` or `v`); negations also match a missing value."""
    if c.dimension == "event:goal":
        alts = [goal_condition(g, alias, p) for g in c.values]
        cond = "(" + " OR ".join(alts) + ")"
        return f"NOT {cond}" if c.negated else cond
    expr = column(c.dimension, p, alias)
    base = c.op.removesuffix("_not")
    ci = c.case_insensitive
    if base == "is" and not ci and "" not in c.values:
        # a plain comparison reaches the Parquet scan (row groups skipped by statistics)
        values = ", ".join(p.add(v) for v in c.values)
        cond = f"({expr} IN ({values}))" if len(c.values) > 1 else f"({expr} = {values})"
        return f"NOT coalesce({cond}, false)" if c.negated else cond
    # visit:city is an INTEGER: compared as text under contains, wildcards and negations
    value = f"coalesce({expr}::VARCHAR, '')" if c.dimension == "visit:city" else f"coalesce({expr}, '')"
    if ci:
        value = f"lower({value})"
    alts = []
    for v in c.values:
        if base == "is":
            alts.append(f"{value} = {p.add(v.lower() if ci else v)}")
        elif base == "contains":
            alts.append(f"contains({value}, {p.add(v.lower() if ci else v)})")
        elif base == "matches":
            alts.append(f"regexp_matches({value}, {p.add(v)}{', ' + p.add('i') if ci else ''})")
        elif v == "**":
            alts.append("true")
        else:
            alts.append(f"regexp_full_match({value}, {p.add(glob_regex(v))}{', ' + p.add('i') if ci else ''})")
    cond = "(" + " OR ".join(alts) + ")"
    return f"NOT {cond}" if c.negated else cond


def goal_condition(goal: str, alias: str, p: Params) -> str:
    """`Visit /path` (globs allowed) is a pageview goal; anything else an event name."""
    if goal.startswith("Visit "):
        path = goal.removeprefix("Visit ").strip()
        if path == "**":
            return f"({alias}.type = 'pageview')"
        leaf = Condition("matches_wildcard" if "*" in path else "is", "event:page", (path,))
        return f"({alias}.type = 'pageview' AND {condition(leaf, p, alias)})"
    return f"({alias}.type IN {INTER} AND {alias}.name = {p.add(goal)})"


def node_level(node: Node) -> str:
    """event, visit, or mixed: the levels of a subtree's conditions."""
    if isinstance(node, Condition):
        return level(node.dimension)
    children = [node.child] if isinstance(node, Not) else list(node.children)
    levels = {node_level(c) for c in children}
    return levels.pop() if len(levels) == 1 else "mixed"


def _native(node: Node, p: Params, alias: str) -> str:
    if isinstance(node, Condition):
        return condition(node, p, alias)
    if isinstance(node, Not):  # a missing value is not a match: `not` keeps it
        return f"NOT coalesce({_native(node.child, p, alias)}, false)"
    joiner = " AND " if isinstance(node, And) else " OR "
    return "(" + joiner.join(_native(c, p, alias) for c in node.children) + ")"


def filter_sql(node: Node | None, side: str, q: Question, p: Params) -> list[str]:
    """Conditions on `e` (side "event") or `v` (side "visit") for a filter tree. A
    condition of the other level goes through the visit: an event passes a visit
    condition when its visit does; a visit passes event conditions when one of its
    events in the range passes them all (conditions of one level under one `and` are
    one subquery: the same event must match)."""
    if node is None:
        return []
    alias, other = ("e", "v") if side == "event" else ("v", "e")
    lvl = node_level(node)
    if lvl == side:
        return [_native(node, p, alias)]
    if lvl in ("event", "visit"):
        return [_through(_native(node, p, other), side, q, p)]
    if isinstance(node, And):
        same = [c for c in node.children if node_level(c) == ("visit" if side == "visit" else "event")]
        others = [c for c in node.children if node_level(c) not in (side, "mixed")]
        mixed = [c for c in node.children if node_level(c) == "mixed"]
        out = [_native(c, p, alias) for c in same]
        if others:
            out.append(_through(" AND ".join(_native(c, p, other) for c in others), side, q, p))
        for c in mixed:
            out += filter_sql(c, side, q, p)
        return out
    if isinstance(node, Or):
        return ["(" + " OR ".join(" AND ".join(filter_sql(c, side, q, p)) for c in node.children) + ")"]
    assert isinstance(node, Not)
    return ["NOT coalesce(" + " AND ".join(filter_sql(node.child, side, q, p)) + ", false)"]


def _through(cond: str, side: str, q: Question, p: Params) -> str:
    if side == "event":
        return f"e.vkey IN (SELECT v.vkey FROM vi v WHERE {cond})"
    return (f"v.vkey IN (SELECT e.vkey FROM ev e WHERE e.ts >= {p.add(q.start)} AND e.ts < {p.add(q.end)} "
            f"AND {cond})")


def has_event_conditions(node: Node | None) -> bool:
    return node is not None and node_level(node) != "visit"


def filtered_events(q: Question, p: Params) -> str:
    conds = [f"e.ts >= {p.add(q.start)}", f"e.ts < {p.add(q.end)}", *filter_sql(q.filters, "event", q, p)]
    return f"SELECT e.* FROM ev e WHERE {' AND '.join(conds)}"


def filtered_visits(q: Question, p: Params) -> str:
    """Visits started in the range, passing the filters."""
    conds = [f"v.start >= {p.add(q.start)}", f"v.start < {p.add(q.end)}", *filter_sql(q.filters, "visit", q, p)]
    return f"SELECT v.* FROM vi v WHERE {' AND '.join(conds)}"


def matching_visits(q: Question, r: Relations, p: Params) -> str:
    """A self-contained subquery: the visits of `q`'s range passing its filters."""
    return f"WITH {relations(r, p)} {filtered_visits(q, p)}"


def visitor_hash(expr: str) -> str:
    """A visit's `vh` (stored `visitor_hash`) of a visitor id column `expr`."""
    return VISITOR_HASH_SQL.format(v=expr)


def _visit_conditions_only(q: Question, p: Params) -> list[str]:
    return filter_sql(q.filters, "visit", q, p)


def _period_metrics(q: Question, p: Params) -> dict[str, str]:
    """Visitors, pageviews and events of the range from the visits alone: a visit has
    events in a day-aligned range when it overlaps it; those dated by the visit's start
    day (`start_day_*`) tell apart its events on either side of a midnight."""
    s, e = p.add(q.start), p.add(q.end)
    inside = f'v.start < {e} AND v."end" >= {s}'

    def part(total: str, first_day: str) -> str:
        return (f"sum(CASE WHEN NOT ({inside}) THEN 0 WHEN v.start >= {s} THEN "
                f'(CASE WHEN v."end" < {e} THEN v.{total} ELSE v.{first_day} END) '
                f"ELSE v.{total} - v.{first_day} END)")
    return {"visitors": f"count(DISTINCT v.vh) FILTER (WHERE {inside})",
            "pageviews": part("pageviews", "start_day_pageviews"),
            "events": part("events", "start_day_events")}


_WIDTH_US = {"hour": 3_600_000_000, "day": 86_400_000_000, "week": 604_800_000_000}


def _visitors_by_bucket(q: Question, dims: list[str], names: list[str], p: Params, by: str) -> str:
    """Unique visitors per time bucket from the visits (a sixth of the rows of the
    events, and no visitor id to hash): a visitor counts in every bucket of the range
    its visit overlaps. That is exactly the buckets holding one of its events, because
    a visit has no gap over 30 minutes and a bucket (an hour at least, aligned with the
    day-aligned range) is longer."""
    s, e = p.add(q.start), p.add(q.end)
    inner, outer = [], []
    for d, n in zip(dims, names, strict=True):
        if d not in TIME_DIMENSIONS:
            inner.append(f"{column(d, p, 'v')} AS {n}")
            outer.append(n)
            continue
        unit = TIME_DIMENSIONS[d]
        first = time_bucket(unit, f"greatest(v.start, {s})")
        last = time_bucket(unit, f'least(v."end", {e} - INTERVAL 1 MICROSECOND)')
        inner += [f"{first} AS {n}_a", f"{last} AS {n}_b"]
        if unit in _WIDTH_US:
            series = f"range({n}_a, {n}_b + {_WIDTH_US[unit]}, {_WIDTH_US[unit]})"
        else:  # months differ in length
            series = (f"list_transform(range(make_timestamp({n}_a), make_timestamp({n}_b) + INTERVAL 1 MONTH, "
                      f"INTERVAL 1 MONTH), x -> epoch_us(x))")
        outer.append(f"unnest(CASE WHEN {n}_a = {n}_b THEN [{n}_a] ELSE {series} END) AS {n}")
    where = [f"v.start < {e}", f'v."end" >= {s}', *_visit_conditions_only(q, p)]
    return (f"SELECT {', '.join(names)}, count(DISTINCT vh) AS visitors FROM (SELECT {', '.join(outer)}, vh "
            f"FROM (SELECT v.vh, {', '.join(inner)} FROM vi v WHERE {' AND '.join(where)})){by}")


def _by_visitor(dims_sel: str, names: list[str], metrics: dict[str, str], wanted: list[str], source: str,
                vh: str) -> str:
    """`wanted` of `metrics` (visitors and counts) by the dimensions `names`, in two
    steps: grouped by the dimensions and the visitor, then by the dimensions. DuckDB
    answers that 2.3 times faster than count(DISTINCT) over millions of events."""
    inner = "".join(f", {metrics[m]} AS {m}" for m in wanted if m != "visitors")
    outer = ", ".join(("count(x.vh)" if m == "visitors" else f"sum(x.{m})") + f" AS {m}" for m in wanted)
    keys = "".join(f"x.{n}, " for n in names)
    by = f" GROUP BY {keys[:-2]}" if names else ""
    return (f"SELECT {keys}{outer} FROM (SELECT {dims_sel}{vh} AS vh{inner} {source} "
            f"GROUP BY {''.join(f'{n}, ' for n in names)}{vh}) x{by}")


def _select(metrics: dict[str, str], wanted: list[str]) -> str:
    return ", ".join(f"{metrics[m]} AS {m}" for m in wanted)


def time_bucket(unit: str, col: str) -> str:
    """The UTC start of `col`'s hour, day, week (from Monday) or month, in microseconds
    since the epoch. Integer arithmetic: DuckDB's date_trunc on a TIMESTAMPTZ goes
    through the ICU calendar for every row, about ten times slower over 10 million
    events. The answer's select turns the buckets into timestamps (`bucket_time`)."""
    us = f"epoch_us({col})"
    if unit == "hour":
        return f"({us} // 3600000000 * 3600000000)"
    day = f"({us} // 86400000000)"
    if unit == "day":
        return f"({day} * 86400000000)"
    if unit == "week":  # 1970-01-01, day 0, was a Thursday
        return f"(({day} - ({day} + 3) % 7) * 86400000000)"
    return f"epoch_us(date_trunc('month', DATE '1970-01-01' + {day}::INTEGER)::TIMESTAMP)"


def bucket_time(expr: str) -> str:
    return f"make_timestamp({expr})"


def _dim_expr(dim: str, alias: str, p: Params) -> str:
    if dim in TIME_DIMENSIONS:
        return time_bucket(TIME_DIMENSIONS[dim], "e.ts" if alias == "e" else "v.start")
    return column(dim, p, alias)


def aggregate(q: Question, r: Relations, p: Params | None = None) -> tuple[str, dict[str, Any]]:
    """One statement computing q.metrics (those of metrics.kind event, visit, page),
    grouped by q.dimensions (`d0`, `d1`, ... first in each row)."""
    p = p or Params()
    wanted = [m for m in q.metrics if M.kind(m) != "derived"]
    if not wanted:
        raise BadRequest("No metric to compute")
    dims = list(q.dimensions)
    levels = {level(d) for d in dims}
    names = [f"d{i}" for i in range(len(dims))]
    sel_d = "".join(f"{n}, " for n in names)
    by = f" GROUP BY {', '.join(names)}" if dims else ""
    head = relations(r, p)
    ctes: list[str] = []
    parts: list[tuple[str, str]] = []
    uses_fe = False

    def event_dims() -> str:  # the dimensions on events (a visit's through its visit)
        return "".join(f"{_dim_expr(d, 'v' if level(d) == 'visit' else 'e', p)} AS {n}, "
                       for d, n in zip(dims, names, strict=True))

    need_vjoin = "visit" in levels and bool(levels - {"visit"})
    fe_from = "FROM fe e LEFT JOIN vi v ON v.vkey = e.vkey" if need_vjoin else "FROM fe e"
    want_event = [m for m in wanted if M.kind(m) == "event"]
    want_visit = [m for m in wanted if M.kind(m) == "visit"]
    want_page = [m for m in wanted if M.kind(m) == "page"]
    if want_event:
        if dims and levels == {"visit"}:  # a visit property: the visits answer
            ctes.append(f"fv0 AS ({filtered_visits(q, p)})")
            vd = "".join(f"{_dim_expr(d, 'v', p)} AS {n}, " for d, n in zip(dims, names, strict=True))
            parts.append(("em", _by_visitor(vd, names, M.VISIT_TABLE_EVENT_METRICS, want_event, "FROM fv0 v",
                                            "v.vh")))
        elif (want_event == ["visitors"] and "time" in levels and levels <= {"time", "visit"} and q.day_aligned
              and not has_event_conditions(q.filters)):
            parts.append(("em", _visitors_by_bucket(q, dims, names, p, by)))
        elif not dims and q.day_aligned and not has_event_conditions(q.filters):
            where = _visit_conditions_only(q, p)
            parts.append(("em", f"SELECT {_select(_period_metrics(q, p), want_event)} FROM vi v"
                                + (f" WHERE {' AND '.join(where)}" if where else "")))
        else:
            uses_fe = True
            parts.append(("em", _by_visitor(event_dims(), names, M.EVENT_METRICS, want_event, fe_from, "e.vh")))
    if want_visit:
        ctes.append(f"fv AS ({filtered_visits(q, p)})")
        if levels <= {"visit", "time"}:  # a visit belongs to the bucket it began in
            vd = "".join(f"{_dim_expr(d, 'v', p)} AS {n}, " for d, n in zip(dims, names, strict=True))
            parts.append(("vm", f"SELECT {vd}{_select(M.VISIT_METRICS, want_visit)} FROM fv v{by}"))
        else:
            uses_fe = True
            xd = ", ".join(f"x.{n}" for n in names)
            parts.append(("vm", f"SELECT {xd}, {_select(M.VISIT_METRICS, want_visit)} FROM "
                                f"(SELECT DISTINCT {event_dims()}e.vkey {fe_from}) x "
                                f"JOIN fv v ON v.vkey = x.vkey GROUP BY {xd}"))
    if want_page:
        if "visit" in levels:
            raise BadRequest("scroll_depth and time_on_page can only be broken down by an "
                             "event property, such as event:page")
        uses_fe = True
        pgroup = ", ".join([*names, "e.vkey", "e.path"])
        parts.append(("pm", f"SELECT {sel_d}{_select(M.PAGE_METRICS, want_page)} FROM "
                            f"(SELECT {event_dims()}max(e.scroll_depth) AS scroll, sum(e.engagement_ms) AS engaged "
                            f"FROM fe e WHERE e.type = 'engagement' GROUP BY {pgroup}) p{by}"))
    if uses_fe:
        ctes.insert(0, f"fe AS NOT MATERIALIZED ({filtered_events(q, p)})")
    ctes += [f"{name} AS ({sql})" for name, sql in parts]
    cols = ", ".join(wanted)
    if not dims:
        sql = f"WITH {head}, {', '.join(ctes)} SELECT {cols} FROM {', '.join(n for n, _ in parts)}"
        return sql, p.values
    first = parts[0][0]
    join = first
    for name, _ in parts[1:]:
        join += f" FULL OUTER JOIN {name} ON " + " AND ".join(
            f"{name}.{n} IS NOT DISTINCT FROM {first}.{n}" for n in names)
    keys = ", ".join(_key(f"coalesce({', '.join(f'{x}.{n}' for x, _ in parts)})", d) + f" AS {n}"
                     for d, n in zip(dims, names, strict=True))
    sql = f"WITH {head}, {', '.join(ctes)} SELECT {keys}, {cols} FROM {join}{_order(q, wanted, names)}"
    if q.limit is not None:
        sql += f" LIMIT {int(q.limit)} OFFSET {int(q.offset)}"
    return sql, p.values


def _key(expr: str, dim: str) -> str:
    return bucket_time(expr) if dim in TIME_DIMENSIONS else expr


def _order(q: Question, wanted: list[str], names: list[str]) -> str:
    terms = []
    for key, direction in q.order_by:
        d = "ASC" if direction == "asc" else "DESC"
        if key in wanted:
            terms.append(f"{key} {d} NULLS LAST")
        elif key in q.dimensions:
            terms.append(f"{names[q.dimensions.index(key)]} {d}")
        else:
            raise BadRequest(f"Cannot order by '{key}': it is neither a metric nor a dimension of the query")
    if not terms:
        first = "visitors" if "visitors" in wanted else wanted[0]
        terms.append(f"{first} DESC NULLS LAST")
    return " ORDER BY " + ", ".join(terms + names)


# -- goals, funnels, navigation, custom event props ----------------------------------

def total_visitors(q: Question, p: Params) -> str:
    """A scalar subquery: unique visitors of the range passing the filters."""
    if has_event_conditions(q.filters) or not q.day_aligned:
        return "(SELECT count(DISTINCT e.vh) FROM fe e)"
    where = _visit_conditions_only(q, p)
    return (f"(SELECT {_period_metrics(q, p)['visitors']} FROM vi v"
            + (f" WHERE {' AND '.join(where)}" if where else "") + ")")


def goals(q: Question, r: Relations, goal_list: list[str]) -> tuple[str, dict[str, Any]]:
    """All visitors, then for each goal: converted visitors and conversions (one pass
    grouped by visitor over the events matching a goal)."""
    p = Params()
    head = relations(r, p)
    base = filtered_events(q, p)
    per, cols, conds = [], [total_visitors(q, p)], []
    for i, g in enumerate(goal_list):
        cond = goal_condition(g, "e", p)
        conds.append(cond)
        per += [f"bool_or({cond}) AS g{i}", f"count(*) FILTER (WHERE {cond}) AS n{i}"]
        cols += [f"count(*) FILTER (WHERE g{i})", f"sum(n{i})"]
    return (f"WITH {head}, fe AS NOT MATERIALIZED ({base}) SELECT {', '.join(cols)} FROM (SELECT {', '.join(per)} "
            f"FROM fe e WHERE {' OR '.join(conds)} GROUP BY e.vh)", p.values)


def funnel(q: Question, r: Relations, steps: list[str]) -> tuple[str, dict[str, Any]]:
    """Visitors reaching each step in order within one visit; the first column is all
    visitors of the range."""
    p = Params()
    head = relations(r, p)
    base = filtered_events(q, p)
    conds = [goal_condition(s, "e", p) for s in steps]
    flags = ", ".join(f"{c} AS c{i}" for i, c in enumerate(conds))
    ctes = [f"fe AS NOT MATERIALIZED ({base})",
            f"fs AS (SELECT e.vkey, e.vh, e.ts, {flags} FROM fe e WHERE {' OR '.join(conds)})",
            "s0 AS (SELECT e.vkey, any_value(e.vh) AS vh, min(e.ts) AS t FROM fs e WHERE c0 GROUP BY e.vkey)"]
    for i in range(1, len(steps)):
        ctes.append(f"s{i} AS (SELECT e.vkey, any_value(e.vh) AS vh, min(e.ts) AS t FROM fs e "
                    f"JOIN s{i - 1} s ON s.vkey = e.vkey AND e.ts >= s.t WHERE e.c{i} GROUP BY e.vkey)")
    counts = ", ".join(f"(SELECT count(DISTINCT vh) FROM s{i})" for i in range(len(steps)))
    return f"WITH {head}, {', '.join(ctes)} SELECT {total_visitors(q, p)}, {counts}", p.values


def navigation(q: Question, r: Relations, page: str) -> tuple[str, dict[str, Any]]:
    """(side, page, pageviews): the page seen before `page` and the one after it."""
    p = Params()
    head = relations(r, p)
    base = filtered_events(q, p)
    at = p.add(page)
    return (f"WITH {head}, fe AS ({base}), pv AS (SELECT e.vkey, e.ts, e.path FROM fe e WHERE e.type = 'pageview' "
            f"AND e.vkey IN (SELECT vkey FROM fe WHERE type = 'pageview' AND path = {at})), "
            f"seq AS (SELECT path, lag(path) OVER w AS prev, lead(path) OVER w AS next FROM pv "
            f"WINDOW w AS (PARTITION BY vkey ORDER BY ts)) "
            f"SELECT 'prev', coalesce(prev, '(entrance)') AS p, count(*) AS n FROM seq "
            f"WHERE path = {at} GROUP BY p UNION ALL "
            f"SELECT 'next', coalesce(next, '(exit)') AS p, count(*) AS n FROM seq "
            f"WHERE path = {at} GROUP BY p", p.values)


def prop_keys(q: Question, r: Relations, name: str, limit: int = 30) -> tuple[str, dict[str, Any]]:
    p = Params()
    head = relations(r, p)
    return (f"WITH {head} SELECT DISTINCT unnest(json_keys(e.props)) AS k FROM ev e "
            f"WHERE e.name = {p.add(name)} AND e.props IS NOT NULL AND e.ts >= {p.add(q.start)} "
            f"AND e.ts < {p.add(q.end)} ORDER BY k LIMIT {int(limit)}", p.values)


def realtime(files: list[str], since: datetime) -> tuple[str, dict[str, Any]]:
    p = Params()
    return (f"SELECT count(DISTINCT visitor_id) FROM read_parquet({p.add(files)}, union_by_name = true, "
            f"hive_partitioning = false) WHERE received_at >= {p.add(since)}", p.values)
