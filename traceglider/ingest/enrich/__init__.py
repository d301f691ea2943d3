"""The enrichment steps that follow parsing, in the order they must run.

The collector's pipeline is `[("split_url", split_url)] + build_steps(settings, salts)`,
the salt store built by `create_app` (`traceglider.storage.salts`): no step imports
storage.

| step | why here |
|---|---|
| `split_url` (core) | fills hostname, path, query, utm_*, referrer_host from the raw URLs |
| `bots` | cheapest drop first: no work is spent on crawlers |
| `privacy` | `TG_GPC_POLICY=drop` drops GPC/DNT requests before any lookup |
| `useragent` | browser, OS, device type (Client Hints win) |
| `geo` | country and region from the IP, in memory |
| `source` | source and channel; reads the raw query (click ids) before hygiene removes it |
| `hygiene` | strips e-mails, tokens and unlisted query parameters from everything stored |
| `identity` | visitor id and session id; last, so a dropped event never opens a visit or sets a cookie |

`bots`, `privacy`, `useragent`, `geo` and `identity` read nothing of a row but its site
and receipt time: they are marked request-level (`pipeline.per_request`) and run once
per request, not once per event. A step that starts reading the row must lose the mark.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from traceglider.ingest.enrich.bots import drop_bots
from traceglider.ingest.enrich.geo import make_geo_step, open_lookup
from traceglider.ingest.enrich.hygiene import make_hygiene_step
from traceglider.ingest.enrich.identity import (
    Salts,
    Sessions,
    consent_cookie,
    make_identity_step,
    make_privacy_step,
)
from traceglider.ingest.enrich.source import source
from traceglider.ingest.enrich.useragent import make_user_agent_step
from traceglider.ingest.pipeline import Drop, RequestInfo, per_request
from traceglider.types import PipelineRow

if TYPE_CHECKING:
    from traceglider.config import Settings
    from traceglider.ingest.pipeline import Step

__all__ = ["build_steps", "consent_cookie", "Salts", "Sessions"]


def build_steps(
    settings: Settings,
    salts: Salts,
    *,
    sessions: Sessions | None = None,
    clock: Callable[[], float] = time.time,
) -> list[tuple[str, Step]]:
    """The ordered enrichment steps, to run after `split_url`. Opens the geo database
    (lazily, on first public IP) and raises ConfigError for a bad `TG_GEOIP_DB`."""
    steps: list[tuple[str, Step]] = []
    if settings.drop_bots:
        steps.append(("bots", request_level(drop_bots)))
    steps += [
        ("privacy", request_level(make_privacy_step(settings.gpc_policy))),
        ("useragent", request_level(make_user_agent_step(bool(settings.store_user_agent)))),
        ("geo", request_level(make_geo_step(open_lookup(settings.geoip_db)))),
        ("source", source),
        ("hygiene", make_hygiene_step(settings.query_allowlist)),
        ("identity", request_level(make_identity_step(settings, salts, sessions or Sessions(), clock=clock))),
    ]
    return steps


def request_level(step: Step) -> Step:
    """Mark a step that reads only a row's site and receipt time: its columns are
    computed once per request, on a row holding just those two."""
    def whole(request: RequestInfo) -> PipelineRow | Drop:
        return step({"site": request.site, "received_at": request.received_at}, request)

    return per_request(step, whole)
