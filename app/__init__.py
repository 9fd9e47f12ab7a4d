"""The application factory: a table of contents for the app."""

from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask

from config import load_config

from .concurrency import async_mode, run_later

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
    from .services.limits import MemoryWindows, TypingGate
    from .serving import Admission, InFlight
    from .turns import Slots, Turns

    db.init_app(app)
    with app.app_context():
        from .database import ping_when_idle

        ping_when_idle(db.engine)
        app.extensions["chat_engine"] = db.engine
        app.extensions["chat_on_postgres"] = db.engine.dialect.name == "postgresql"
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    jwt.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    from .i18n import init_i18n

    init_i18n(app)
    if app.config["TRUSTED_PROXIES"]:  # the client's address comes from X-Forwarded-For
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    if app.config["REDIS_URL"]:  # several processes act as one: share the state
        from .registry import RedisRegistry, bounded_client

        client = bounded_client(
            app.config["REDIS_URL"],
            app.config["REDIS_POOL_SIZE"],
            app.config["REDIS_POOL_TIMEOUT"],
            decode_responses=True,
        )
        app.extensions["chat_registry"] = RedisRegistry(client)
    else:
        app.extensions["chat_registry"] = MemoryRegistry()
        app.extensions["chat_windows"] = MemoryWindows()  # the socket events' limits
    app.extensions["chat_typing_gate"] = TypingGate(schedule=run_later)
    # One send per room at a time goes to the database (app/turns.py).
    app.extensions["chat_room_turns"] = Turns()
    # Sends may hold all but the reserved connections (app/serving.py, admitted).
    pool_size = app.config["SQLALCHEMY_ENGINE_OPTIONS"].get("pool_size", 5)
    app.extensions["chat_send_slots"] = Slots(
        max(1, pool_size - app.config["DATABASE_POOL_RESERVED"])
    )
    from .jobs import init_jobs

    init_jobs(app)  # emails and delayed checks (Huey: Redis or a SQLite file)
    app.extensions["chat_in_flight"] = InFlight()
    app.extensions["chat_admission"] = Admission(
        app.config["CHAT_SHED_AFTER"], app.config["CHAT_SENDS_ALWAYS_ADMITTED"]
    )
    from .attachments.storage import make_store

    app.extensions["chat_attachment_store"] = make_store(app.config)
    app.extensions["chat_file_slots"] = Slots(1)  # uploads' file work, one at a time
    app.extensions["chat_receive_turn"] = Slots(1)  # uploads' chunks, one per loop turn


def register_blueprints(app: Flask) -> None:
    from . import api, attachments, auth, web, widget

    app.register_blueprint(auth.bp)
    app.register_blueprint(attachments.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(web.bp)
    app.register_blueprint(widget.bp)
    from .mail import pages as email_pages

    app.register_blueprint(email_pages.bp)
    from .widget import demo

    app.register_blueprint(demo.bp)


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
    from .sockets import register_namespaces
    from .wire import OrjsonForSocketIO, without_websocket_compression

    queue, size = {}, None
    if app.config["REDIS_URL"]:  # several processes: emits go through Redis
        size = app.config["REDIS_POOL_SIZE"]
        # redis-py fails a command at once when its pool is used up: the emits take
        # turns for the pool's connections instead (services/events.py); +1 is the
        # listener's subscription.
        queue["client_manager"] = socketio_redis_manager(app.config["REDIS_URL"], size + 1)
    events.publish_in_turns(size)
    socketio.init_app(
        app,
        json=OrjsonForSocketIO,
        async_mode=async_mode(),
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
    register_namespaces(app)
    app.wsgi_app = without_websocket_compression(app.wsgi_app)


def socketio_redis_manager(url: str, connections: int):
    import socketio as python_socketio

    return python_socketio.RedisManager(
        url, channel="flask-socketio", redis_options={"max_connections": connections}
    )


def register_cli(app: Flask) -> None:
    from .cli import register_commands

    register_commands(app)
