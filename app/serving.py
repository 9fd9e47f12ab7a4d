"""Serving one process: what it takes on, and stopping it without losing a message.

- `InFlight` counts the socket events being handled, so that a SIGTERM (or Ctrl-C) lets
  them finish (their commits and acks) before the process exits; the clients see their
  transport drop and reconnect (with their built-in jitter) to whatever serves next.
- `Admission` is overload: a process answers at once what it cannot serve in time
  (docs/DECISIONS.md, "Overload"). A send is admitted while the sends already being
  handled would be done within `CHAT_SHED_AFTER` seconds at the rate this process has
  been finishing them (and always while fewer than `CHAT_SENDS_ALWAYS_ADMITTED` are in
  flight). Past that it is answered `rate_limited` ("busy") before any of its work is
  done (app/sockets/namespace.py).
- `admitted(room_key)`: a send's turn in its room (app/turns.py) and one of the database
  connections sends may hold (all but `DATABASE_POOL_RESERVED`, which keep `history`,
  `list_rooms` and `/healthz` answering under any flood), both within `CHAT_SEND_WAIT`
  seconds, else `rate_limited`.
- `serve`: `python wsgi.py` under eventlet or gevent.
"""

from __future__ import annotations

import errno
import signal
import socket
import sys
import threading
import time
from collections.abc import Hashable, Iterator
from contextlib import contextmanager

from flask import Flask, current_app
from flask_socketio import SocketIO

from .errors import Busy

DRAIN_SECONDS = 10.0

# The answers to a send that is not taken on.
BUSY = {"ok": False, "error": Busy().to_dict()}
RESTARTING = {
    "ok": False,
    "error": Busy("The server is restarting; try again in a moment.").to_dict(),
}


