"""What `serve` does so that idle or slow connections cannot lock everyone out: a
deadline for a request's headers and another for its body, a cap on open
connections below the file-descriptor limit, and a raised soft limit at start.

uvicorn times out only idle keep-alive connections; a client that opens a socket
and sends nothing, or one header byte every few seconds (slowloris), would hold its
file descriptor for ever, and at the limit the spool and storage could no longer
open files. `GuardedH11Protocol` closes a connection whose headers are not complete
within `header_timeout` seconds of its start (or of the previous answer), or whose
body is not complete within `body_timeout` seconds of its headers; and a connection
beyond `max_connections` is answered 503 and closed at once.

The guard also hands the protocol a transport that sends an answer's head and body
as one write (`CoalescedWrites`): uvicorn writes the status line and headers, then
the body, each at once, and on loopback the first of those two socket writes cost
10.5% of the event loop's time under load, the second 4.4%.

The guard sits on uvicorn's httptools protocol (llhttp, in C) when httptools is
installed (`uvicorn[standard]` brings it), else on its h11 protocol (pure Python). A
profile of `/collect` under load had 37% of the event loop's time in h11 alone:
more than parsing and enriching the batch.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - only without httptools
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

log = logging.getLogger("traceglider.connections")

# Descriptors kept back from the connection cap for the spool, storage, DuckDB's
# files and the process's own (logs, sockets to S3).
RESERVED_FILES = 256
MIN_CONNECTIONS = 16
BUSY = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 5\r\n"
        b"connection: close\r\ncontent-length: 52\r\n\r\n"
        b'{"error":"too many open connections; retry shortly"}')


def raise_file_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (systemd's default soft limit is
    1,024, its hard limit 512K); returns the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            log.warning("could not raise the open-file limit above %d", soft)
    return soft


def connection_cap(file_limit: int, configured: int | None = None) -> int:
    """At most `configured` connections, and always `RESERVED_FILES` below the limit."""
    room = max(MIN_CONNECTIONS, file_limit - RESERVED_FILES)
    return min(configured, room) if configured else room


JOIN_LIMIT = 64 * 1024  # bytes of a body sent with the head before it in one write


class CoalescedWrites:
    """A connection's transport that sends an answer's head and body as one write:
    a write is held until the next one, which goes out with it at once, or until the
    end of this turn of the event loop, whichever comes first (so an answer is never
    held longer than it takes to write its body). In order; everything else is the
    transport's own; `close` sends what is held first, as the transport would."""

    __slots__ = ("_transport", "_loop", "_held")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is None:
            self._held = data
            self._loop.call_soon(self._send)
        else:
            self._held = None
            if len(data) > JOIN_LIMIT:  # a large body: no copy to save a system call
                self._transport.write(held)
                self._transport.write(data)
            else:
                self._transport.write(held + data)

    def _send(self) -> None:
        held, self._held = self._held, None
        if held and not self._transport.is_closing():
            self._transport.write(held)

    def close(self) -> None:
        self._send()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class Guard(asyncio.Protocol):
    """Read deadlines and a connection cap over one of uvicorn's HTTP protocols
    (class attributes, set by `configure` in each server process). Both protocols
    keep the request being read in `cycle`, with `more_body` while its body is still
    coming and `response_complete` once answered."""

    header_timeout = 10.0
    body_timeout = 30.0
    max_connections = 1000
    refused = 0  # connections answered 503 at the cap, per process
    timed_out = 0  # connections closed for a slow request, per process
    # What the guard reads of the protocol it is mixed into (both have these).
    connections: set[Any]
    cycle: Any
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._deadline: asyncio.TimerHandle | None = None
        self._reading: str | None = None
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            Guard.refused += 1
            transport.write(BUSY)
            transport.close()
            return
        # Every write of the connection goes through it (answers, errors, 100
        # Continue), so none can overtake one held.
        self.transport = CoalescedWrites(transport, self.loop)  # type: ignore[assignment]
        self._expect("headers")

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            self._expect("headers")  # the next request's, on a kept-alive connection
        elif cycle.more_body:
            self._expect("body")
        else:
            self._expect(None)  # read whole: the app has it

    def on_response_complete(self) -> None:
        self._expect(None)  # idle until the next request: uvicorn's keep-alive timeout
        super().on_response_complete()  # type: ignore[misc]  # the protocol mixed into

    def connection_lost(self, exc: Exception | None) -> None:
        self._expect(None)
        super().connection_lost(exc)

    def _expect(self, part: str | None) -> None:
        if part == self._reading:
            return
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._reading = part
        if part is not None:
            timeout = self.header_timeout if part == "headers" else self.body_timeout
            self._deadline = self.loop.call_later(timeout, self._expired)

    def _expired(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            Guard.timed_out += 1
            self.transport.close()


class GuardedH11Protocol(Guard, H11Protocol):
    """uvicorn's h11 protocol, guarded."""


if HttpToolsProtocol is not None:
    class GuardedHttpToolsProtocol(Guard, HttpToolsProtocol):
        """uvicorn's httptools protocol, guarded."""

    PROTOCOL: type[Guard] = GuardedHttpToolsProtocol
else:  # pragma: no cover - only without httptools
    PROTOCOL = GuardedH11Protocol


def configure(settings: Any) -> type[Guard]:
    """Raise the file limit and set the protocol's deadlines and cap from settings."""
    limit = raise_file_limit()
    Guard.header_timeout = float(settings.header_timeout)
    Guard.body_timeout = float(settings.body_timeout)
    Guard.max_connections = connection_cap(limit, settings.max_connections)
    return PROTOCOL
