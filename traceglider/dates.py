"""UTC calendar days as the layout names them (YYYY-MM-DD): a leaf every part uses."""

from __future__ import annotations

import time
from datetime import date, timedelta


def utc_day(seconds: float) -> str:
    """The UTC date of a Unix time in seconds."""
    return time.strftime("%Y-%m-%d", time.gmtime(seconds))


def utc_day_us(micros: int) -> str:
    """The UTC date of a Unix time in microseconds (how events carry `received_at`)."""
    return time.strftime("%Y-%m-%d", time.gmtime(micros // 1_000_000))


def previous_date(day: str) -> str:
    return (date.fromisoformat(day) - timedelta(days=1)).isoformat()
