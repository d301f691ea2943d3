"""A small TCP proxy on loopback that a test can pause, to cut a service off, or stall,
to make it hang: connections are accepted and then never answered."""

from __future__ import annotations

import socket
import threading


class PausableProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.paused = False
        self.stalled = False
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def pause(self) -> None:
        """Drop every open connection and refuse new ones, as a dead network would."""
        self.paused = True
        with self._lock:
            conns, self._conns = self._conns, set()
        for conn in conns:
            _close(conn)

    def stall(self) -> None:
        """Accept every connection and answer nothing, as a hung server would: the
        bytes already in flight stop, new connections are held open in silence."""
        self.stalled = True

    def resume(self) -> None:
        self.paused = False
        self.stalled = False

    def close(self) -> None:
        self.pause()
        _close(self.listener)

    def _accept_loop(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.paused:
                _close(client)
                continue
            if self.stalled:
                with self._lock:
                    self._conns.add(client)  # held open, never read from or answered
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._conns.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                if self.stalled:
                    continue  # a hung server: what was asked is never answered
                target.sendall(data)
        except OSError:
            pass
        if self.stalled:
            return  # held open in silence until resume or close
        _close(source)
        _close(target)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class SilentServer:
    """Accepts every connection on loopback and never answers: a hung S3."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        _close(self.listener)
        for conn in self.accepted:
            _close(conn)
