"""The application factory: a table of contents for the app."""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path

from flask import Flask

from config import load_config

ROOT = Path(__file__).resolve().parent.parent


def create_app(config_name: str | None = None) -> Flask:
    app = Flask(
        __name__, template_folder=str(ROOT / "templates"), instance_path=str(ROOT / "instance")
    )
    app.config.from_object(load_config(config_name))
    register_extensions(app)
    register_blueprints(app)
    register_errors(app)
    register_sockets(app)
    register_cli(app)
    return app


def register_extensions(app: Flask) -> None:
    from .extensions import csrf, db, jwt, limiter, migrate
    from .registry import MemoryRegistry
    from .services.limits import MemoryLimiter, TypingGate
    from .services.turns import Turns

    db.init_app(app)
    with app.app_context():
        from .pooling import ping_when_idle

        ping_when_idle(db.engine)
        app.extensions["chat_engine"] = db.engine
        app.extensions["chat_on_postgres"] = db.engine.dialect.name == "postgresql"
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    jwt.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    if app.config["TRUSTED_PROXIES"]:  # the client's address comes from X-Forwarded-For
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    if app.config["REDIS_URL"]:  # several processes act as one: share the state
        from .redis_pool import bounded_client
        from .redis_state import RedisLimiter, RedisRegistry

        client = bounded_client(
            app.config["REDIS_URL"],
            app.config["REDIS_POOL_SIZE"],
            app.config["REDIS_POOL_TIMEOUT"],
            decode_responses=True,
        )
        app.extensions["chat_registry"] = RedisRegistry(client)
        app.extensions["chat_limiter"] = RedisLimiter(client, *app.config["CHAT_RATE_LIMIT"])
    else:
        app.extensions["chat_registry"] = MemoryRegistry()
        app.extensions["chat_limiter"] = MemoryLimiter(*app.config["CHAT_RATE_LIMIT"])
    app.extensions["chat_typing_gate"] = TypingGate(schedule=run_later)
    # Customers this process has seen with a room (services/messages.py): a send for
    # them skips the room-creating statement.
    app.extensions["chat_customers_with_room"] = set()
    # One send per room at a time goes to the database (services/turns.py).
    app.extensions["chat_room_turns"] = Turns()
    # Sends may hold all but the reserved connections (app/sockets/admission.py).
    pool_size = app.config["SQLALCHEMY_ENGINE_OPTIONS"].get("pool_size", 5)
    app.extensions["chat_send_slots"] = threading.BoundedSemaphore(
        max(1, pool_size - app.config["DATABASE_POOL_RESERVED"])
    )


def run_later(delay: float, function) -> None:
    """Call `function` after `delay` seconds on a background task of the server."""
    from .extensions import socketio

    def later():
        socketio.sleep(delay)
        function()

    socketio.start_background_task(later)


def register_blueprints(app: Flask) -> None:
    from . import api, auth, web

    app.register_blueprint(auth.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(web.bp)


def register_errors(app: Flask) -> None:
    from .auth.tokens import register_jwt_callbacks
    from .errors import register_error_handlers

    register_error_handlers(app)
    register_jwt_callbacks(app)
    if not app.debug and not app.testing:
        app.logger.setLevel(logging.INFO)


def register_sockets(app: Flask) -> None:
    from .extensions import socketio
    from .services import events
    from .sockets import register_namespaces, transport
    from .wire import OrjsonForSocketIO, without_websocket_compression

    async_mode = running_async_mode()
    transport.install(async_mode)  # no parked writer or pinger per socket
    queue = {}
    if app.config["REDIS_URL"]:
        from .redis_pool import BoundedRedisManager

        queue["client_manager"] = BoundedRedisManager(
            app.config["REDIS_URL"],
            app.config["REDIS_POOL_SIZE"],
            app.config["REDIS_POOL_TIMEOUT"],
            channel="flask-socketio",
        )
    socketio.init_app(
        app,
        json=OrjsonForSocketIO,
        async_mode=async_mode,
        **queue,
        max_http_buffer_size=app.config["SOCKETIO_MAX_HTTP_BUFFER_SIZE"],
        ping_interval=app.config["SOCKETIO_PING_INTERVAL"],
        ping_timeout=app.config["SOCKETIO_PING_TIMEOUT"],
        # Any page may open a socket with a token it holds; the access *cookie* is
        # honoured only from our own origin (app/sockets/handshake.py).
        cors_allowed_origins="*",
        cors_credentials=False,  # no page elsewhere may ride on this site's cookies
        namespaces=[events.NAMESPACE],  # `/` and any other namespace are refused
        manage_session=False,
    )
    transport.install_websocket(socketio.server.eio)  # RFC 6455 framing of our own
    register_namespaces(app)
    app.wsgi_app = without_websocket_compression(app.wsgi_app)


def running_async_mode() -> str:
    """The concurrency model this process was set up for by wsgi.py's patching.

    `python wsgi.py` patches for eventlet or gevent first; `flask run`, the CLI and
    the tests patch nothing and get plain threads.
    """
    eventlet = sys.modules.get("eventlet.patcher")
    if eventlet is not None and eventlet.is_monkey_patched("socket"):
        return "eventlet"
    gevent = sys.modules.get("gevent.monkey")
    if gevent is not None and gevent.is_module_patched("socket"):
        return "gevent"
    return "threading"


def register_cli(app: Flask) -> None:
    from .cli import register_commands

    register_commands(app)
