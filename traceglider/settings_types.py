"""The type of every setting, generated from the settings table in config.py by
`python -m traceglider.config`: do not edit; a test fails when it is out of date.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from traceglider.proxies import TrustedProxies


class SettingsAttributes:
    """Annotations only: `Settings` reads the values from its table."""

    storage: str
    s3_endpoint_url: str | None
    storage_timeout: float
    sites: tuple[str, ...]
    secret: str | None
    secret_file: str | None
    api_token: str | None
    cookie_name: str
    cookie_domain: str | None
    cookie_days: int
    cookies_without_consent: bool
    gpc_policy: str
    salts: str | None
    spool_dir: str | None
    spool_max_bytes: int
    flush_seconds: float
    flush_events: int
    trusted_proxies: TrustedProxies
    geoip_db: str | None
    store_user_agent: bool
    drop_bots: bool
    query_allowlist: tuple[str, ...]
    rate_limit: int
    retention_days: int | None
    compact_seconds: float
    mode: str
    delivery: str
    firehose_stream: str | None
    firehose_endpoint_url: str | None
    dashboard_refresh: float
    stats_cors_origins: tuple[str, ...]
    stats_memory_mb: int | None
    dashboard_prepare: bool
    host: str
    port: int
    workers: int
    header_timeout: float
    body_timeout: float
    max_connections: int | None
    public_url: str | None
    log_level: str
