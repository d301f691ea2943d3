"""One settings table feeds the environment, the TOML file, the CLI flags and the docs.

Precedence: flags beat `TG_*` environment variables, which beat the TOML file, which
beats the defaults. Every value is parsed and checked here, once, at start; a bad value
raises `ConfigError` naming the setting, which the CLI prints as one line (exit 2).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_type_hints

from traceglider.errors import ConfigError
from traceglider.proxies import DEFAULT as DEFAULT_PROXIES
from traceglider.proxies import TrustedProxies
from traceglider.settings_types import SettingsAttributes

Parser = Callable[[str], Any]


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError("must be greater than 0")
    return value


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("must be a whole number greater than 0")
    return value


def _seconds(raw: str) -> float:
    value = float(raw)
    if not 0 <= value <= 86400:
        raise ValueError("must be a number of seconds from 0 to 86400")
    return value


def _port(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 65535:
        raise ValueError("must be a port number from 0 to 65535")
    return value


def _bool(raw: str) -> bool:
    lowered = str(raw).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be true or false")


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(part.strip().lower() for part in str(raw).split(",") if part.strip())


def _origins(raw: str) -> tuple[str, ...]:
    import re

    origins = _csv(raw)
    for origin in origins:
        if origin != "*" and not re.fullmatch(r"https?://[a-z0-9.-]+(:\d{1,5})?|https?://\[[0-9a-f:]+\](:\d{1,5})?",
                                              origin):
            raise ValueError(f"{origin!r} is not an origin such as https://tools.example.com, or *")
    return origins


def _sites(raw: str) -> tuple[str, ...]:
    from traceglider.errors import BadRequest
    from traceglider.sites import normalize_site

    try:
        return tuple(dict.fromkeys(normalize_site(part, "site") for part in _csv(raw)))
    except BadRequest as exc:
        raise ValueError(exc.message) from None


def _text(raw: str) -> str:
    return str(raw)


def _optional_text(raw: str) -> str | None:
    return str(raw) or None


_COOKIE_DOMAIN = re.compile(r"^\.?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")


def _cookie_domain(raw: str) -> str | None:
    # It goes into every Set-Cookie header: a `;` or a line break would add attributes
    # or headers of its own.
    value = str(raw).strip().lower()
    if not value:
        return None
    if len(value) > 253 or not _COOKIE_DOMAIN.match(value):
        raise ValueError("must be a domain such as example.com")
    return value


def _trusted_proxies(raw: str) -> TrustedProxies:
    return TrustedProxies(raw)


def _storage(raw: str) -> str:
    raw = str(raw).strip()
    if not raw:
        raise ValueError("must not be empty")
    if raw.startswith("s3://"):
        if not raw[5:].split("/", 1)[0]:
            raise ValueError("an s3:// URL needs a bucket name, as in s3://bucket/prefix")
        return raw
    if "://" in raw and not raw.startswith("file://"):
        raise ValueError("must be a local path, file:///abs/path or s3://bucket/prefix")
    return raw


def _cookie_days(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= 400:
        raise ValueError("must be from 1 to 400 days (browsers cap cookies at 400)")
    return value


def _mode(raw: str) -> str:
    if raw not in ("server", "lambda"):
        raise ValueError("must be 'server' or 'lambda'")
    return raw


def _delivery(raw: str) -> str:
    if raw not in ("direct", "firehose"):
        raise ValueError("must be 'direct' or 'firehose'")
    return raw


def _log_level(raw: str) -> str:
    value = str(raw).upper()
    if value not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
    return value


def _cookieless_policy(raw: str) -> str:
    if raw not in ("cookieless", "drop"):
        raise ValueError("must be 'cookieless' or 'drop'")
    return raw


@dataclass(frozen=True)
class Setting:
    name: str  # attribute name; env var is TG_<NAME>, TOML key is <name>, flag --<name>
    default: Any
    parse: Parser
    help: str

    @property
    def env(self) -> str:
        return "TG_" + self.name.upper()


SETTINGS: list[Setting] = [
    Setting("storage", "./tg-data", _storage,
            "Where events land: a local path, file:///abs/path, or s3://bucket/prefix."),
    Setting("s3_endpoint_url", None, _optional_text,
            "An S3-compatible endpoint (MinIO, R2, a local test server); unset means AWS."),
    Setting("storage_timeout", 10.0, _positive_float,
            "Seconds a storage that does not answer (S3 accepting connections but silent) "
            "is waited for: each S3 call, its one retry included, and each DuckDB read "
            "gives up within it, so a stats or forget request answers 503 with Retry-After "
            "after about this long and the spool keeps the events meanwhile."),
    Setting("sites", (), _sites,
            "Comma-separated site domains accepted; events for other sites get 403. "
            "Unset accepts any site (with a warning at start)."),
    Setting("secret", None, _optional_text,
            "Signs dashboard sessions and visitor cookies, keys the cookieless ids. "
            "Generated once when unset: kept in TG_SECRET_FILE on local storage, as "
            "<prefix>/_meta/secret on S3."),
    Setting("secret_file", None, _optional_text,
            "Where the secret generated when TG_SECRET is unset is kept on local storage: a "
            "file only the collector's user may read (0600), never inside the data directory "
            "(which readers of the data share). Unset: beside the data (<storage>.secret). "
            "A .secret left inside the data directory by older versions is moved there."),
    Setting("api_token", None, _optional_text,
            "Bearer token of the stats API and dashboard; derived from the secret when unset."),
    Setting("cookie_name", "tg_vid", _text, "Name of the server-set visitor cookie."),
    Setting("cookie_domain", None, _cookie_domain,
            "Domain attribute of the visitor cookie (for example example.com); host-only "
            "when unset."),
    Setting("cookie_days", 395, _cookie_days,
            "Lifetime of the visitor cookie in days (at most 400)."),
    Setting("cookies_without_consent", False, _bool,
            "Set the visitor cookie without an explicit consent grant (only where the law "
            "of your visitors allows it)."),
    Setting("gpc_policy", "cookieless", _cookieless_policy,
            "What to do for visitors with Global Privacy Control or Do Not Track: "
            "'cookieless' counts them without any cookie, 'drop' records nothing."),
    Setting("salts", None, _optional_text,
            "Where the daily cookieless salts live: a directory or s3://bucket/prefix that "
            "readers of the data cannot reach (its own IAM on AWS). Unset: beside the data, "
            "never inside it (<storage>.salts)."),
    Setting("spool_dir", None, _optional_text,
            "The local durable buffer (write-ahead log); inside the data dir when unset, "
            "/tmp/traceglider-spool on Lambda."),
    Setting("spool_max_bytes", 1024 * 1024 * 1024, _positive_int,
            "Size cap of the spool; at the cap /collect answers 503 with Retry-After."),
    Setting("flush_seconds", 10.0, _positive_float,
            "Write buffered events to storage at least this often."),
    Setting("flush_events", 10000, _positive_int,
            "Write buffered events to storage once this many are waiting."),
    Setting("trusted_proxies", DEFAULT_PROXIES, _trusted_proxies,
            "Who may name the client's address in X-Forwarded-For (and HTTPS in "
            "X-Forwarded-Proto): `loopback`, a reverse proxy on the same host; or "
            "comma-separated addresses and CIDR networks of your proxies (add `loopback` "
            "to keep a local one); or a number N, the last N hops whoever the peer is; "
            "0: nobody, the socket address is the client's. Others' X-Forwarded-For is "
            "ignored (said once in the log and on /healthz)."),
    Setting("geoip_db", None, _optional_text,
            "Path to a MaxMind GeoLite2/GeoIP2 City or Country .mmdb file (a City one also "
            "fills region and city); the bundled geoip2fast database, country only, is used "
            "when unset."),
    Setting("store_user_agent", False, _bool, "Also store the raw User-Agent string."),
    Setting("drop_bots", True, _bool,
            "Drop crawlers, monitors, headless and automated browsers (turn off only to "
            "record your own automated browser tests)."),
    Setting("query_allowlist", (), _csv,
            "Extra URL query parameters kept besides utm_* and ref (comma-separated)."),
    Setting("rate_limit", 1200, int,
            "Requests per minute accepted from one client address and user agent on "
            "/collect, /collect.gif and /api/event, with a minute's worth as a burst; "
            "refusals are 429 with Retry-After, which the tracker waits for before "
            "sending the batch again (0: off)."),
    Setting("retention_days", None, _positive_int,
            "Days of events kept: older partitions are deleted by `serve`'s maintenance "
            "round and by the Lambda schedule (which keeps 760 days, 25 months, when this is "
            "unset); unset, `serve` deletes nothing. `traceglider retention --days N` takes its own value."),
    Setting("compact_seconds", 3600.0, _seconds,
            "Seconds between the maintenance rounds `serve` runs itself: compaction of "
            "yesterday's and today's partitions, retention when TG_RETENTION_DAYS is set, "
            "old salts (the first round 5 minutes after start). 0: off, for `traceglider "
            "compact` and `retention` from cron, or a dashboard-only server."),
    Setting("mode", "server", _mode,
            "'server' spools and flushes in the background; 'lambda' writes each batch "
            "to storage before answering."),
    Setting("delivery", "direct", _delivery,
            "How Lambda mode keeps a batch before answering: 'direct' writes it to storage "
            "as one Parquet object per request; 'firehose' hands it to the Amazon Data "
            "Firehose stream TG_FIREHOSE_STREAM, which delivers to <storage>/incoming/ for "
            "the scheduled compaction to convert (cheaper per request, events visible after "
            "the next compaction; docs/costs.md). Ignored in server mode."),
    Setting("firehose_stream", None, _optional_text,
            "Name of the Firehose delivery stream of TG_DELIVERY=firehose."),
    Setting("firehose_endpoint_url", None, _optional_text,
            "A Firehose endpoint (a local test server); unset means AWS in AWS_REGION."),
    Setting("dashboard_refresh", 30.0, _seconds,
            "Seconds between background recomputations of the dashboard panels someone is "
            "looking at; meanwhile the page is answered from the last one and shows its age "
            "(the Stats API is always computed on request). 0: dashboard panels too."),
    Setting("stats_cors_origins", (), _origins,
            "Origins whose pages may call the stats and sites APIs with the token "
            "(comma-separated, such as https://tools.example.com, or * for any): CORS with "
            "the Authorization header and no cookies, preflight answered. Unset: none."),
    Setting("stats_memory_mb", None, _positive_int,
            "Memory the stats engine's cached tables may use, in MiB, per worker (10 million "
            "events take about 1.5 GiB); the least recently used periods are dropped beyond "
            "it, and DuckDB may use twice it (at least 256 MiB, at most the worker's share of "
            "half the memory), spilling to disk beyond. "
            "Default: a quarter of the memory of the machine or of the process's cgroup "
            "(container, systemd MemoryMax), shared by the workers."),
    Setting("dashboard_prepare", True, _bool,
            "When `serve` starts, compute the dashboard's default view of up to three sites "
            "(TG_SITES, else the first found in storage) so the first visit opens at once."),
    Setting("host", "127.0.0.1", _text, "Address `serve` listens on."),
    Setting("port", 8000, _port, "Port `serve` listens on."),
    Setting("workers", 1, _positive_int,
            "Worker processes of `serve`; each has its own spool."),
    Setting("header_timeout", 10.0, _positive_float,
            "`serve` closes a connection whose request headers take longer (seconds)."),
    Setting("body_timeout", 30.0, _positive_float,
            "`serve` closes a connection whose request body takes longer after its headers."),
    Setting("max_connections", None, _positive_int,
            "Open connections per `serve` worker beyond which new ones get 503; unset, and "
            "always, 256 below the open-file limit (whose soft value `serve` raises)."),
    Setting("public_url", None, _optional_text,
            "The collector's public base URL, used in printed URLs and snippets."),
    Setting("log_level", "INFO", _log_level, "DEBUG, INFO, WARNING or ERROR."),
]

_BY_NAME = {s.name: s for s in SETTINGS}


def setting_named(name: str) -> Setting:
    return _BY_NAME[name]


@dataclass(frozen=True)
class Settings(SettingsAttributes):
    """The parsed settings; each is an attribute typed in `settings_types.py`, which is
    generated from SETTINGS (`python -m traceglider.config`), so mypy knows them all and
    refuses a name that is not a setting."""

    values: dict[str, Any] = field(default_factory=dict)

    if not TYPE_CHECKING:  # the attributes' values; their types come from the table
        def __getattr__(self, name: str) -> Any:
            try:
                return self.values[name]
            except KeyError:
                raise AttributeError(name) from None

    def replace(self, **changes: Any) -> Settings:
        for key in changes:
            if key not in _BY_NAME:
                raise ConfigError(f"unknown setting {key!r}")
        return Settings({**self.values, **changes})

    @property
    def data_dir(self) -> Path | None:
        """The local data directory, or None when storage is S3."""
        storage = self.values["storage"]
        if storage.startswith("s3://"):
            return None
        return Path(storage.removeprefix("file://")).absolute()

    @property
    def spool_path(self) -> Path:
        if self.values.get("spool_dir"):
            return Path(self.values["spool_dir"]).absolute()
        if self.data_dir is not None:
            return self.data_dir / "spool"
        return Path(os.environ.get("TMPDIR", "/tmp")) / "traceglider-spool"


def _parse(setting: Setting, raw: Any, origin: str) -> Any:
    if raw is None:
        return None
    if isinstance(raw, (list, tuple)) and setting.parse in (_csv, _sites):
        raw = ",".join(str(item) for item in raw)
    # TOML gives typed values; the parsers take text, as from the environment.
    text = ("true" if raw else "false") if isinstance(raw, bool) else str(raw)
    try:
        return setting.parse(text)
    except (ValueError, TypeError) as exc:
        reason = str(exc) if str(exc) and "invalid literal" not in str(exc) else "wrong type"
        raise ConfigError(f"invalid {origin}: {reason} (got {raw!r})") from None


def load(
    flags: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    config_file: str | None = None,
) -> Settings:
    """Build the settings from defaults, file, environment and flags, in that order."""
    env = dict(os.environ if env is None else env)
    values = {s.name: s.default for s in SETTINGS}

    path = config_file or env.get("TG_CONFIG")
    if path:
        try:
            with open(path, "rb") as fh:
                document = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        for key, raw in document.items():
            name = key.lower().removeprefix("tg_")
            if name not in _BY_NAME:
                raise ConfigError(f"unknown setting {key!r} in {path}")
            values[name] = _parse(_BY_NAME[name], raw, f"{key} in {path}")

    for setting in SETTINGS:
        if setting.env in env:
            values[setting.name] = _parse(setting, env[setting.env], setting.env)

    for name, raw in (flags or {}).items():
        if raw is None:
            continue
        if name not in _BY_NAME:
            raise ConfigError(f"unknown setting {name!r}")
        values[name] = _parse(_BY_NAME[name], raw, "--" + name.replace("_", "-"))

    return Settings(values)


def markdown_table() -> str:
    """The settings as a Markdown table, for docs/configuration.md."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for s in SETTINGS:
        default = s.default
        if isinstance(default, tuple):
            default = ",".join(default) or "unset"
        shown = "unset" if default is None else f"`{default}`"
        lines.append(f"| `{s.env}` | {shown} | {s.help} |")
    return "\n".join(lines)


