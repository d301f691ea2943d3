"""The metrics, with Plausible's definitions, as SQL over the two relations of `sql.py`.

`e` is an event (one row per event_id, `ts` its time, `vh` the visitor hash, `vkey`
the visit); `v` is a visit (one row per visit, the 30-minute inactivity rule of
`storage/visits_sql.py`, its attributes taken from its first pageview).

- visitors: unique visitor ids with any event in the period (and filters).
- visits: visits that started in the period.
- pageviews: `pageview` events.
- events: pageviews plus interactions (`custom`, `click`, `form_submit`); engagement,
  vital and error events are measurements, not events a person would count.
- bounce_rate: percent of visits with at most one pageview and no interaction.
- visit_duration: mean seconds from a visit's first to its last event (the engagement
  event sent when a page is left counts, so the last page's time is included).
- views_per_visit: pageviews per visit.
- scroll_depth: mean over (visit, page) of the deepest scroll reached, percent.
- time_on_page: mean over (visit, page) of visible, active seconds on the page.
"""

from __future__ import annotations

from traceglider.visits import INTERACTIONS_SQL

INTER_SQL = INTERACTIONS_SQL

EVENT_METRICS = {
    "visitors": "count(DISTINCT e.vh)",
    "pageviews": "count(*) FILTER (WHERE e.type = 'pageview')",
    "events": f"count(*) FILTER (WHERE e.type = 'pageview' OR e.type IN {INTER_SQL})",
}
VISIT_METRICS = {
    "visits": "count(*)",
    "bounce_rate": "round(100.0 * avg(CASE WHEN v.bounce THEN 1 ELSE 0 END))",
    "visit_duration": "round(avg(v.duration))",
    "views_per_visit": "round(sum(v.pageviews) / count(*), 2)",
}
# Visit-property breakdowns read everything from the visits (those started in the range).
VISIT_TABLE_EVENT_METRICS = {
    "visitors": "count(DISTINCT v.vh)",
    "pageviews": "sum(v.pageviews)",
    "events": "sum(v.events)",
}
PAGE_METRICS = {
    "scroll_depth": "round(avg(p.scroll))",
    "time_on_page": "round(avg(p.engaged) / 1000.0)",
}


def kind(metric: str) -> str:
    if metric in EVENT_METRICS:
        return "event"
    if metric in VISIT_METRICS:
        return "visit"
    if metric in PAGE_METRICS:
        return "page"
    return "derived"  # conversion_rate


def as_number(metric: str, value: object) -> int | float:
    if value is None:
        return 0
    if metric in ("views_per_visit", "conversion_rate"):
        return round(float(value), 2)  # type: ignore[arg-type]
    return int(round(float(value)))  # type: ignore[arg-type]
