"""Serving one process with `python wsgi.py`, and stopping it without losing a message.

On SIGTERM (or Ctrl-C) the server stops accepting connections, lets the events in
flight finish (their commits and acks), and exits; the clients see their transport
drop and reconnect (with their built-in jitter) to whatever serves next.
"""

from __future__ import annotations

import errno
import signal
import socket
import sys
import threading
import time

from flask import Flask
from flask_socketio import SocketIO

DRAIN_SECONDS = 10.0


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
    tracker = app.extensions.get("chat_in_flight")
    if tracker is None:  # made once, not on every event
        tracker = app.extensions["chat_in_flight"] = InFlight()
    return tracker


def serve(app: Flask, socketio: SocketIO) -> None:
    host, port = app.config["HOST"], app.config["PORT"]
    mode = socketio.server.eio.async_mode
    log = app.config["ENV_NAME"] == "development"
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
            upgrade = self.environ.get("HTTP_UPGRADE", "").lower() == "websocket"
            if not upgrade:
                return super().run_application()
            self.result = self.application(self.environ, self.start_response)
            status = self.status.decode() if isinstance(self.status, bytes) else self.status
            if status is None or status.startswith("200"):
                # The WebSocket answered the upgrade (101) on the raw socket itself
                # (app/sockets/websocket.py) and has now ended; nothing more may be
                # written onto it (browsers report an "Invalid frame header"). A
                # refused upgrade is a 400 or 426, and is sent as usual.
                self.close_connection = True
                self.result = None
                return None
            try:
                self.process_result()  # the upgrade was refused with a normal response
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
