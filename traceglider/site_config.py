"""A site's goals and funnels: the one configuration in storage (`_sites/<site>.json`),
read, validated and written here for the dashboard, the command line and the Sites API.

A goal is a string, as the stats read it (`stats.sql.goal_condition`): `Visit <path>`
(globs: `*` and `**`, any characters, as Plausible) counts the visitors who saw a page;
anything else is a custom event's name. A funnel is a name and 2 to 8 such steps.
Measurements the tracker sends by itself (engagement, vitals, errors) are never goals.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from traceglider.errors import BadRequest, NotFound
from traceglider.sites import normalize_site

if TYPE_CHECKING:
    from traceglider.storage.base import Storage

PREFIX = "_sites/"
MAX_GOALS = 50  # the stats read at most this many (`service.GOALS_LIMIT`)
MAX_FUNNELS = 20
MAX_GOAL_CHARS = 200
MAX_NAME_CHARS = 80
FUNNEL_STEPS = (2, 8)
PAGE_PREFIX = "Visit "
# event names the tracker uses for what it measures: never conversions
MEASUREMENTS = frozenset({"pageview", "engagement", "vital", "JS Error"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# One read-modify-write at a time in this process (dashboard, Sites API, command
# line); two processes writing at the same moment: the last one wins (a configuration,
# not events).
WRITE_LOCK = threading.Lock()


@dataclass
class SiteConfig:
    goals: list[str] = field(default_factory=list)
    funnels: list[dict[str, Any]] = field(default_factory=list)
    other: dict[str, Any] = field(default_factory=dict)  # keys this module does not manage, kept

    def as_json(self) -> dict[str, Any]:
        return {**self.other, "goals": self.goals, "funnels": self.funnels}


def key(site: str) -> str:
    return f"{PREFIX}{normalize_site(site)}.json"


def read_raw(storage: Storage, site: str) -> dict[str, Any]:
    """The stored document as it is; {} when there is none or it is not a JSON object.
    Storage failing is a StorageError (503), never an empty configuration that a write
    would then replace."""
    name = key(site)
    # listed first: a missing file is no configuration, an unreachable storage an error
    if not any(info.key == name for info in storage.list(name)):
        return {}
    try:
        data = json.loads(storage.get(name))
    except (ValueError, UnicodeDecodeError):
        return {}  # a hand-edited file gone bad reads as empty, as the stats read it
    return data if isinstance(data, dict) else {}


def write_raw(storage: Storage, site: str, document: dict[str, Any]) -> None:
    storage.put(key(site), json.dumps(document, indent=2, ensure_ascii=False).encode())


def read(storage: Storage, site: str) -> SiteConfig:
    """The site's configuration, validated; none stored is an empty one. What does not
    validate (a hand-edited file) is dropped item by item, never an error for the reader."""
    data = read_raw(storage, site)
    goals, funnels = [], []
    for g in data.get("goals") or []:
        try:
            goals.append(check_goal(g))
        except BadRequest:
            continue
    for f in data.get("funnels") or []:
        try:
            funnels.append(check_funnel(f))
        except BadRequest:
            continue
    other = {k: v for k, v in data.items() if k not in ("goals", "funnels")}
    return SiteConfig(_unique(goals)[:MAX_GOALS], funnels[:MAX_FUNNELS], other)


def write(storage: Storage, site: str, config: SiteConfig) -> None:
    write_raw(storage, site, config.as_json())


def check_goal(raw: Any) -> str:
    """A goal string, tidied (`Visit  /a ` -> `Visit /a`), or a BadRequest saying why not."""
    if not isinstance(raw, str) or not raw.strip():
        raise BadRequest("goal: required, a page (Visit /path) or a custom event name")
    goal = raw.strip()
    if len(goal) > MAX_GOAL_CHARS:
        raise BadRequest(f"goal: at most {MAX_GOAL_CHARS} characters")
    if _CONTROL.search(goal):
        raise BadRequest("goal: no control characters")
    if goal == PAGE_PREFIX.strip() or goal.startswith(PAGE_PREFIX):
        path = goal[len(PAGE_PREFIX):].strip()
        if not path.startswith("/"):
            raise BadRequest(f"goal: a page goal's path starts with /, such as Visit /signup (got {path[:60]!r})")
        if " " in path:
            raise BadRequest("goal: a page path has no spaces")
        return PAGE_PREFIX + path
    if goal in MEASUREMENTS:
        raise BadRequest(f"goal: {goal!r} is what the script measures by itself, not a conversion")
    return goal


def page_goal(path: Any) -> str:
    if not isinstance(path, str):
        raise BadRequest("page_path: required, such as /signup or /blog/**")
    return check_goal(PAGE_PREFIX + path.strip())


def event_goal(name: Any) -> str:
    goal = check_goal(name)
    if goal.startswith(PAGE_PREFIX):
        raise BadRequest("event_name: an event name cannot start with 'Visit ' (that is a page goal)")
    return goal


def check_funnel(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise BadRequest("funnel: an object with a name and steps")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise BadRequest("funnel name: required")
    name = name.strip()
    if len(name) > MAX_NAME_CHARS or _CONTROL.search(name):
        raise BadRequest(f"funnel name: at most {MAX_NAME_CHARS} characters, no control characters")
    steps = raw.get("steps")
    low, high = FUNNEL_STEPS
    if not isinstance(steps, list) or not low <= len(steps) <= high:
        raise BadRequest(f"funnel steps: {low} to {high} steps, each a page (Visit /path) or an event name")
    checked = []
    for i, step in enumerate(steps, 1):
        try:
            checked.append(check_goal(step))
        except BadRequest as exc:
            raise BadRequest(f"funnel step {i}: {exc.message.removeprefix('goal: ')}") from None
        if "," in checked[-1]:
            raise BadRequest(f"funnel step {i}: no commas")
    return {"name": name, "steps": checked}


def _unique(goals: list[str]) -> list[str]:
    return list(dict.fromkeys(goals))


def add_goal(storage: Storage, site: str, goal: Any, replace: str | None = None) -> SiteConfig:
    """Add `goal` (or put it in the place of `replace`); the configuration written."""
    with WRITE_LOCK:
        return _add_goal(storage, site, goal, replace)


def _add_goal(storage: Storage, site: str, goal: Any, replace: str | None = None) -> SiteConfig:
    config = read(storage, site)
    new = check_goal(goal)
    if replace is not None:
        if replace not in config.goals:
            raise NotFound(f"no goal {replace!r} on {site}")
        if new != replace and new in config.goals:
            raise BadRequest(f"goal: {new!r} exists already")
        config.goals[config.goals.index(replace)] = new
    else:
        if new in config.goals:
            raise BadRequest(f"goal: {new!r} exists already")
        if len(config.goals) >= MAX_GOALS:
            raise BadRequest(f"goal: at most {MAX_GOALS} goals per site")
        config.goals.append(new)
    write(storage, site, config)
    return config


def remove_goal(storage: Storage, site: str, goal: str) -> SiteConfig:
    with WRITE_LOCK:
        return _remove_goal(storage, site, goal)


def _remove_goal(storage: Storage, site: str, goal: str) -> SiteConfig:
    config = read(storage, site)
    if goal not in config.goals:
        raise NotFound(f"no goal {goal!r} on {site}")
    config.goals.remove(goal)
    write(storage, site, config)
    return config


def put_funnel(storage: Storage, site: str, funnel: Any, replace: str | None = None) -> SiteConfig:
    """Add a funnel (or replace the one named `replace`); the configuration written."""
    with WRITE_LOCK:
        return _put_funnel(storage, site, funnel, replace)


def _put_funnel(storage: Storage, site: str, funnel: Any, replace: str | None = None) -> SiteConfig:
    config = read(storage, site)
    new = check_funnel(funnel)
    names = [f["name"] for f in config.funnels]
    if replace is not None:
        if replace not in names:
            raise NotFound(f"no funnel {replace!r} on {site}")
        if new["name"] != replace and new["name"] in names:
            raise BadRequest(f"funnel name: {new['name']!r} exists already")
        config.funnels[names.index(replace)] = new
    else:
        if new["name"] in names:
            raise BadRequest(f"funnel name: {new['name']!r} exists already")
        if len(config.funnels) >= MAX_FUNNELS:
            raise BadRequest(f"funnel: at most {MAX_FUNNELS} funnels per site")
        config.funnels.append(new)
    write(storage, site, config)
    return config


def remove_funnel(storage: Storage, site: str, name: str) -> SiteConfig:
    with WRITE_LOCK:
        return _remove_funnel(storage, site, name)


def _remove_funnel(storage: Storage, site: str, name: str) -> SiteConfig:
    config = read(storage, site)
    names = [f["name"] for f in config.funnels]
    if name not in names:
        raise NotFound(f"no funnel {name!r} on {site}")
    del config.funnels[names.index(name)]
    write(storage, site, config)
    return config