class InFlight:
    """Counts the socket events being handled, so shutdown can wait for them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0
        self.draining = False

    def __enter__(self):
        with self._lock:
            self.count += 1

    def __exit__(self, *exc):
        with self._lock:
            self.count -= 1

    def wait_idle(self, sleep, timeout: float = DRAIN_SECONDS) -> bool:
        deadline = time.monotonic() + timeout
        while self.count > 0 and time.monotonic() < deadline:
            sleep(0.05)
        return self.count == 0


def in_flight(app: Flask) -> InFlight:
    return app.extensions["chat_in_flight"]


class Admission:
    """Counts the sends in flight (`with admission:` around each admitted one) and the
    rate at which they are served; says when to shed."""

    def __init__(self, shed_after: float, always_admitted: int, clock=time.monotonic):
        self.shed_after = shed_after
        self.always_admitted = always_admitted
        self.clock = clock
        self._lock = threading.Lock()
        self.in_flight = 0
        self.shed = 0  # sends answered busy, since start
        self._rate = 0.0  # sends finished per second, over the last full second
        self._window_start = clock()
        self._finished_in_window = 0

    def overloaded(self) -> bool:
        return self.in_flight >= max(self.always_admitted, self._rate * self.shed_after)

    def __enter__(self) -> None:
        with self._lock:
            self.in_flight += 1

    def __exit__(self, *exc) -> None:
        with self._lock:
            self.in_flight -= 1

    def refused(self) -> None:
        with self._lock:
            self.shed += 1

    def served(self) -> None:
        """One send stored and answered ok: the rate counts only these, not refusals."""
        with self._lock:
            self._finished_in_window += 1
            now = self.clock()
            elapsed = now - self._window_start
            if elapsed >= 1.0:
                self._rate = self._finished_in_window / elapsed
                self._window_start, self._finished_in_window = now, 0


@contextmanager
def admitted(room_key: Hashable | None = None) -> Iterator[None]:
    """The room's turn (app/turns.py: one send per room in the database at a time),
    then one of the database connections sends may hold; both waited for at most
    CHAT_SEND_WAIT seconds in all, else `Busy`."""
    app = current_app
    deadline = time.monotonic() + app.config["CHAT_SEND_WAIT"]
    turns = app.extensions["chat_room_turns"]
    slots = app.extensions["chat_send_slots"]
    if room_key is not None and not turns.acquire(room_key, deadline - time.monotonic()):
        raise Busy()
    try:
        if not slots.acquire(timeout=max(deadline - time.monotonic(), 0.0)):
            raise Busy()
        try:
            yield
        finally:
            slots.release()
    finally:
        if room_key is not None:
            turns.release(room_key)


MALLOC_ARENAS = 2  # glibc's M_ARENA_MAX for the server process, unless MALLOC_ARENA_MAX is set


def limit_malloc_arenas() -> bool:
    """Give the pool threads two of glibc's allocator arenas to share instead of one
    each: a picture's re-encoding takes a few hundred MB at its peak, and every one of
    eventlet's 20 pool threads kept that much of its own (RSS +1.9 GB with ten photo
    uploads; docs/BENCHMARKS.md, "Photos under load"). `mallopt(3)`, before the pool's
    threads start; elsewhere than glibc, nothing. True once set."""
    import ctypes
    import ctypes.util
    import os

    if os.environ.get("MALLOC_ARENA_MAX"):
        return False  # glibc read the operator's own setting at start
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        return bool(libc and libc.mallopt(-8, MALLOC_ARENAS))  # -8: M_ARENA_MAX
    except (OSError, AttributeError):  # not glibc
        return False


def serve(app: Flask, socketio: SocketIO) -> None:
    host, port = app.config["HOST"], app.config["PORT"]
    mode = socketio.server.eio.async_mode
    log = app.config["ENV_NAME"] == "development"
    limit_malloc_arenas()
    from .jobs import start_in_process

    start_in_process(app)  # unless CHAT_JOBS_IN_PROCESS=0 (then `flask worker` runs them)
    try:
        if mode == "eventlet":
            _serve_eventlet(app, socketio, host, port, log)
        elif mode == "gevent":
            _serve_gevent(app, socketio, host, port, log)
        else:  # pragma: no cover - wsgi.py always patches first
            raise RuntimeError(f"python wsgi.py needs eventlet or gevent, not {mode}")
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise SystemExit(f"Cannot listen on {host}:{port}: another process is using it.") from None
    print("Stopped.", flush=True)


class _PageRequestsLog:
    """The development access log, without the Socket.IO transport's requests: a page
    that long-polls would otherwise print a line every few seconds per tab."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stderr

    def write(self, line: str) -> None:
        if "/socket.io/" not in line:
            self.stream.write(line)

    def flush(self) -> None:
        self.stream.flush()


def _announce(app: Flask, host: str, port: int) -> None:
    mode = app.extensions["socketio"].server.eio.async_mode
    print(f"Serving on http://{host}:{port} ({mode}, {app.config['ENV_NAME']})", flush=True)


def _drain(app: Flask, socketio: SocketIO, stop_accepting) -> None:
    """Stop accepting and let the events in flight finish; the caller then exits.

    Sockets are not closed with a Socket.IO or Engine.IO goodbye: clients treat that as
    deliberate and some never reconnect. The process simply ends, every client sees
    its transport drop, and reconnects (with jitter) to whatever serves next.
    """
    tracker = in_flight(app)
    tracker.draining = True
    app.logger.info("shutting down: no new connections, finishing events in flight")
    stop_accepting()
    tracker.wait_idle(socketio.sleep)


def _wait_for_stop_signal(sleep) -> None:
    """Block (cooperatively) until SIGTERM or SIGINT arrives.

    The handler only raises a flag and the main greenlet looks at it a few times a
    second: a handler cannot rely on the hub waking up to run anything it schedules.
    """
    asked = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: asked.append(True))
    while not asked:
        sleep(0.2)


