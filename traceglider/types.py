"""Types that cross the parts of the package, so that a part can name another's object
without importing it. A leaf: it imports nothing from the package."""

from __future__ import annotations

from typing import Any, Protocol


class Sink(Protocol):
    """Where accepted rows go (`traceglider.sinks`: the spool, or storage directly;
    `traceglider.firehose` on Lambda): `accept` returns once they are durable."""

    async def accept(self, rows: list[dict[str, Any]]) -> None: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def healthy(self) -> bool: ...

    def flush(self) -> bool: ...

    def status(self) -> dict[str, Any]: ...
