"""The requests the dashboard page makes for a site's default view (last 30 days, no
filter, the first tab of each panel), the same as `refresh()` in static/dashboard.js;
a browser test checks that the two agree. `serve` computes them ahead of the first
visit, and the benchmark measures them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# the custom events panel: no pageviews, and not the measurements (engagement, vitals)
EVENTS_ONLY = "event:goal!=Visit **;event:name!=engagement|vital"
HEADLINE = "visitors,visits,pageviews,views_per_visit,bounce_rate,visit_duration"
# Answers that may be served from the last computation (`answers.py`); realtime and the
# site's configuration are cheap and always read as they are.
PREPARED_KINDS = frozenset({"aggregate", "timeseries", "breakdown", "goals", "funnel", "navigation", "props"})


def default_requests(site: str, config: Callable[[str], dict[str, Any]]) -> list[tuple[str, dict[str, str]]]:
    """(kind, query parameters) of every panel of the default view; `config(site)` gives
    the site's goals and funnels."""
    base = {"site_id": site, "period": "30d"}
    out = [
        ("aggregate", {**base, "metrics": HEADLINE, "compare": "previous_period"}),
        ("timeseries", {**base, "metrics": "visitors"}),
        ("breakdown", {**base, "property": "event:page", "limit": "10", "metrics": "visitors,pageviews,scroll_depth"}),
        ("breakdown", {**base, "property": "visit:source", "limit": "10", "metrics": "visitors"}),
        ("breakdown", {**base, "property": "visit:country", "limit": "10", "metrics": "visitors"}),
        ("breakdown", {**base, "property": "visit:device", "limit": "10", "metrics": "visitors"}),
        ("breakdown", {**base, "property": "event:name", "limit": "10", "metrics": "visitors,events",
                       "filters": EVENTS_ONLY}),
        ("goals", {**base, "metrics": "visitors,events,conversion_rate"}),
    ]
    funnels = config(site).get("funnels") or []
    steps = funnels[0].get("steps") if funnels and isinstance(funnels[0], dict) else None
    if steps:
        out.append(("funnel", {**base, "steps": ",".join(str(s) for s in steps)}))
    return out
