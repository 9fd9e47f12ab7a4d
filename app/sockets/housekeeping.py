"""One background task per process: close sockets whose token expired, and (with
Redis) keep this process's heartbeat alive and reap the sockets of dead processes."""

from __future__ import annotations

import time

from flask import Flask

from ..extensions import socketio
from ..registry import current_registry
from ..services.presence import announce_arrival, announce_departure
from ..services.sessions import expire_due_sockets

INTERVAL = 0.5  # seconds: a socket outlives its token by at most this much
HEARTBEAT_EVERY = 5.0


def start(app: Flask) -> None:
    """Start the task the first time a socket connects (not for CLI commands)."""
    if app.extensions.get("chat_housekeeping") is None:
        app.extensions["chat_housekeeping"] = socketio.start_background_task(_loop, app)


def _loop(app: Flask) -> None:
    last_heartbeat = 0.0
    while True:
        socketio.sleep(INTERVAL)
        try:
            with app.app_context():
                expire_due_sockets()
                if time.monotonic() - last_heartbeat >= HEARTBEAT_EVERY:
                    last_heartbeat = time.monotonic()
                    beat_and_reap()
        except Exception:
            app.logger.exception("socket housekeeping failed")


def beat_and_reap() -> None:
    registry = current_registry()
    if not hasattr(registry, "reap_dead_servers"):
        return  # one process, in memory: nobody else to watch
    for conn, change in registry.heartbeat():  # back after a stall: online again
        announce_arrival(conn, change)
    for conn, change in registry.reap_dead_servers():
        announce_departure(conn, change)
