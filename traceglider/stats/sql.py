"""SQL builder: a `Query` in, SQL text with named `$pN` parameters out.

Column names come only from the allowlists in `query.py`; every value a client sent
is a bound parameter. Globs (`*` and `**`, both any characters, as Plausible has them
today) become bound regular expressions.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from traceglider import value_names
from traceglider.errors import BadRequest
from traceglider.stats import metrics as M
from traceglider.stats.query import PROPERTIES, Filter, Query

EVENT_COLUMNS = {"path", "hostname", "name"}
# Visit properties held by the sessions table (the others are visit attributes).
SESSION_PROPERTIES = {"visit:entry_page", "visit:exit_page"}


@dataclass
class Params:
    values: dict[str, Any] = field(default_factory=dict)

    def add(self, value: Any) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return "$" + name


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


def column(prop: str, alias: str, p: Params) -> str:
    """The SQL expression of a property on table alias `e` (events) or `v` (visits)."""
    if prop.startswith("event:props:"):
        key = prop.removeprefix("event:props:")
        return f"json_extract_string({alias}.props, {p.add('$.' + _json_key(key))})"
    level, col = PROPERTIES[prop]
    if level == "goal":
        raise BadRequest("event:goal can only be used in a breakdown or as a goal filter")
    return value_names.read_sql(prop, f"{alias}.{col}")  # old and new value names read as one


def _json_key(key: str) -> str:
    return '"' + key.replace('"', "") + '"'


def match(expr: str, f: Filter, p: Params) -> str:
    """One filter as a condition; `!=` and `!~` also match a missing value."""
    value = f"coalesce({expr}, '')"
    alts = []
    for v in f.values:
        if f.op in ("~", "!~"):
            alts.append(f"contains(lower({value}), {p.add(v.lower())})")
        elif "*" in v:
            alts.append(f"regexp_full_match({value}, {p.add(glob_regex(v))})")
        else:
            alts.append(f"{value} = {p.add(v)}")
    cond = "(" + " OR ".join(alts) + ")"
    return f"NOT {cond}" if f.op.startswith("!") else cond


def goal_condition(goal: str, alias: str, p: Params) -> str:
    """`Visit /path` (globs allowed) is a pageview goal; anything else an event name."""
    if goal.startswith("Visit "):
        path = goal.removeprefix("Visit ").strip()
        f = Filter("event:page", "==", (path,))
        return f"({alias}.type = 'pageview' AND {match(alias + '.path', f, p)})"
    return f"({alias}.type IN ('custom','click','form_submit') AND {alias}.name = {p.add(goal)})"


def event_where(q: Query, p: Params, alias: str = "e") -> list[str]:
    conds = [f"{alias}.ts >= {p.add(q.start)}", f"{alias}.ts < {p.add(q.end)}"]
    for f in q.filters:
        if f.property == "event:goal":
            alts = " OR ".join(goal_condition(g, alias, p) for g in f.values)
            conds.append(f"NOT ({alts})" if f.op.startswith("!") else f"({alts})")
        elif f.level == "event":
            conds.append(match(column(f.property, alias, p), f, p))
    return conds


def visit_where(q: Query, p: Params, alias: str = "v", *, period: bool = True) -> list[str]:
    conds = [f"{alias}.start >= {p.add(q.start)}", f"{alias}.start < {p.add(q.end)}"] if period else []
    for f in q.filters:
        if f.level == "visit":
            conds.append(match(column(f.property, alias, p), f, p))
    return conds


def has_event_filters(q: Query) -> bool:
    return any(f.level in ("event", "goal") for f in q.filters)


def has_visit_filters(q: Query) -> bool:
    return any(f.level == "visit" for f in q.filters)


# The events table's name, or a function giving it: the engine stores a period's
# events only when a query first reads them (see `Dataset.events`).
Events = str | Callable[[], str]


def _name(events: Events) -> str:
    return events() if callable(events) else events


def filtered_events(q: Query, p: Params, events: Events, visits: str) -> str:
    """Events of the period passing all filters (visit filters through their visit)."""
    events = _name(events)
    conds = event_where(q, p)
    if has_visit_filters(q):
        vconds = visit_where(q, p, "v", period=False)
        conds.append(f"e.vkey IN (SELECT v.vkey FROM {visits} v WHERE {' AND '.join(vconds)})")
    return f"SELECT * FROM {events} e WHERE {' AND '.join(conds)}"


def _where(conds: list[str]) -> str:
    return f" WHERE {' AND '.join(conds)}" if conds else ""


def total_visitors(q: Query, p: Params, events: Events, visits: str) -> str:
    """A scalar subquery: unique visitors of the period passing the filters. Without
    event filters, from the visits table (each visit knows whether it had an event in
    the period): a sixth of the rows of the events table."""
    if has_event_filters(q):
        return f"(SELECT count(DISTINCT e.vh) FROM ({filtered_events(q, p, events, visits)}) e)"
    return (f"(SELECT {M.VISIT_PERIOD_METRICS['visitors']} FROM {visits} v"
            f"{_where(visit_where(q, p, 'v', period=False))})")


def filtered_visits(q: Query, p: Params, events: Events, visits: str) -> str:
    """Visits started in the period passing visit filters and holding a matching event."""
    conds = visit_where(q, p)
    if has_event_filters(q):
        econds = event_where(q.with_filters(tuple(f for f in q.filters if f.level != "visit")), p)
        conds.append(f"v.vkey IN (SELECT e.vkey FROM {_name(events)} e WHERE {' AND '.join(econds)})")
    return f"SELECT * FROM {visits} v WHERE {' AND '.join(conds)}"


_FE = "FROM fe e"  # the filtered events, as the parts below read them


def _select(metrics: dict[str, str], wanted: tuple[str, ...]) -> str:
    return ", ".join(f"{metrics[m]} AS {m}" for m in wanted if m in metrics)


def aggregate(q: Query, events: Events, visits: str, dim: str | None = None,
              vdim: str | None = None, vgroup: str | None = None, order: str = "visitors",
              limit: int | None = None, offset: int = 0,
              params: Params | None = None) -> tuple[str, dict[str, Any]]:
    """One statement computing q.metrics, grouped by `dim` (on events `e`) and `vdim` (on
    visits `v`) when given. Event dims see visit metrics through their visits."""
    p = params or Params()  # shared when `dim` already holds parameters
    wanted = q.metrics
    want_event = [m for m in wanted if M.kind(m) == "event"]
    want_visit = [m for m in wanted if M.kind(m) == "visit"]
    want_page = [m for m in wanted if M.kind(m) == "page"]
    group = dim is not None
    d_e = f"{dim} AS d, " if group else ""
    by = " GROUP BY d" if group else ""
    ctes = []
    parts = []
    if want_event:
        if vdim is not None:  # visit property: the visits table answers
            ctes.append(f"fv0 AS ({filtered_visits(q, p, events, visits)})")
            parts.append(("em", f"SELECT {vdim} AS d, {_select(M.VISIT_TABLE_EVENT_METRICS, tuple(want_event))} "
                                f"FROM fv0 v GROUP BY d"))
        elif not group and not has_event_filters(q):  # the visits' counts of the period's events
            parts.append(("em", f"SELECT {_select(M.VISIT_PERIOD_METRICS, tuple(want_event))} "
                                f"FROM {visits} v{_where(visit_where(q, p, 'v', period=False))}"))
        else:
            parts.append(("em", f"SELECT {d_e}{_select(M.EVENT_METRICS, tuple(want_event))} {_FE}{by}"))
    if want_visit:
        ctes.append(f"fv AS ({filtered_visits(q, p, events, visits)})")
        if vdim is not None:
            parts.append(("vm", f"SELECT {vdim} AS d, {_select(M.VISIT_METRICS, tuple(want_visit))} "
                                f"FROM fv v GROUP BY d"))
        elif vgroup is not None:  # time buckets: a visit belongs to the bucket it began in
            parts.append(("vm", f"SELECT {vgroup} AS d, {_select(M.VISIT_METRICS, tuple(want_visit))} "
                                f"FROM fv v GROUP BY d"))
        elif group:
            parts.append(("vm", f"SELECT x.d, {_select(M.VISIT_METRICS, tuple(want_visit))} FROM "
                                f"(SELECT DISTINCT {dim} AS d, e.vkey {_FE}) x "
                                f"JOIN fv v ON v.vkey = x.vkey GROUP BY x.d"))
        else:
            parts.append(("vm", f"SELECT {_select(M.VISIT_METRICS, tuple(want_visit))} FROM fv v"))
    if want_page:
        if vdim is not None:
            raise BadRequest("scroll_depth and time_on_page can only be broken down by an "
                             "event property, such as event:page")
        pd = f"{dim} AS d, " if group else ""
        pgroup = "d, e.vkey, e.path" if group else "e.vkey, e.path"
        parts.append(("pm", f"SELECT {'d, ' if group else ''}{_select(M.PAGE_METRICS, tuple(want_page))} FROM "
                            f"(SELECT {pd}max(e.scroll_depth) AS scroll, sum(e.engagement_ms) AS engaged "
                            f"{_FE} WHERE e.type = 'engagement' GROUP BY {pgroup}) p{by}"))
    if not parts:
        raise BadRequest("No metric to compute")
    if any(_FE in sql for _, sql in parts):  # the events table is read only when needed
        ctes.insert(0, f"fe AS ({filtered_events(q, p, events, visits)})")
    ctes += [f"{name} AS ({sql})" for name, sql in parts]
    names = [name for name, _ in parts]
    cols = ", ".join(f"{m}" for m in wanted if M.kind(m) != "derived")
    if group:
        join = names[0]
        for name in names[1:]:
            join += f" FULL OUTER JOIN {name} USING (d)"
        order_metric = order if order in wanted and M.kind(order) != "derived" else wanted[0]
        tail = f" ORDER BY {order_metric} DESC NULLS LAST, d"
        if limit is not None:
            tail += f" LIMIT {int(limit)} OFFSET {int(offset)}"
        sql = f"WITH {', '.join(ctes)} SELECT d, {cols} FROM {join}{tail}"
    else:
        sql = f"WITH {', '.join(ctes)} SELECT {cols} FROM {', '.join(names)}"
    return sql, p.values
