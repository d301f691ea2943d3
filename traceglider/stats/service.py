"""Stats answers in Plausible's v1 shapes: one front end of the chain.

A v1 `query.Query` becomes a `model.Question` (`question`), the engine plans and
runs the SQL of `sql.py`, and the rows are shaped as Plausible answers them.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from traceglider.errors import BadRequest
from traceglider.stats import metrics as M
from traceglider.stats import sql as S
from traceglider.stats.engine import Engine
from traceglider.stats.model import Condition, Node, Question, all_of, without
from traceglider.stats.query import Filter, Query, result_key

SITE_CONFIG_PREFIX = "_sites/"
MEASUREMENTS = ("engagement", "vital", "JS Error")
GOALS_LIMIT = 50
PAGE_WINDOW = 100
_V1_OPS = {"==": "is", "!=": "is_not", "~": "contains", "!~": "contains_not"}


def condition(f: Filter) -> Condition:
    """A v1 filter as a condition: `==`/`!=` with a glob are wildcard matches, `~`/`!~`
    case-insensitive contains."""
    op = _V1_OPS[f.op]
    if op in ("is", "is_not") and f.property != "event:goal" and any("*" in v for v in f.values):
        # a value without `*` is itself as a glob
        return Condition("matches_wildcard" + ("_not" if op == "is_not" else ""), f.property, f.values)
    return Condition(op, f.property, f.values, case_insensitive=op.startswith("contains"))


def filters(q: Query) -> Node | None:
    return all_of([condition(f) for f in q.filters])


def question(q: Query, metrics: tuple[str, ...] | None = None, dimensions: tuple[str, ...] = (),
             limit: int | None = None, offset: int = 0) -> Question:
    return Question(q.site, q.start, q.end, metrics or q.metrics, dimensions, filters(q),
                    limit=limit, offset=offset)


def _aggregate_rows(engine: Engine, qn: Question) -> list[tuple]:
    """Rows of `qn`. A page of a breakdown is cut from a window of PAGE_WINDOW rows
    (the same SQL for every page in it), so the next page, or a longer list in the
    details view, is an answer already cached rather than another scan."""
    if qn.limit is None or qn.limit > PAGE_WINDOW:
        return engine.run(lambda r: S.aggregate(qn, r), qn)
    first = qn.offset // PAGE_WINDOW * PAGE_WINDOW
    last = -(-(qn.offset + qn.limit) // PAGE_WINDOW) * PAGE_WINDOW
    wide = dataclasses.replace(qn, limit=last - first, offset=first)
    rows = engine.run(lambda r: S.aggregate(wide, r), wide)
    return rows[qn.offset - first:qn.offset - first + qn.limit]


def _values(q: Query, engine: Engine) -> dict[str, int | float]:
    needed = list(q.metrics)
    if "conversion_rate" in needed:
        needed.remove("conversion_rate")
        if "visitors" not in needed:
            needed.append("visitors")
    qn = question(q, tuple(needed))
    rows = _aggregate_rows(engine, qn)
    out = {m: M.as_number(m, v) for m, v in zip(needed, rows[0], strict=True)}
    if "conversion_rate" in q.metrics:
        total = _aggregate_rows(engine, qn.with_metrics(("visitors",)).with_filters(without(qn.filters, "event:goal")))
        visitors = M.as_number("visitors", total[0][0])
        out["conversion_rate"] = round(100 * out["visitors"] / visitors, 1) if visitors else 0.0
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
    return bucket_starts(q.start, q.end, q.interval)


def bucket_starts(start: datetime, end: datetime, unit: str, limit: int | None = None) -> list[datetime]:
    """The start of every `unit` bucket (hour, day, week, month) from `start`'s to `end`."""
    t = _trunc(start, unit)
    out: list[datetime] = []
    while t < end and (limit is None or len(out) < limit):
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
    qn = question(q, metrics, (f"time:{unit}",))
    rows = _aggregate_rows(engine, qn)
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
    metrics = tuple(m for m in q.metrics if M.kind(m) != "derived") or ("visitors",)
    qn = question(q, metrics, (prop,), limit=q.limit, offset=(q.page - 1) * q.limit)
    rows = _aggregate_rows(engine, qn)
    results = []
    for row in rows:
        item: dict[str, Any] = {key: "(none)" if row[0] is None else row[0]}
        for i, m in enumerate(metrics):
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
    sql, params = S.realtime(engine.uris([k for k, _ in files]), since)
    rows = engine.fetch(sql, params)
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
    qn = question(q).with_filters(without(filters(q), "event:goal"))
    row = engine.run(lambda r: S.goals(qn, r, goals), qn)[0]
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
    qn = question(q)
    row = engine.run(lambda r: S.funnel(qn, r, steps), qn)[0]
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
    qn = question(q)
    rows = engine.run(lambda r: S.navigation(qn, r, page), qn)
    out: dict[str, Any] = {"page": page, "previous": [], "next": []}
    for side, path, n in sorted(rows, key=lambda r: (-r[2], r[1])):
        target = out["previous" if side == "prev" else "next"]
        if len(target) < limit:
            target.append({"page": path, "pageviews": int(n)})
    return out


def prop_keys(engine: Engine, q: Query, name: str) -> list[str]:
    qn = question(q)
    return [r[0] for r in engine.run(lambda r: S.prop_keys(qn, r, name), qn)]
