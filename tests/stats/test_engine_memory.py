"""The stats engine's memory: limits taken from the process's cgroup (a container's, or
a systemd unit's MemoryMax), DuckDB held to half of it, and a query past it a 503
instead of the kernel killing the server."""

from __future__ import annotations

from pathlib import Path

import pytest

from traceglider.errors import Unavailable
from traceglider.memory import duckdb_share, memory_total
from traceglider.proc import pid_namespace
from traceglider.stats.engine import Engine
from traceglider.storage.local import LocalStorage


def limits(tmp_path: Path, proc: str, files: dict[str, str]) -> int:
    (tmp_path / "cgroup").write_text(proc)
    for name, value in files.items():
        path = tmp_path / "sys" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value + "\n")
    return memory_total(str(tmp_path / "cgroup"), str(tmp_path / "sys"))


@pytest.mark.parametrize("proc, files, expected_mb", [
    # cgroup v2, the process in a unit of its own (systemd's MemoryMax)
    ("0::/system.slice/traceglider.service\n",
     {"memory.max": "max", "system.slice/traceglider.service/memory.max": str(2 << 30)}, 2048),
    # cgroup v1, a sub-group without a namespace
    ("9:memory:/tg\n8:pids:/\n", {"memory/memory.limit_in_bytes": "9223372036854771712",
                                    "memory/tg/memory.limit_in_bytes": str(3 << 30)}, 3072),
    # a container: its own cgroup seen as the root
    ("0::/\n", {"memory.max": str(1 << 30)}, 1024),
])
def test_the_limit_of_the_process_cgroup_is_found(tmp_path: Path, proc: str, files: dict[str, str],
                                                  expected_mb: int) -> None:
    assert limits(tmp_path, proc, files) >> 20 == expected_mb


def test_no_limit_means_the_machine_memory(tmp_path: Path) -> None:
    machine = memory_total(str(tmp_path / "missing"), str(tmp_path / "missing-too"))
    assert machine > 256 << 20
    assert limits(tmp_path, "0::/\n", {"memory.max": "max"}) == machine


LINUX_PROC = pytest.mark.skipif(pid_namespace() is None, reason="needs Linux /proc")


@LINUX_PROC
def test_duckdb_is_held_to_twice_the_budget_and_spills_to_a_directory_of_its_own(tmp_path: Path) -> None:
    engine = Engine(LocalStorage(str(tmp_path)), memory_budget=300 << 20)
    try:
        limit, spill = engine.fetch("SELECT current_setting('memory_limit'), current_setting('temp_directory')")[0]
        assert limit == "600.0 MiB"
        assert f"traceglider-duckdb-{pid_namespace()}-" in spill
    finally:
        engine.close()


def test_the_duckdb_share_has_a_floor_and_a_ceiling() -> None:
    half = memory_total() // 2
    assert duckdb_share(1) == min(256 << 20, half)  # a tiny budget still leaves DuckDB room
    assert duckdb_share(300 << 20) == min(600 << 20, half)
    assert duckdb_share(10 * memory_total()) == half  # never more than half of memory
    assert duckdb_share(10 * memory_total(), processes=4) == half // 4  # shared by the workers


def test_a_query_past_the_memory_limit_is_a_503(tmp_path: Path) -> None:
    engine = Engine(LocalStorage(str(tmp_path)))
    try:
        engine.connection().execute("SET memory_limit = '20MB'; SET temp_directory = ''")  # no spilling
        with pytest.raises(Unavailable) as caught:
            engine.reading(lambda: engine.fetch(
                "SELECT count(DISTINCT i::VARCHAR || 'x') FROM range(5000000) t(i)"))
        assert caught.value.status == 503 and "memory" in caught.value.message
    finally:
        engine.close()


@LINUX_PROC
def test_spill_directories_of_processes_that_are_gone_are_removed(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import subprocess
    import sys
    import tempfile

    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path))
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    ns = pid_namespace()
    (tmp_path / f"traceglider-duckdb-{ns}-{gone}-0123abcd").mkdir()
    (tmp_path / f"traceglider-duckdb-{ns}-{os.getpid()}-4567ef01").mkdir()  # a live one's: kept
    (tmp_path / f"traceglider-duckdb-1-{gone}-89ab0123").mkdir()  # another namespace's: kept
    engine = Engine(LocalStorage(str(tmp_path / "data")))
    try:
        spill = engine.fetch("SELECT current_setting('temp_directory')")[0][0]
        assert spill.startswith(str(tmp_path / f"traceglider-duckdb-{ns}-{os.getpid()}-"))
        assert sorted(p.name for p in tmp_path.glob("traceglider-duckdb-*")) == sorted([
            f"traceglider-duckdb-{ns}-{os.getpid()}-4567ef01", f"traceglider-duckdb-1-{gone}-89ab0123"])
    finally:
        engine.close()
