"""DuckDB connections that read (and compaction's, write) the storage's Parquet files.

Never downloads anything: the httpfs extension comes from the installed
`duckdb-extension-httpfs` package, and the S3 credentials from the storage backend
(`Storage.duckdb_secret`), so DuckDB reads exactly what the backend lists. Every
connection is held to a memory limit and spills to a directory of its own
(`traceglider.memory.open_duckdb`). DuckDB is imported lazily by the callers.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from traceglider.memory import default_duckdb_memory, open_duckdb

if TYPE_CHECKING:
    from traceglider.storage.base import Storage

_NO_DOWNLOADS = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
REMOTE_THREADS = 16
THREAD_MEMORY = 128 << 20  # of the memory limit per thread: each keeps its own aggregation state


def connect(storage: Storage, memory_limit: int | None = None, threads: int | None = None) -> Any:
    """A connection for `storage`'s URIs; times are UTC (`date_trunc` buckets by UTC)."""
    con = open_duckdb(memory_limit, dict(_NO_DOWNLOADS))
    # in-memory tables only: an automatic checkpoint would compress them again inside
    # whichever statement trips it
    con.execute("SET checkpoint_threshold = '1TB'")
    con.execute("SET TimeZone = 'UTC'")
    # stored files are never rewritten under the same name: their footers can be kept
    # for the next query
    con.execute("SET parquet_metadata_cache = true")
    secret = storage.duckdb_secret()
    if not threads and secret is not None:
        threads = remote_threads(memory_limit or default_duckdb_memory())
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if secret is not None:
        con.execute("LOAD '" + httpfs_path().replace("'", "''") + "'")
        body = ", ".join(f"{k} {_literal(v)}" for k, v in secret.items())
        con.execute(f"CREATE OR REPLACE SECRET traceglider_s3 (TYPE s3, {body})")
        bound_http(con, getattr(storage, "timeout", DEFAULT_HTTP_TIMEOUT))
        # No HTTP metadata cache: with it DuckDB answers from a cached HEAD (and its
        # cached file data) for an object compaction has deleted, so a query on a
        # listing a moment old returns stale figures instead of failing, and the
        # engine never knows to list again.
    return con


def remote_threads(memory_limit: int, cores: int | None = None) -> int:
    """Threads for a connection reading object storage. httpfs waits for each range
    request on the thread that made it, so one thread per core leaves the cores idle
    behind the round trips: with 20 ms added to every request (bench/latency_proxy.py)
    two visit breakdowns over moto took 10.5 s on 2 threads, 4.4 s on 8 and 3.2 s on 16.
    At most REMOTE_THREADS, and THREAD_MEMORY of the memory limit for each."""
    cores = cores or os.cpu_count() or 1
    return max(cores, min(REMOTE_THREADS, memory_limit // THREAD_MEMORY))


DEFAULT_HTTP_TIMEOUT = 10.0
HTTP_RETRIES = 1
HTTP_RETRY_WAIT_MS = 100


def http_settings(timeout: float) -> dict[str, int]:
    """httpfs's timeouts for a store that accepts connections and never answers: a read,
    its one retry included, gives up within `timeout` (TG_STORAGE_TIMEOUT; httpfs counts
    whole seconds, at least 1), where its defaults (30 s, three retries) made a stats
    request wait two minutes. The error is an IOException, which the engine answers
    with a 503."""
    per_try = max(1, int((timeout - HTTP_RETRY_WAIT_MS / 1000) // (HTTP_RETRIES + 1)))
    return {"http_timeout": per_try, "http_retries": HTTP_RETRIES, "http_retry_wait_ms": HTTP_RETRY_WAIT_MS}


def bound_http(con: Any, timeout: float) -> None:
    for name, value in http_settings(timeout).items():
        con.execute(f"SET {name} = {int(value)}")


def timed_out(exc: BaseException) -> bool:
    """An httpfs error that says the store did not answer in time (its only sign is the
    message, curl's and httplib's wording)."""
    text = str(exc)
    return "Timeout was reached" in text or "timed out" in text.lower()


def httpfs_path() -> str:
    import duckdb
    import duckdb_extension_httpfs

    base = Path(duckdb_extension_httpfs.__file__).parent / "extensions"
    exact = base / f"v{duckdb.__version__}" / "httpfs.duckdb_extension"
    if exact.exists():
        return str(exact)
    found = sorted(base.glob("*/httpfs.duckdb_extension"))
    if not found:
        raise RuntimeError("the duckdb-extension-httpfs package holds no httpfs extension")
    return str(found[-1])


def _literal(value: str) -> str:
    """A secret option's value (our configuration, not client data): DuckDB's CREATE
    SECRET takes no parameters."""
    if value in ("true", "false"):
        return value
    return "'" + value.replace("'", "''") + "'"
