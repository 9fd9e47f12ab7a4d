"""One background task per process closes sockets whose access token has expired."""

from __future__ import annotations

from flask import Flask

from ..extensions import socketio
from ..services.sessions import expire_due_sockets

INTERVAL = 0.5  # seconds: a socket outlives its token by at most this much


def watch(app: Flask) -> None:
    """Start the task the first time a socket connects (not for CLI commands)."""
    if app.extensions.get("chat_expiry_task") is None:
        app.extensions["chat_expiry_task"] = socketio.start_background_task(_loop, app)


def _loop(app: Flask) -> None:
    while True:
        socketio.sleep(INTERVAL)
        try:
            with app.app_context():
                expire_due_sockets()
        except Exception:
            app.logger.exception("closing expired sockets failed")
