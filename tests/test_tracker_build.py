"""The committed tracker is a fresh esbuild build of tracker/src, and within its size budget."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILT = ROOT / "traceglider" / "static" / "t.min.js"
BUDGET = 3000  # bytes, gzip -9: docs/tracker.md reports the figure


def gzip9(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def test_the_committed_tracker_equals_a_fresh_build() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js is not installed (the tracker is built with esbuild from npm)")
    if not (ROOT / "tracker" / "node_modules" / "esbuild").is_dir():
        pytest.fail("esbuild is missing: run `npm ci --prefix tracker`")
    fresh = subprocess.run([node, "build.mjs", "--stdout"], cwd=ROOT / "tracker",
                           capture_output=True, check=True, timeout=60).stdout
    assert fresh == BUILT.read_bytes(), "stale t.min.js: run `npm run build --prefix tracker`"


def test_the_tracker_is_within_its_size_budget(capsys: pytest.CaptureFixture[str]) -> None:
    data = BUILT.read_bytes()
    size = gzip9(data)
    with capsys.disabled():
        print(f"\ntracker t.min.js: {len(data)} bytes, {size} bytes gzip -9 (budget {BUDGET})")
    assert size <= BUDGET


def test_the_tracker_is_one_self_contained_function() -> None:
    code = BUILT.read_text()
    assert code.startswith("(()=>{") and code.rstrip().endswith("})();")
    for forbidden in ("localStorage", "sessionStorage", "document.cookie", "import(", "eval("):
        assert forbidden not in code
