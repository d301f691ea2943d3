"""Plausible's Sites API (sites-api.md) over the site configuration the dashboard and
the stats read: the sites, and each site's goals in `_sites/<site>.json` in storage
(`{"goals": [...], "funnels": [...]}`). Funnels are our extension, in the same shape.

| route | what |
|---|---|
| `GET /api/v1/sites` | `{"sites": [{"domain", "timezone"}], "meta": {"after", "before", "limit"}}` |
| `GET /api/v1/sites/:site_id` | `{"domain", "timezone", "custom_properties"}` |
| `GET /api/v1/sites/goals?site_id=` | `{"goals": [{"id", "goal_type", "display_name", ...}], "meta"}` |
| `PUT /api/v1/sites/goals` (or `POST`) | find or create a goal (`site_id`, `goal_type`, `event_name` or `page_path`) |
| `DELETE /api/v1/sites/goals/:goal_id` | `{"deleted": "true"}` |
| `GET/PUT /api/v1/sites/funnels`, `DELETE /api/v1/sites/funnels/:name` | the same for funnels (`name`, `steps`) |

Sites are those of `TG_SITES`, or without it every site with events or a
configuration in storage: the dashboard's list. Creating, renaming and deleting sites,
teams, guests and shared links are not here (sites are a setting). Every time zone is
`Etc/UTC`: the stats are in UTC. A goal is stored as its display name (`Signup`,
`Visit /register`), as the stats read it, so a custom `display_name` is refused; its
id is a stable number made from that name. Bodies are JSON, form-encoded or
multipart (curl -F), as Plausible takes them. Two writers at the same moment in two
processes: the last one wins (a configuration, not events).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from traceglider import site_config
from traceglider.errors import BadRequest, NotFound
from traceglider.site_config import WRITE_LOCK as _WRITE_LOCK  # the one configuration module
from traceglider.site_config import read_raw as read_config
from traceglider.site_config import write_raw as write_config
from traceglider.sites import site_id
from traceglider.web import check_bearer, plausible_errors

if TYPE_CHECKING:
    from traceglider.config import Settings
    from traceglider.storage.base import Storage

SITE_CONFIG_PREFIX = site_config.PREFIX
TIMEZONE = "Etc/UTC"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_GOALS = site_config.MAX_GOALS
MAX_FUNNELS = site_config.MAX_FUNNELS
MAX_TEXT = 200


def known_sites(settings: Settings, storage: Storage) -> list[str]:
    """The dashboard's sites: TG_SITES, or every site with events or a configuration."""
    configured = list(settings.sites)
    if configured:
        return configured
    found = set()
    for info in storage.list("events/site="):
        found.add(info.key.split("/")[1].removeprefix("site="))
    for info in storage.list(SITE_CONFIG_PREFIX):
        name = info.key.removeprefix(SITE_CONFIG_PREFIX)
        if name.endswith(".json"):
            found.add(name.removesuffix(".json"))
    return sorted(found)


def goal_id(display_name: str) -> str:
    return str(zlib.crc32(display_name.encode()))


def goal_json(display_name: str) -> dict[str, Any]:
    page = display_name.removeprefix("Visit ").strip() if display_name.startswith("Visit ") else None
    return {"id": goal_id(display_name), "goal_type": "page" if page else "event",
            "display_name": display_name, "event_name": None if page else display_name,
            "page_path": page}


def _goals(config: dict[str, Any]) -> list[str]:
    return [g for g in config.get("goals", []) if isinstance(g, str)]


def _funnels(config: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in config.get("funnels", []) if isinstance(f, dict) and isinstance(f.get("name"), str)]


def _text(body: dict[str, Any], name: str, required: str | None = None) -> str | None:
    value = body.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise BadRequest(required)
        return None
    if not isinstance(value, str) or len(value) > MAX_TEXT or any(ord(c) < 32 for c in value):
        raise BadRequest(f"Parameter `{name}` must be text of at most {MAX_TEXT} characters")
    return value.strip()


