"""The requests the dashboard page makes for a site's default view (last 30 days, no
filter, the first tab of each panel, compared with the 30 days before), the same as
`refresh()` in static/dashboard.js; a browser test checks that the two agree. `serve` computes them ahead of the first
visit, and the benchmark measures them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

# the custom events panel: no pageviews, and not the measurements (engagement, vitals, errors)
EVENTS_ONLY = "event:goal!=Visit **;event:name!=engagement|vital|JS Error"
HEADLINE = "visitors,visits,pageviews,views_per_visit,bounce_rate,visit_duration"
DEFAULT_DAYS = 30
# Answers that may be served from the last computation (`answers.py`); realtime and the
# site's configuration are cheap and always read as they are.
PREPARED_KINDS = frozenset({"aggregate", "timeseries", "breakdown", "goals", "funnel", "navigation", "props"})


def previous_range(today: date, days: int = DEFAULT_DAYS) -> str:
    """The `date` of the period just before the last `days` days (`previousRange()` in
    the page): the comparison is asked as a custom period."""
    first = today - timedelta(days=days - 1)
    return f"{first - timedelta(days=days)},{first - timedelta(days=1)}"


def default_requests(site: str, config: Callable[[str], dict[str, Any]],
                     today: date | None = None) -> list[tuple[str, dict[str, str]]]:
    """(kind, query parameters) of every prepared panel of the default view; `config(site)`
    gives the site's goals and funnels, `today` is the UTC date."""
    today = today or datetime.now(UTC).date()
    base = {"site_id": site, "period": "30d"}
    before = {"site_id": site, "period": "custom", "date": previous_range(today)}
    out = [
        ("aggregate", {**base, "metrics": HEADLINE}),
        ("aggregate", {**before, "metrics": HEADLINE}),
        ("timeseries", {**base, "metrics": "visitors", "interval": "day"}),
        ("timeseries", {**before, "metrics": "visitors", "interval": "day"}),
        ("breakdown", {**base, "property": "event:page", "limit": "10", "metrics": "visitors,pageviews,scroll_depth"}),
        ("breakdown", {**base, "property": "visit:source", "limit": "10", "metrics": "visitors"}),
        ("breakdown", {**base, "property": "visit:country", "limit": "10", "metrics": "visitors"}),
        ("breakdown", {**base, "property": "visit:device", "limit": "10", "metrics": "visitors"}),
        ("breakdown", {**base, "property": "event:name", "limit": "10", "metrics": "visitors,events",
                       "filters": EVENTS_ONLY}),
    ]
    cfg = config(site)
    if cfg.get("goals"):  # no goals configured: the page asks for none
        out.append(("goals", {**base, "metrics": "visitors,events,conversion_rate"}))
    funnels = cfg.get("funnels") or []
    steps = funnels[0].get("steps") if funnels and isinstance(funnels[0], dict) else None
    if steps:
        out.append(("funnel", {**base, "steps": ",".join(str(s) for s in steps)}))
    return out

# Panels of the dashboard beyond the Stats API: their answers (`stats/profile.py`).
PROFILE_KINDS = ("live", "vitals", "errors", "environment")


def profile_answer(kind: str, engine: Any, params: dict[str, str]) -> Any:
    """The answer of one of PROFILE_KINDS, with the filters and period of the page."""
    from traceglider.stats import profile
    from traceglider.stats import query as Q
    from traceglider.stats.api import engine_now
    from traceglider.stats.service import _utcnow

    q = Q.parse(params, engine_now(engine))
    limit = min(max(q.limit, 1), Q.MAX_LIMIT) if params.get("limit") else 10
    if kind == "live":
        return profile.live(engine, q, _utcnow(engine))
    if kind == "vitals":
        return profile.vitals(engine, q, params.get("metric") or "LCP", limit)
    if kind == "errors":
        return profile.errors(engine, q, limit, params.get("message"), params.get("by") or "message")
    return profile.environment(engine, q, params.get("group") or "screen", limit)
