"""What the tracker measures beyond visits, for the dashboard: Web Vitals, opt-in
JavaScript errors, the environment (screens, languages, time zones) and the last 30
minutes by minute.

These columns (metric_name, metric_value, screen_width, language, timezone, an
error's props) are read from the period's Parquet files, only the rows of its type
and only its columns, each event id once. The dashboard's filters apply as
everywhere else: a page or hostname filter to the row itself (the vitals of that
page), every other filter through the visits (`sql.matching_visits`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from traceglider.errors import BadRequest
from traceglider.stats import service
from traceglider.stats import sql as S
from traceglider.stats.engine import Engine
from traceglider.stats.query import Query

# Google's thresholds (web.dev/articles/vitals): good up to the first, poor above the
# second, "needs improvement" between. Milliseconds, CLS unitless.
VITALS: dict[str, tuple[float, float]] = {
    "LCP": (2500, 4000), "INP": (200, 500), "CLS": (0.1, 0.25), "FCP": (1800, 3000), "TTFB": (800, 1800),
}
# Screen classes by CSS width, as Plausible names them.
SCREENS = (("Mobile", 576), ("Tablet", 992), ("Laptop", 1440), ("Desktop", None))
ENVIRONMENT = {"screen": "screen_width", "language": "language", "timezone": "timezone"}
ERROR_NAME = "JS Error"
# the columns of a stored row that answer a filter on the row itself
_ROW_FILTERS = {"event:page": "path", "event:hostname": "hostname"}
_TS = "make_timestamp(epoch_us(received_at))"


def _rows(engine: Engine, q: Query, kind: str | None, cols: str, p: S.Params) -> str | None:
    """A subquery: each event id of the period's rows of `kind` (None: of any type)
    once, with `visitor_id`, `path`, `t` and `cols`, filters applied; None without files."""
    files = engine.files(q.site, q.start, q.end)
    if not files:
        return None
    conds = [f"{_TS} >= {p.add(q.start)}", f"{_TS} < {p.add(q.end)}"]
    if kind is not None:
        conds.insert(0, f"type = {p.add(kind)}")
    rest = []
    for f in q.filters:
        if f.property in _ROW_FILTERS:
            conds.append(S.condition(service.condition(f), p, "e"))
        else:
            rest.append(f)
    source = (f"SELECT event_id, visitor_id, path, {_TS} AS t, {cols} "
              f"FROM read_parquet({p.add(engine.uris([k for k, _ in files]))}, union_by_name = true) e "
              f"WHERE {' AND '.join(conds)}")
    if rest:  # every other filter is on the visit: the row's own visit must match it
        qv = service.question(q.with_filters(tuple(rest)))
        relations, _ = engine.relations(qv)
        source = (f"SELECT r.* FROM ({source}) r SEMI JOIN ({S.matching_visits(qv, relations, p)}) v "
                  f"ON v.vh = {S.visitor_hash('r.visitor_id')} "
                  f'AND r.t BETWEEN v.start::TIMESTAMP AND v."end"::TIMESTAMP')
    return f"SELECT DISTINCT ON (event_id) * FROM ({source})"


def _rating_sql(p: S.Params) -> str:
    """good / ni / poor of `metric_name`, `metric_value` by the thresholds, bound."""
    cases = " ".join(f"WHEN metric_name = {p.add(m)} THEN CASE WHEN metric_value <= {p.add(g)} THEN 'good' "
                     f"WHEN metric_value <= {p.add(b)} THEN 'ni' ELSE 'poor' END" for m, (g, b) in VITALS.items())
    return f"CASE {cases} END"


def _vital_row(p75: float | None, good: int, ni: int, poor: int, n: int, *, metric: str) -> dict[str, Any]:
    g, b = VITALS[metric]
    value = None if p75 is None else round(float(p75), 3 if metric == "CLS" else 0)
    rating = None if value is None else "good" if value <= g else "ni" if value <= b else "poor"
    share = (lambda k: round(100 * k / n, 1)) if n else (lambda k: 0.0)
    return {"metric": metric, "p75": value, "rating": rating, "good": share(good), "ni": share(ni),
            "poor": share(poor), "samples": int(n)}


def vitals(engine: Engine, q: Query, metric: str = "LCP", limit: int = 10) -> dict[str, Any]:
    """Per metric: the 75th percentile, the good / needs-improvement / poor shares and
    the number of samples; and for `metric`, the same per page (most samples first)."""
    if metric not in VITALS:
        raise BadRequest(f"metric: one of {', '.join(VITALS)}")
    p = S.Params()
    rows = _rows(engine, q, "vital", "metric_name, metric_value", p)
    if rows is None:
        return {"metrics": [_vital_row(None, 0, 0, 0, 0, metric=m) for m in VITALS], "pages": [], "metric": metric}
    rating = _rating_sql(p)
    agg = ("quantile_cont(metric_value, 0.75), count(*) FILTER (WHERE r = 'good'), "
           "count(*) FILTER (WHERE r = 'ni'), count(*) FILTER (WHERE r = 'poor'), count(*)")
    sql = (f"WITH x AS (SELECT *, {rating} AS r FROM ({rows}) WHERE metric_value IS NOT NULL "
           f"AND metric_name IN ({', '.join(p.add(m) for m in VITALS)})) "
           f"SELECT 'all', metric_name, {agg} FROM x GROUP BY metric_name "
           f"UNION ALL (SELECT 'page', path, {agg} FROM x WHERE metric_name = {p.add(metric)} "
           f"GROUP BY path ORDER BY count(*) DESC, path LIMIT {int(limit)})")
    found = engine.fetch(sql, p.values)
    overall = {r[1]: r for r in found if r[0] == "all"}
    none = (None, 0, 0, 0, 0)
    pages = [{"page": r[1], **_vital_row(r[2], r[3], r[4], r[5], r[6], metric=metric)} for r in found if r[0] == "page"]
    pages.sort(key=lambda r: (-int(r["samples"]), str(r["page"] or "")))
    return {"metrics": [_vital_row(*(tuple(overall[m][2:]) if m in overall else none), metric=m) for m in VITALS],
            "pages": pages, "metric": metric}


def errors(engine: Engine, q: Query, limit: int = 10, message: str | None = None,
           by: str = "message") -> dict[str, Any]:
    """Opt-in JavaScript errors (`data-errors`) by message (how often, how many visitors,
    on how many pages, when last) or by page (of one `message`, or of all)."""
    if by not in ("message", "page"):
        raise BadRequest("by: message or page")
    p = S.Params()
    rows = _rows(engine, q, "error", "json_extract_string(props, '$.message') AS message", p)
    if rows is None:
        return {"results": []}
    if by == "page":
        where = f" WHERE coalesce(message, '') = {p.add(message)}" if message is not None else ""
        sql = (f"SELECT path, count(*), count(DISTINCT visitor_id), max(t) FROM ({rows}){where} "
               f"GROUP BY path ORDER BY 2 DESC, 1 LIMIT {int(limit)}")
        return {"results": [{"page": r[0], "count": int(r[1]), "visitors": int(r[2]), "last_seen": _iso(r[3])}
                            for r in engine.fetch(sql, p.values)]}
    sql = (f"SELECT coalesce(message, '(no message)'), count(*), count(DISTINCT visitor_id), count(DISTINCT path), "
           f"max(t) FROM ({rows}) GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {int(limit)}")
    return {"results": [{"message": r[0], "count": int(r[1]), "visitors": int(r[2]), "pages": int(r[3]),
                         "last_seen": _iso(r[4])} for r in engine.fetch(sql, p.values)]}


def environment(engine: Engine, q: Query, prop: str = "screen", limit: int = 10) -> dict[str, Any]:
    """Unique visitors by screen class, browser language or time zone (from pageviews)."""
    if prop not in ENVIRONMENT:
        raise BadRequest(f"group: one of {', '.join(ENVIRONMENT)}")
    p = S.Params()
    col = ENVIRONMENT[prop]
    rows = _rows(engine, q, "pageview", col, p)
    if rows is None:
        return {"results": []}
    if prop == "screen":
        cases = " ".join(f"WHEN screen_width < {p.add(w)} THEN {p.add(n)}" for n, w in SCREENS if w)
        expr = f"CASE WHEN screen_width IS NULL THEN NULL {cases} ELSE {p.add(SCREENS[-1][0])} END"
    else:
        expr = f"nullif({col}, '')"
    sql = (f"SELECT {expr} AS k, count(DISTINCT visitor_id) AS n FROM ({rows}) GROUP BY k "
           f"ORDER BY n DESC, k NULLS LAST LIMIT {int(limit)}")
    return {"results": [{prop: "(none)" if r[0] is None else r[0], "visitors": int(r[1])}
                        for r in engine.fetch(sql, p.values)]}


def live(engine: Engine, q: Query, now: datetime) -> dict[str, Any]:
    """Unique visitors of each of the last 30 minutes (the current one last)."""
    end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    start = end - timedelta(minutes=30)
    qq = Query(q.site, "realtime", start, end, ("visitors",), None, q.filters)
    p = S.Params()
    # every event says a visitor is there, not only pageviews: an engagement ping too
    rows = _rows(engine, qq, None, "type", p)
    counts: dict[datetime, int] = {}
    if rows is not None:
        sql = f"SELECT date_trunc('minute', t) AS m, count(DISTINCT visitor_id) FROM ({rows}) GROUP BY m"
        counts = {r[0]: int(r[1]) for r in engine.fetch(sql, p.values)}
    minutes = [start + timedelta(minutes=i) for i in range(30)]
    return {"minutes": [{"date": m.strftime("%Y-%m-%d %H:%M:00"), "visitors": counts.get(m, 0)} for m in minutes]}


def _iso(t: Any) -> str | None:
    return t.strftime("%Y-%m-%dT%H:%M:%S") if isinstance(t, datetime) else None

