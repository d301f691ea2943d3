"""AWS Lambda entry points: the collector behind API Gateway, and the scheduled compaction.

`handler` serves the same FastAPI app as `traceglider serve`, through Mangum, for API
Gateway HTTP API (payload 2.0) and REST API (payload 1.0) events. The settings are
forced to `mode=lambda`, in which `/collect` writes each batch to storage before it
answers (a Lambda may be frozen the moment it answers, and its `/tmp` is not durable).

With TG_DELIVERY=firehose, `POST /collect` is answered by
`traceglider.lambda_collect` instead: the batch goes to a Firehose stream, and that
path imports neither FastAPI nor boto3 nor pyarrow (half the cold start, see
bench/lambda_coldstart.py); the app is built only for the first event of another route.

Importing this module stays cheap: FastAPI, boto3 and pyarrow are imported when the
first event that needs them arrives, and DuckDB only if a stats route is called.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from traceglider.config import Settings

log = logging.getLogger("traceglider.aws")

_lock = threading.Lock()
_adapter: Any = None
_collector: Any = None
_settings: Settings | None = None


def lambda_settings(env: dict[str, str] | None = None) -> Settings:
    """The settings from the Lambda environment, with the mode forced to `lambda`."""
    from traceglider.config import load

    return load(env=env).replace(mode="lambda")


def build_adapter(settings: Settings | None = None) -> Any:
    """The Mangum adapter around the collector app (built once per execution environment)."""
    from mangum import Mangum

    from traceglider.app import create_app

    app = create_app(settings or _lambda_settings())
    # Mangum would run the app's startup and shutdown around every single event; in
    # lambda mode there is no background work to start, so the app is used bare.
    return Mangum(app, lifespan="off")


def _lambda_settings() -> Settings:
    """The settings of what was built; read afresh until something was (a failed start
    is retried with the environment of the next event)."""
    return _settings or lambda_settings()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """API Gateway (HTTP API v2 or REST v1) or function URL event in, its response out."""
    global _adapter, _settings
    if _lambda_settings().delivery == "firehose":
        from traceglider.lambda_collect import is_collect

        if is_collect(event):
            return _collect(event)
    if _adapter is None:
        from traceglider.errors import StorageError

        with _lock:
            if _adapter is None:
                try:
                    settings = _lambda_settings()
                    _adapter = build_adapter(settings)
                    _settings = settings
                except StorageError as exc:
                    # Building the app reads the instance secret from the bucket. With
                    # S3 unreachable, answer as /collect would: 503, so the tracker
                    # retries; the next event tries the build again.
                    log.error("cannot start the collector: %s", exc)
                    return _unavailable()
    result: dict[str, Any] = _adapter(event, context)
    return result


def _collect(event: dict[str, Any]) -> dict[str, Any]:
    global _collector, _settings
    if _collector is None:
        from traceglider.errors import StorageError
        from traceglider.lambda_collect import LambdaCollector, open_light_storage

        with _lock:
            if _collector is None:
                settings = _lambda_settings()
                try:
                    _collector = LambdaCollector(settings, open_light_storage(settings))
                    _settings = settings
                except StorageError as exc:  # the secret could not be read: as in handler
                    log.error("cannot start the collector: %s", exc)
                    return _unavailable()
    result: dict[str, Any] = _collector.handle(event)
    return result


def _unavailable() -> dict[str, Any]:
    # This shape is valid for both payload versions (REST v1 and HTTP API v2).
    return {
        "statusCode": 503,
        "headers": {"content-type": "application/json", "retry-after": "5",
                    "cache-control": "no-store"},
        "body": '{"error": "storage is unavailable; retry later"}',
        "isBase64Encoded": False,
    }


def reset() -> None:
    """Forget the built app, so that the next event reads the environment again (tests)."""
    global _adapter, _collector, _settings
    with _lock:
        if _collector is not None:
            _collector.sink.stop()
        _adapter = _collector = _settings = None


def _retention_days(event: dict[str, Any], settings: Settings) -> int:
    from traceglider.storage.retention import DEFAULT_DAYS

    return int(event.get("retention_days") or settings.retention_days or DEFAULT_DAYS)


def compact_handler(event: dict[str, Any] | None, context: Any) -> dict[str, Any]:
    """Compact yesterday's and today's partitions of every site, apply retention, and
    delete the cookieless salts of past days (`traceglider.maintenance`).

    Run by an EventBridge schedule. The event may name `dates` (["YYYY-MM-DD", ...]) to
    compact other days, a `site`, and `retention_days` (0 or absent: TG_RETENTION_DAYS,
    default 760); EventBridge's own scheduled-event fields are ignored.
    """
    from traceglider.maintenance import run_maintenance
    from traceglider.storage import open_storage
    from traceglider.storage.salts import open_salt_storage

    event = event if isinstance(event, dict) else {}
    settings = lambda_settings()
    summary = run_maintenance(open_storage(settings), _retention_days(event, settings),
                              dates=event.get("dates"), site=event.get("site"),
                              salts=open_salt_storage(settings))
    log.info("compaction done: %s", summary)
    return summary
