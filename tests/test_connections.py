"""Idle and slow connections cannot lock a real `traceglider serve` out: real sockets
on loopback against the real server process."""

from __future__ import annotations

import http.client
import resource
import socket
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.helpers import wait_for
from tests.server import start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    port = free_port()
    process = start_server(tmp_path_factory.mktemp("connections") / "data", port,
                           TG_HEADER_TIMEOUT="0.5", TG_BODY_TIMEOUT="1", TG_MAX_CONNECTIONS="20")
    try:
        yield port, process
    finally:
        process.kill()
        process.wait()


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """True when the server closes the connection (after any answer) within `seconds`."""
    start = time.monotonic()
    try:
        while sock.recv(4096):
            pass
    except OSError:  # a reset is closing too
        pass
    return time.monotonic() - start < seconds


def healthy(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False


def test_a_slowloris_is_cut_off_at_the_header_deadline(server) -> None:  # type: ignore[no-untyped-def]
    port, _ = server
    sock = connect(port)
    sock.sendall(b"POST /collect HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the rest
    assert closed_within(sock, 5)


def test_a_connection_that_sends_nothing_is_closed(server) -> None:  # type: ignore[no-untyped-def]
    port, _ = server
    assert closed_within(connect(port), 5)


def test_a_body_that_never_ends_is_cut_off_at_the_body_deadline(server) -> None:  # type: ignore[no-untyped-def]
    port, _ = server
    sock = connect(port)
    sock.sendall(b"POST /collect HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n"
                 b"content-length: 1000\r\n\r\n{\"site\":")
    assert closed_within(sock, 6)


def test_idle_connections_beyond_the_cap_are_refused_and_the_server_recovers(server) -> None:  # type: ignore[no-untyped-def]
    port, _ = server
    idle = [connect(port) for _ in range(40)]
    # Beyond the cap (20) a connection is answered 503 and closed at once.
    extra = connect(port)
    answer = extra.recv(4096)
    assert answer.startswith(b"HTTP/1.1 503") and b"retry-after: 5" in answer.lower()
    # The idle ones time out at the header deadline: everyone else gets in again.
    assert wait_for(lambda: healthy(port), timeout=10)
    for sock in idle + [extra]:
        sock.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/<pid>/limits")
def test_serve_raises_the_soft_open_file_limit(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard <= 512:
        pytest.skip("the hard limit leaves nothing to raise")
    port = free_port()
    resource.setrlimit(resource.RLIMIT_NOFILE, (512, hard))  # inherited by the server
    try:
        process = start_server(tmp_path / "data", port)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        limits = Path(f"/proc/{process.pid}/limits").read_text()
        line = next(line for line in limits.splitlines() if line.startswith("Max open files"))
        assert line.split()[3] == str(hard), line
    finally:
        process.kill()
        process.wait()


def test_a_client_hanging_up_mid_body_leaves_no_traceback_in_the_log(server, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    port, process = server
    log = next(Path(str(tmp_path_factory.getbasetemp())).glob(f"connections*/server-{port}.log"))
    for path in (b"/consent", b"/api/event", b"/collect"):
        sock = connect(port)
        sock.sendall(b"POST " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: text/plain\r\n"
                     b"content-length: 5000\r\n\r\n{\"site\":")
        sock.close()  # gone before the body arrived
    assert wait_for(lambda: healthy(port))
    assert "Traceback" not in log.read_text()


def test_serve_guards_the_httptools_protocol_when_it_is_installed() -> None:
    # uvicorn[standard] brings httptools (llhttp, in C); the pure-Python h11 protocol
    # took 37% of the event loop's time under /collect load.
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from traceglider.config import load
    from traceglider.connections import Guard, configure

    protocol = configure(load())
    assert issubclass(protocol, HttpToolsProtocol) and issubclass(protocol, Guard)


class RecordingTransport:
    """What a connection's transport is asked to do, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.calls.append(("write", data))

    def close(self) -> None:
        self.calls.append(("close", b""))
        self.closing = True

    def abort(self) -> None:
        self.calls.append(("abort", b""))
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def test_an_answers_header_and_body_writes_reach_the_socket_as_one() -> None:
    import asyncio

    from traceglider.connections import CoalescedWrites

    async def scenario() -> list[tuple[str, bytes]]:
        inner = RecordingTransport()
        writes = CoalescedWrites(inner, asyncio.get_running_loop())  # type: ignore[arg-type]
        writes.write(b"HTTP/1.1 202 Accepted\r\n\r\n")
        assert inner.calls == []  # held for the body
        writes.write(b'{"accepted":1}')
        assert inner.calls == [("write", b'HTTP/1.1 202 Accepted\r\n\r\n{"accepted":1}')]  # at once
        writes.write(b"a chunk alone")
        await asyncio.sleep(0)  # sent at the end of the turn, not held for a next write
        writes.write(b"next answer")
        writes.close()  # sends what it holds first
        writes.write(b"after close")
        await asyncio.sleep(0)
        assert writes.get_extra_info("peername") == "info:peername"  # the rest is the transport's
        return inner.calls[1:]

    assert asyncio.run(scenario()) == [("write", b"a chunk alone"), ("write", b"next answer"), ("close", b"")]


def test_a_connection_aborted_or_gone_drops_what_was_held() -> None:
    import asyncio

    from traceglider.connections import CoalescedWrites

    async def scenario() -> list[tuple[str, bytes]]:
        inner = RecordingTransport()
        writes = CoalescedWrites(inner, asyncio.get_running_loop())  # type: ignore[arg-type]
        writes.write(b"never sent")
        writes.abort()
        await asyncio.sleep(0)
        gone = RecordingTransport()
        late = CoalescedWrites(gone, asyncio.get_running_loop())  # type: ignore[arg-type]
        late.write(b"for a peer that left")
        gone.closing = True  # the peer hung up within the turn
        await asyncio.sleep(0)
        return inner.calls + gone.calls

    assert asyncio.run(scenario()) == [("abort", b"")]