async def _body(request: Request) -> dict[str, Any]:
    """A JSON, form-encoded or multipart body, or the query string when there is none."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    if len(raw) > 64 * 1024:
        raise BadRequest("The request body is larger than 64 KiB")
    body: dict[str, Any] = dict(request.query_params)
    if not raw:
        return body
    if kind == "multipart/form-data":
        form = await request.form()
        body.update({k: v for k, v in form.items() if isinstance(v, str)})
        return body
    if kind == "application/x-www-form-urlencoded":
        body.update(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        return body
    try:
        document = json.loads(raw)
    except ValueError:
        raise BadRequest("The request body must be JSON, form-encoded or multipart") from None
    if not isinstance(document, dict):
        raise BadRequest("The request body must be a JSON object")
    body.update(document)
    return body


def _meta(limit: int, after: str | None) -> dict[str, Any]:
    return {"after": after, "before": None, "limit": limit}


def _page(items: list[Any], params: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """Cursor pagination as Plausible's: `after`/`before` are opaque cursors (here the
    offset), `limit` 1-1000."""
    try:
        limit = int(params.get("limit") or DEFAULT_LIMIT)
        start = int(params.get("after") or 0)
        before = params.get("before")
        if before is not None and before != "":
            start = max(0, int(before) - limit)
    except (TypeError, ValueError):
        raise BadRequest("Pagination `limit`, `after` and `before` must be numbers") from None
    if not 1 <= limit <= MAX_LIMIT or start < 0:
        raise BadRequest(f"Pagination `limit` must be from 1 to {MAX_LIMIT}")
    page = items[start:start + limit]
    after = str(start + limit) if start + limit < len(items) else None
    meta = _meta(limit, after)
    meta["before"] = str(start) if start > 0 else None
    return page, meta


def sites_router(settings: Settings, storage: Storage) -> APIRouter:
    router = APIRouter(tags=["sites"])

    def site_of(value: Any) -> str:
        site = site_id(value, "Parameter `site_id` is required")
        if site not in known_sites(settings, storage):
            raise NotFound("Site could not be found")
        return site

    @router.get("/api/v1/sites", summary="The sites")
    @plausible_errors
    def list_sites(request: Request) -> Any:
        check_bearer(settings, request)
        page, meta = _page(known_sites(settings, storage), dict(request.query_params))
        return {"sites": [{"domain": s, "timezone": TIMEZONE} for s in page], "meta": meta}

    @router.get("/api/v1/sites/goals", summary="A site's goals")
    @plausible_errors
    def list_goals(request: Request) -> Any:
        check_bearer(settings, request)
        site = site_of(request.query_params.get("site_id"))
        page, meta = _page(_goals(read_config(storage, site)), dict(request.query_params))
        return {"goals": [goal_json(g) for g in page], "meta": meta}

    def put_goal_work(body: dict[str, Any]) -> Any:
        site = site_of(body.get("site_id"))
        kind = _text(body, "goal_type", "Parameter `goal_type` is required: `event` or `page`")
        # validated as the dashboard and the command line validate goals
        if kind == "event":
            display = site_config.event_goal(
                _text(body, "event_name", "Parameter `event_name` is required for an event goal"))
        elif kind in ("page", "page_path"):  # `page_path`: what kctl-plausible sends
            display = site_config.page_goal(
                _text(body, "page_path", "Parameter `page_path` is required for a page goal"))
        else:
            raise BadRequest("Parameter `goal_type` must be `event` or `page`")
        wanted = _text(body, "display_name")
        if wanted is not None and wanted != display:
            raise BadRequest(f"A custom `display_name` is not supported here: the goal is named `{display}`")
        with _WRITE_LOCK:
            config = read_config(storage, site)
            goals = _goals(config)
            if display not in goals:
                if len(goals) >= MAX_GOALS:
                    raise BadRequest(f"A site has at most {MAX_GOALS} goals")
                config["goals"] = [*goals, display]
                write_config(storage, site, config)
        return {"domain": site, **goal_json(display)}

    # POST too: kctl-plausible creates goals with POST (Plausible documents PUT)
    @router.put("/api/v1/sites/goals", summary="Find or create a goal")
    @router.post("/api/v1/sites/goals", summary="Find or create a goal (as PUT)")
    @plausible_errors
    async def put_goal(request: Request) -> Any:
        check_bearer(settings, request)
        body = await _body(request)
        return await run_in_threadpool(put_goal_work, body)

    def delete_work(body: dict[str, Any], key: str, entries: Callable[[dict[str, Any]], list[Any]],
                    matches: Callable[[Any], bool], missing: str) -> Any:
        """Remove the site's `key` entries (goals or funnels) that `matches`; `missing`
        is the 404's message when none does."""
        site = site_of(body.get("site_id"))
        with _WRITE_LOCK:
            config = read_config(storage, site)
            present = entries(config)
            kept = [entry for entry in present if not matches(entry)]
            if len(kept) == len(present):
                raise NotFound(missing)
            config[key] = kept
            write_config(storage, site, config)
        return {"deleted": "true"}

    async def delete_entry(request: Request, key: str, entries: Callable[[dict[str, Any]], list[Any]],
                           matches: Callable[[Any], bool], missing: str) -> Any:
        check_bearer(settings, request)
        body = await _body(request)
        return await run_in_threadpool(delete_work, body, key, entries, matches, missing)

    @router.delete("/api/v1/sites/goals/{goal}", summary="Delete a goal")
    @plausible_errors
    async def delete_goal(goal: str, request: Request) -> Any:
        return await delete_entry(request, "goals", _goals, lambda g: goal_id(g) == goal, "Goal could not be found")

    @router.get("/api/v1/sites/funnels", summary="A site's funnels (TraceGlider's extension)")
    @plausible_errors
    def list_funnels(request: Request) -> Any:
        check_bearer(settings, request)
        site = site_of(request.query_params.get("site_id"))
        page, meta = _page(_funnels(read_config(storage, site)), dict(request.query_params))
        return {"funnels": [{"name": f["name"], "steps": f.get("steps", [])} for f in page], "meta": meta}

    def put_funnel_work(body: dict[str, Any]) -> Any:
        site = site_of(body.get("site_id"))
        name = _text(body, "name", "Parameter `name` is required")
        steps = body.get("steps")
        if isinstance(steps, str):  # a form field: comma-separated
            steps = [s.strip() for s in steps.split(",") if s.strip()]
        funnel = site_config.check_funnel({"name": name, "steps": steps})
        with _WRITE_LOCK:
            config = read_config(storage, site)
            funnels = [f for f in _funnels(config) if f["name"] != name]
            if len(funnels) >= MAX_FUNNELS:
                raise BadRequest(f"A site has at most {MAX_FUNNELS} funnels")
            config["funnels"] = [*funnels, funnel]
            write_config(storage, site, config)
        return {"domain": site, **funnel}

    @router.put("/api/v1/sites/funnels", summary="Create or replace a funnel (TraceGlider's extension)")
    @plausible_errors
    async def put_funnel(request: Request) -> Any:
        check_bearer(settings, request)
        body = await _body(request)
        return await run_in_threadpool(put_funnel_work, body)

    @router.delete("/api/v1/sites/funnels/{name}", summary="Delete a funnel (TraceGlider's extension)")
    @plausible_errors
    async def delete_funnel(name: str, request: Request) -> Any:
        return await delete_entry(request, "funnels", _funnels, lambda f: f["name"] == name,
                                  "Funnel could not be found")

    # after the fixed paths above, so /api/v1/sites/goals is not read as a site
    @router.get("/api/v1/sites/{site_id}", summary="A site")
    @plausible_errors
    def get_site(site_id: str, request: Request) -> Any:
        check_bearer(settings, request)
        site = site_of(site_id)
        props = read_config(storage, site).get("custom_properties") or []
        return {"domain": site, "timezone": TIMEZONE,
                "custom_properties": [p for p in props if isinstance(p, str)]}

    return router
