"""Stats answers in Plausible's shapes: query -> dataset -> SQL -> rows -> result."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from traceglider.errors import BadRequest
from traceglider.stats import metrics as M
from traceglider.stats import sql as S
from traceglider.stats.engine import Engine
from traceglider.stats.query import Filter, Query, result_key

SITE_CONFIG_PREFIX = "_sites/"
MEASUREMENTS = ("engagement", "vital", "JS Error")
GOALS_LIMIT = 50


def _dataset(engine: Engine, q: Query, prop: str = "") -> Any:
    """The cached tables, with the visit attributes only if a filter or `prop` needs them."""
    attrs = S.has_visit_filters(q) or (prop.startswith("visit:") and prop not in S.SESSION_PROPERTIES)
    return engine.dataset(q.site, q.start, q.end, attrs=attrs)


def _run(engine: Engine, q: Query, **kw: Any) -> tuple[list[tuple], Any]:
    ds = _dataset(engine, q)
    sql, params = S.aggregate(q, lambda: ds.events, ds.visits, **kw)
    return engine.fetch(sql, params), ds


def _values(q: Query, engine: Engine) -> dict[str, int | float]:
    needed = list(q.metrics)
    if "conversion_rate" in needed:
        needed.remove("conversion_rate")
        if "visitors" not in needed:
            needed.append("visitors")
    base = Query(q.site, q.period, q.start, q.end, tuple(needed), None, q.filters)
    rows, _ = _run(engine, base)
    out = {m: M.as_number(m, v) for m, v in zip(needed, rows[0], strict=True)}
    if "conversion_rate" in q.metrics:
        total = _values(Query(q.site, q.period, q.start, q.end, ("visitors",), None,
                              tuple(f for f in q.filters if f.property != "event:goal")), engine)
        out["conversion_rate"] = round(100 * out["visitors"] / total["visitors"], 1) if total["visitors"] else 0.0
    return {m: out[m] for m in q.metrics}


def aggregate(engine: Engine, q: Query) -> dict[str, Any]:
    current = _values(q, engine)
    if not q.compare:
        return {"results": {m: {"value": v} for m, v in current.items()}}
    previous = _values(q.previous(), engine)
    return {"results": {m: {"value": v, "change": change(previous[m], v, m)}
                        for m, v in current.items()}}


def change(before: float, after: float, metric: str) -> float | int | None:
    if metric == "bounce_rate":
        return int(after - before) if before else None
    if not before:
        return 100 if after else 0
    return int(round(100 * (after - before) / before))


_FORMATS = {"hour": "%Y-%m-%d %H:00:00", "day": "%Y-%m-%d", "week": "%Y-%m-%d", "month": "%Y-%m-%d"}


def buckets(q: Query) -> list[datetime]:
    unit = q.interval
    t = _trunc(q.start, unit)
    out = []
    while t < q.end:
        out.append(t)
        if unit == "hour":
            t += timedelta(hours=1)
        elif unit == "day":
            t += timedelta(days=1)
        elif unit == "week":
            t += timedelta(days=7)
        else:
            t = (t.replace(day=28) + timedelta(days=4)).replace(day=1)
    return out


def _trunc(t: datetime, unit: str) -> datetime:
    if unit == "hour":
        return t.replace(minute=0, second=0, microsecond=0)
    day = t.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "week":
        return day - timedelta(days=day.weekday())
    if unit == "month":
        return day.replace(day=1)
    return day


def timeseries(engine: Engine, q: Query) -> dict[str, Any]:
    metrics = tuple(m for m in q.metrics if M.kind(m) != "derived")
    if len(metrics) != len(q.metrics):
        raise BadRequest("conversion_rate is not available in a timeseries")
    unit = q.interval
    qq = Query(q.site, q.period, q.start, q.end, metrics, None, q.filters, unit)
    rows, _ = _run(engine, qq, dim=f"date_trunc('{unit}', e.ts)", vgroup=f"date_trunc('{unit}', v.start)",
                   order="d")
    by_bucket = {row[0]: row[1:] for row in rows}
    fmt = _FORMATS[unit]
    results = []
    for b in buckets(q):
        vals = by_bucket.get(b)
        item: dict[str, Any] = {"date": b.strftime(fmt)}
        for i, m in enumerate(metrics):
            item[m] = M.as_number(m, vals[i] if vals else 0)
        results.append(item)
    return {"results": results}


def breakdown(engine: Engine, q: Query, goals: list[str] | None = None) -> dict[str, Any]:
    prop = q.property or ""
    if prop == "event:goal":
        return {"results": goal_rows(engine, q, goals or site_goals(engine, q.site))}
    key = result_key(prop)
    p = S.Params()
    metrics = tuple(m for m in q.metrics if M.kind(m) != "derived")
    qq = Query(q.site, q.period, q.start, q.end, metrics or ("visitors",), prop, q.filters)
    ds = _dataset(engine, q, prop)
    level = "event" if prop.startswith("event:") else "visit"
    if level == "event":
        dim = S.column(prop, "e", p)
        sql, params = S.aggregate(qq, lambda: ds.events, ds.visits, dim=dim, limit=q.limit,
                                  offset=(q.page - 1) * q.limit, params=p)
    else:
        vdim = S.column(prop, "v", p)
        sql, params = S.aggregate(qq, lambda: ds.events, ds.visits, dim=vdim, vdim=vdim,
                                  limit=q.limit, offset=(q.page - 1) * q.limit, params=p)
    rows = engine.fetch(sql, params)
    results = []
    for row in rows:
        item: dict[str, Any] = {key: "(none)" if row[0] is None else row[0]}
        for i, m in enumerate(qq.metrics):
            item[m] = M.as_number(m, row[i + 1])
        results.append(item)
    if "conversion_rate" in q.metrics:
        total = _values(Query(q.site, q.period, q.start, q.end, ("visitors",), None,
                              tuple(f for f in q.filters if f.property != "event:goal")), engine)
        for item in results:
            v = item.get("visitors", 0)
            item["conversion_rate"] = round(100 * v / total["visitors"], 1) if total["visitors"] else 0.0
        if "visitors" not in q.metrics:
            for item in results:
                item.pop("visitors", None)
    return {"results": results}


def realtime_visitors(engine: Engine, site: str) -> int:
    now = _utcnow(engine)
    since = now - timedelta(minutes=5)
    files = engine.files(site, since, now + timedelta(seconds=1))
    if not files:
        return 0
    rows = engine.fetch(
        "SELECT count(DISTINCT visitor_id) FROM read_parquet($files) "
        "WHERE received_at::TIMESTAMP >= $since",
        {"files": engine.uris([k for k, _ in files]), "since": since})
    return int(rows[0][0] or 0)


def _utcnow(engine: Engine) -> datetime:

    return datetime.fromtimestamp(engine.clock(), tz=UTC).replace(tzinfo=None)


# -- goals, funnels, navigation, custom event props ------------------------------------

def site_config(engine: Engine, site: str) -> dict[str, Any]:
    try:
        data = json.loads(engine.storage.get(f"{SITE_CONFIG_PREFIX}{site}.json"))
        return data if isinstance(data, dict) else {}
    except Exception:  # noqa: BLE001 - no config is an empty config
        return {}


def site_goals(engine: Engine, site: str) -> list[str]:
    goals = [g for g in site_config(engine, site).get("goals", []) if isinstance(g, str)]
    return goals[:GOALS_LIMIT]


def goal_rows(engine: Engine, q: Query, goals: list[str]) -> list[dict[str, Any]]:
    """Unique converting visitors, conversions and conversion rate per goal."""
    if not goals:
        # without configured goals every custom event name is a goal; the measurements
        # the tracker sends by itself (engagement, vitals, errors) never are
        qq = Query(q.site, q.period, q.start, q.end, ("visitors",), "event:name",
                   q.filters + (Filter("event:goal", "!=", ("Visit **",)),
                                Filter("event:name", "!=", MEASUREMENTS)), limit=GOALS_LIMIT)
        names = [r["name"] for r in breakdown(engine, qq)["results"]]
        goals = [n for n in names if n != "pageview"]
    if not goals:
        return []
    ds = _dataset(engine, q)
    p = S.Params()
    rest = q.with_filters(tuple(f for f in q.filters if f.property != "event:goal"))
    base = S.filtered_events(rest, p, ds.events, ds.visits)
    # All visitors, then one pass grouped by visitor over the events matching a goal
    # only: did they convert on each goal, and how often.
    per, cols, conds = [], [S.total_visitors(rest, p, ds.events, ds.visits)], []
    for i, g in enumerate(goals):
        cond = S.goal_condition(g, "e", p)
        conds.append(cond)
        per += [f"bool_or({cond}) AS g{i}", f"count(*) FILTER (WHERE {cond}) AS n{i}"]
        cols += [f"count(*) FILTER (WHERE g{i})", f"sum(n{i})"]
    row = engine.fetch(f"WITH fe AS NOT MATERIALIZED ({base}) SELECT {', '.join(cols)} FROM (SELECT {', '.join(per)} "
                       f"FROM fe e WHERE {' OR '.join(conds)} GROUP BY e.vh)", p.values)[0]
    total = row[0] or 0
    out = []
    for i, g in enumerate(goals):
        visitors, events = row[1 + 2 * i] or 0, row[2 + 2 * i] or 0
        out.append({"goal": g, "visitors": int(visitors), "events": int(events),
                    "conversion_rate": round(100 * visitors / total, 1) if total else 0.0})
    out.sort(key=lambda r: -int(str(r["visitors"])))
    return out


def funnel(engine: Engine, q: Query, steps: list[str]) -> dict[str, Any]:
    """Visitors reaching each step in order within one visit, with drop-off per step."""
    if not 2 <= len(steps) <= 8:
        raise BadRequest("A funnel has 2 to 8 steps")
    ds = _dataset(engine, q)
    p = S.Params()
    base = S.filtered_events(q, p, ds.events, ds.visits)
    conds = [S.goal_condition(s, "e", p) for s in steps]
    # the steps are looked for only among the events matching one of them
    flags = ", ".join(f"{c} AS c{i}" for i, c in enumerate(conds))
    ctes = [f"fe AS NOT MATERIALIZED ({base})",  # read twice: inlined beats a copy
            f"fs AS (SELECT e.vkey, e.vh, e.ts, {flags} FROM fe e WHERE {' OR '.join(conds)})",
            "s0 AS (SELECT e.vkey, any_value(e.vh) AS vh, min(e.ts) AS t FROM fs e WHERE c0 GROUP BY e.vkey)"]
    for i in range(1, len(steps)):
        ctes.append(f"s{i} AS (SELECT e.vkey, any_value(e.vh) AS vh, min(e.ts) AS t FROM fs e "
                    f"JOIN s{i - 1} s ON s.vkey = e.vkey AND e.ts >= s.t WHERE e.c{i} GROUP BY e.vkey)")
    counts = ", ".join(f"(SELECT count(DISTINCT vh) FROM s{i})" for i in range(len(steps)))
    row = engine.fetch(f"WITH {', '.join(ctes)} SELECT {S.total_visitors(q, p, ds.events, ds.visits)}, {counts}",
                       p.values)[0]
    total = int(row[0] or 0)
    result = []
    prev = None
    for i, step in enumerate(steps):
        n = int(row[i + 1] or 0)
        result.append({
            "step": i + 1, "goal": step, "visitors": n,
            "conversion_rate": round(100 * n / total, 1) if total else 0.0,
            "conversion_rate_step": round(100 * n / prev, 1) if prev else (100.0 if i == 0 and n else 0.0),
            "dropoff": (prev - n) if prev is not None else 0,
        })
        prev = n
    return {"steps": result, "visitors": total}


def navigation(engine: Engine, q: Query, page: str, limit: int = 10) -> dict[str, Any]:
    """For one page: the page seen before it and the page seen after it in the same visit."""
    ds = _dataset(engine, q)
    p = S.Params()
    base = S.filtered_events(q, p, ds.events, ds.visits)
    page_param = p.add(page)
    sql = (f"WITH fe AS ({base}), pv AS (SELECT e.vkey, e.ts, e.path FROM fe e WHERE e.type = 'pageview' "
           f"AND e.vkey IN (SELECT vkey FROM fe WHERE type = 'pageview' AND path = {page_param})), "
           f"seq AS (SELECT path, lag(path) OVER w AS prev, lead(path) OVER w AS next FROM pv "
           f"WINDOW w AS (PARTITION BY vkey ORDER BY ts)) "
           f"SELECT 'prev', coalesce(prev, '(entrance)') AS p, count(*) AS n FROM seq "
           f"WHERE path = {page_param} GROUP BY p UNION ALL "
           f"SELECT 'next', coalesce(next, '(exit)') AS p, count(*) AS n FROM seq "
           f"WHERE path = {page_param} GROUP BY p")
    rows = engine.fetch(sql, p.values)
    out: dict[str, Any] = {"page": page, "previous": [], "next": []}
    for side, path, n in sorted(rows, key=lambda r: -r[2]):
        target = out["previous" if side == "prev" else "next"]
        if len(target) < limit:
            target.append({"page": path, "pageviews": int(n)})
    return out


def prop_keys(engine: Engine, q: Query, name: str) -> list[str]:
    ds = _dataset(engine, q)
    p = S.Params()
    sql = (f"SELECT DISTINCT unnest(json_keys(props)) AS k FROM {ds.events} "
           f"WHERE name = {p.add(name)} AND props IS NOT NULL AND ts >= {p.add(q.start)} "
           f"AND ts < {p.add(q.end)} ORDER BY k LIMIT 30")
    return [r[0] for r in engine.fetch(sql, p.values)]
