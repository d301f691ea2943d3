"""What `serve` does to the app before it answers: nothing lazy left, and the
long-lived objects out of the garbage collector's full collections."""

from __future__ import annotations

import gc
from pathlib import Path

from traceglider.app import create_app
from traceglider.config import load
from traceglider.serve import settled


def test_the_served_app_is_warm_and_its_objects_are_frozen(tmp_path: Path) -> None:
    app = create_app(load(env={"TG_STORAGE": str(tmp_path / "data"), "TG_COMPACT_SECONDS": "0"}))
    try:
        assert settled(app) is app
        frozen = gc.get_freeze_count()
        assert frozen > 10_000  # the geo database, the parsers, the app itself
        # A full collection walks only what was made since (requests' objects), not
        # the tens of thousands that live as long as the process.
        assert len(gc.get_objects()) < frozen / 10
    finally:
        gc.unfreeze()  # the test process's objects are collected again