def write_docs(path: str = "docs/configuration.md") -> None:
    """Refresh the generated table in docs/configuration.md (`make docs`)."""
    with open(path) as fh:
        text = fh.read()
    start, end = "<!-- settings:start -->", "<!-- settings:end -->"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    with open(path, "w") as fh:
        fh.write(f"{head}{start}\n{markdown_table()}\n{end}{tail}")


def _type_name(setting: Setting) -> str:
    """The Python type of a setting's value: its parser's return type, or None too
    when it has no default."""
    hint = get_type_hints(setting.parse).get("return", setting.parse)
    name = hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")
    name = name.replace("traceglider.proxies.", "")
    return name if setting.default is not None or "None" in name else f"{name} | None"


def typed_attributes() -> str:
    """The source of `traceglider/settings_types.py`."""
    lines = [
        '"""The type of every setting, generated from the settings table in config.py by',
        "`python -m traceglider.config`: do not edit; a test fails when it is out of date.",
        '"""', "", "from __future__ import annotations", "", "from typing import TYPE_CHECKING", "",
        "if TYPE_CHECKING:", "    from traceglider.proxies import TrustedProxies", "", "",
        "class SettingsAttributes:",
        '    """Annotations only: `Settings` reads the values from its table."""', "",
    ]
    lines += [f"    {s.name}: {_type_name(s)}" for s in SETTINGS]
    return "\n".join(lines) + "\n"


def write_types(path: Path = Path(__file__).with_name("settings_types.py")) -> None:
    path.write_text(typed_attributes())


if __name__ == "__main__":  # pragma: no cover
    write_docs()
    write_types()
