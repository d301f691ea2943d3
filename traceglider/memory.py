"""How much memory this process may use, and DuckDB connections held to a share of it.

DuckDB's own default limit is 80% of the machine's memory, blind to the limit of a
systemd unit (`MemoryMax`) or of a container without a cgroup namespace; past the real
limit the kernel kills the whole server, collector included. So every connection we
open (the stats engine's, compaction's) gets an explicit limit and a directory of its
own to spill to beyond it.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from traceglider.proc import pid_namespace

MIN_DUCKDB_MEMORY = 256 << 20
SPILL_PREFIX = "traceglider-duckdb-"


def memory_total(proc_cgroup: str = "/proc/self/cgroup", cgroup_root: str = "/sys/fs/cgroup") -> int:
    """The memory this process may use: the machine's, or its cgroup's limit when lower
    (a container's, or a systemd unit's MemoryMax, whose cgroup is not the root)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 << 30
    candidates = [f"{cgroup_root}/memory.max", f"{cgroup_root}/memory/memory.limit_in_bytes"]
    try:
        for line in Path(proc_cgroup).read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if controllers == "":  # cgroup v2
                candidates.append(f"{cgroup_root}{path.rstrip('/')}/memory.max")
            elif "memory" in controllers.split(","):  # cgroup v1
                candidates.append(f"{cgroup_root}/memory{path.rstrip('/')}/memory.limit_in_bytes")
    except (OSError, ValueError):
        pass
    for limit_file in candidates:
        try:
            raw = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if raw.isdigit():
            total = min(total, int(raw))
    return total


def duckdb_share(budget: int, processes: int = 1) -> int:
    """DuckDB's limit for one process with `budget` bytes of cached tables: twice that
    (the tables live in it and each query needs room besides), at least 256 MiB, and
    never more than this process's share of half the memory."""
    return min(max(2 * budget, MIN_DUCKDB_MEMORY), memory_total() // 2 // max(1, processes))


def default_duckdb_memory() -> int:
    """A connection's limit when none is given: half of what this process may use."""
    return memory_total() // 2


def open_duckdb(memory_limit: int | None = None, config: dict[str, Any] | None = None) -> Any:
    """An in-memory DuckDB connection held to `memory_limit` bytes (default half of what
    this process may use), spilling to a directory of its own (DuckDB removes it on
    close)."""
    import duckdb

    limit = memory_limit or default_duckdb_memory()
    return duckdb.connect(config={**(config or {}), "memory_limit": f"{max(limit >> 20, 1)}MiB",
                                  "temp_directory": str(spill_directory())})


def spill_directory() -> Path:
    """A new directory name under the temporary directory, naming this process's pid
    namespace and pid; those of processes of the same namespace that are gone (killed
    before DuckDB could remove them) are removed. Another namespace's (a container
    sharing /tmp) are never touched: its pids mean nothing here."""
    base, ns = Path(tempfile.gettempdir()), pid_namespace() or "0"
    for old in base.glob(f"{SPILL_PREFIX}{ns}-*"):
        pid = old.name.removeprefix(f"{SPILL_PREFIX}{ns}-").split("-")[0]
        if pid.isdigit() and ns != "0" and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(old, ignore_errors=True)
    return base / f"{SPILL_PREFIX}{ns}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class _NoPandas:
    """A finder that says pandas is not installed (see keep_pandas_out)."""

    @staticmethod
    def find_spec(name: str, path: object = None, target: object = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError("pandas is kept out of this process", name=name)
        return None


def keep_pandas_out() -> None:
    """For processes of our own only (the command line, `serve`'s workers): DuckDB
    (since 1.4) imports pandas, when it is installed, before it binds any parameter, to
    recognise DataFrames. We never hand it one, and that import costs about half a
    second and 85 MiB in every process: a third of `traceglider stats`' time. Importing
    pandas fails here as if it were not installed, which DuckDB and pyarrow both take in
    their stride (a `None` in `sys.modules` would not do: pyarrow reads it as the module).
    A library call must not do this: it hides pandas from the rest of the process."""
    if "pandas" not in sys.modules and not any(isinstance(f, _NoPandas) for f in sys.meta_path):
        sys.meta_path.insert(0, _NoPandas())  # type: ignore[arg-type]
