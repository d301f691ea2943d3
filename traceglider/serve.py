"""`traceglider serve`: uvicorn in front of `create_app`, with the URLs printed."""

from __future__ import annotations

import gc
import logging
import os
import sys
from typing import Any

import uvicorn
from fastapi import FastAPI

from traceglider.config import SETTINGS, Settings, load
from traceglider.errors import ConfigError

log = logging.getLogger("traceglider")


def app_from_env() -> FastAPI:
    """The app for worker processes, built from the environment `serve` prepared."""
    from traceglider.memory import keep_pandas_out

    keep_pandas_out()  # a worker is a process of its own (spawned, not forked)
    from traceglider.app import create_app
    from traceglider.connections import configure

    settings = load()
    configure(settings)  # this worker's own file limit and connection cap
    return settled(create_app(settings))


def settled(app: FastAPI) -> FastAPI:
    """The app with what its steps load lazily loaded (parsers, the geo database)
    and every object made so far frozen out of the garbage collector's sight: they
    live as long as the process, and a full collection that walks them all took
    55-60 ms here, a pause of the event loop that every request waiting shares."""
    app.state.pipeline.warm_up()
    gc.collect()
    gc.freeze()
    return app


def _token_hint(settings: Settings) -> str:
    """Where the token is, never the token: start output ends up in logs and terminals
    other people read."""
    if settings.values.get("api_token"):
        return "the value of TG_API_TOKEN"
    return "derived from the instance secret; print it with `python -m traceglider.secrets` (same settings)"


def _banner(settings: Settings) -> str:
    shown_host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    base = (settings.public_url or f"http://{shown_host}:{settings.port}").rstrip("/")
    lines = [
        f"TraceGlider is running on {base}",
        f"  collector   {base}/collect",
        f"  tracker     {base}/t.js",
        f"  demo site   {base}/demo/",
        f"  dashboard   {base}/dashboard",
        f"  stats API   {base}/api/v1/stats/aggregate",
        f"  health      {base}/healthz",
        f"  storage     {settings.storage}",
        "  API token   " + _token_hint(settings),
        "  snippet     <script defer src=\"" + base + "/t.js\" data-site=\"example.com\"></script>",
    ]
    if not settings.sites:
        lines.append("  warning     TG_SITES is unset: events for any site are accepted")
    if settings.retention_days is None:
        lines.append("  warning     TG_RETENTION_DAYS is unset: events are kept until deleted "
                     "(760 days is the documented default)")
    return "\n".join(lines)


def serve(settings: Settings, config_file: str | None = None) -> int:
    from traceglider.app import create_app
    from traceglider.secrets import ensure_secret
    from traceglider.storage import open_storage

    try:
        storage = open_storage(settings)
        settings = ensure_secret(settings, storage)
    except OSError as exc:
        raise ConfigError(f"cannot prepare the data directory: {exc}") from None
    try:
        settings.spool_path.mkdir(parents=True, exist_ok=True)
        if not os.access(settings.spool_path, os.W_OK):
            raise PermissionError(f"{settings.spool_path} is not writable")
    except OSError as exc:
        raise ConfigError(f"invalid TG_SPOOL_DIR: {exc}") from None
    print(_banner(settings), flush=True)
    from traceglider.connections import configure

    protocol = configure(settings)
    common: dict[str, Any] = {"host": settings.host, "port": settings.port, "log_level": settings.log_level.lower(),
              "proxy_headers": False, "server_header": False, "http": protocol,
              # Access logs would write client addresses; we never keep an IP anywhere.
              "access_log": False, "timeout_graceful_shutdown": 10}
    if settings.workers == 1:
        uvicorn.run(settled(create_app(settings, storage)), **common)
        return 0
    # Worker processes rebuild the settings from the environment: pass on every value
    # that came from a flag or the file, so they see exactly what this process saw.
    if config_file:
        os.environ["TG_CONFIG"] = config_file
    for setting in SETTINGS:
        value = settings.values.get(setting.name)
        if value is not None:
            os.environ[setting.env] = ",".join(value) if isinstance(value, tuple) else str(value)
    uvicorn.run("traceglider.serve:app_from_env", factory=True, workers=settings.workers, **common)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(serve(load()))
