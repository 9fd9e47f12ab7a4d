"""Serving the app as one process: `python wsgi.py` ends up here."""

from __future__ import annotations

from flask import Flask
from flask_socketio import SocketIO


def serve(app: Flask, socketio: SocketIO) -> None:
    host, port = app.config["HOST"], app.config["PORT"]
    mode = socketio.server.eio.async_mode
    app.logger.info(
        "support chat serving on http://%s:%s (%s, %s)", host, port, mode, app.config["ENV_NAME"]
    )
    print(f"Serving on http://{host}:{port} ({mode}, {app.config['ENV_NAME']})", flush=True)
    socketio.run(
        app,
        host=host,
        port=port,
        log_output=app.config["ENV_NAME"] == "development",
        allow_unsafe_werkzeug=False,
    )