def _no_delay(sock) -> None:
    # An ack follows the sender's own new_message at once: two small writes. With
    # Nagle's algorithm the second waits for the client's delayed TCP ACK (~40 ms).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _NoDelayListener:
    """A listening socket whose accepted connections send small frames at once."""

    def __init__(self, sock) -> None:
        self._sock = sock

    def accept(self):
        conn, address = self._sock.accept()
        _no_delay(conn)
        return conn, address

    def __getattr__(self, name):
        return getattr(self._sock, name)


# Each connection's HTTP read (and, under eventlet, write) buffer lives as long as the
# connection, a WebSocket's whole life, although the WebSocket reads and writes the raw
# socket. A request's headers fit in 2 KB; longer bodies and responses bypass the buffer.
# Down from 8 KB (and eventlet's 16 KB write buffer): docs/BENCHMARKS.md, idle sockets.
HTTP_BUFFER_BYTES = 2048
# Connections served at once (each open socket is one), under eventlet; gevent's server
# has no such bound. The file-descriptor limit (`ulimit -n`) must allow as many.
MAX_CONNECTIONS = 10_000


def _serve_eventlet(app, socketio, host, port, log) -> None:
    import eventlet
    import eventlet.wsgi

    class Protocol(eventlet.wsgi.HttpProtocol):
        rbufsize = HTTP_BUFFER_BYTES
        wbufsize = HTTP_BUFFER_BYTES

    # No SO_REUSEPORT (eventlet's default): a second server on the same port must fail,
    # not silently take half the connections with a registry of its own.
    listener = eventlet.listen((host, port), reuse_port=False)
    _announce(app, host, port)
    # debug=False: no "accepted" line per connection, and no traceback in a 500 page.
    server = eventlet.spawn(
        eventlet.wsgi.server,
        _NoDelayListener(listener),
        app,
        log=_PageRequestsLog(),
        log_output=log,
        debug=False,
        protocol=Protocol,
        # eventlet serves 1,024 connections at once by default; a WebSocket holds its
        # connection for its whole life, so the 1,025th socket would wait unserved.
        max_size=MAX_CONNECTIONS,
    )
    _wait_for_stop_signal(eventlet.sleep)
    _drain(app, socketio, listener.close)
    server.kill()


def _serve_gevent(app, socketio, host, port, log) -> None:
    import gevent
    from gevent import pywsgi

    class Handler(pywsgi.WSGIHandler):
        def __init__(self, sock, address, server, rfile=None):
            if rfile is None:
                rfile = sock.makefile("rb", HTTP_BUFFER_BYTES)
            super().__init__(sock, address, server, rfile)

        def run_application(self):
            """A WebSocket request ends when its WebSocket does, and nothing more may
            be written onto that connection.

            Engine.IO answers a WebSocket that upgraded a polling session with a 200
            when it ends, and a handler that raised (an empty text frame does:
            docs/DECISIONS.md) would get a 500 page; pywsgi would write either as HTTP
            into the WebSocket's byte stream, which browsers report as an invalid
            frame. A refused upgrade (400) is sent as usual."""
            if self.environ.get("HTTP_UPGRADE", "").lower() != "websocket":
                return super().run_application()
            try:
                self.result = self.application(self.environ, self.start_response)
            except Exception:
                app.logger.exception("a WebSocket ended with an error")
                self.close_connection = True
                self.result = None
                return None
            status = self.status.decode() if isinstance(self.status, bytes) else self.status
            if status is None or status.startswith("200"):
                self.close_connection = True
                self.result = None
                return None
            try:
                self.process_result()
            finally:
                self.result = None

    class NoDelayServer(pywsgi.WSGIServer):
        handler_class = Handler

        def handle(self, sock, address):
            _no_delay(sock)
            super().handle(sock, address)

    server = NoDelayServer((host, port), app, log=_PageRequestsLog() if log else None)
    server.start()
    _announce(app, host, port)
    _wait_for_stop_signal(gevent.sleep)
    _drain(app, socketio, server.close)
    server.stop(timeout=1)
