"""Configuration classes, read from the environment (see PROTOCOL.md, operator's contract).

Nothing here runs at import time except class definitions: `load_config(name)` reads
the environment when the factory asks for it, so tests can set variables first.
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
from datetime import timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = BASE_DIR / "instance"
MAIL_SCHEMES = ("smtp", "smtp+starttls", "smtps")
ASYNC_MODES = ("eventlet", "gevent")


class ConfigError(RuntimeError):
    """The environment does not describe a configuration the app can run with."""


def _instance_secret(name: str) -> str:
    """A development secret generated once and kept under instance/ (never in production)."""
    INSTANCE_DIR.mkdir(exist_ok=True)
    path = INSTANCE_DIR / name
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def parse_rate_limit(text: str, name: str = "CHAT_RATE_LIMIT") -> tuple[int, int]:
    """Parse `COUNT/SECONDS` (for example `20/10`) into a pair of positive ints."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not match or int(match[1]) < 1 or int(match[2]) < 1:
        raise ConfigError(f"{name} must look like COUNT/SECONDS, got {text!r}")
    return int(match[1]), int(match[2])


# What an upload may be, judged from its bytes (app/attachments/files.py): pictures, PDF,
# plain text and CSV, ZIP, and the Office and OpenDocument formats.
DEFAULT_ATTACHMENT_TYPES = ",".join(
    [
        "image/jpeg",
        "image/png",
        "image/gif",
        "image/webp",
        "application/pdf",
        "text/plain",
        "text/csv",
        "application/zip",
        "application/msword",
        "application/vnd.ms-excel",
        "application/vnd.ms-powerpoint",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.oasis.opendocument.text",
        "application/vnd.oasis.opendocument.spreadsheet",
        "application/vnd.oasis.opendocument.presentation",
    ]
)


def as_limiter_string(pair: tuple[int, int]) -> str:
    """`(5, 60)` as Flask-Limiter writes it: `5 per 60 second`."""
    return f"{pair[0]} per {pair[1]} second"


def _positive_seconds(env, name: str, default: float) -> float:
    text = env.get(name, str(default))
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise ConfigError(f"{name} must be a number of seconds above 0, got {text!r}")
    return value


def _positive_int(env, name: str, default: int) -> int:
    text = env.get(name, str(default))
    if not text.strip().isdigit() or int(text) < 1:
        raise ConfigError(f"{name} must be a whole number of at least 1, got {text!r}")
    return int(text)


def _non_negative_int(env, name: str, default: int) -> int:
    text = env.get(name, str(default))
    if not text.strip().isdigit():
        raise ConfigError(f"{name} must be a whole number (0 or more), got {text!r}")
    return int(text)


MIN_SECRET_BYTES = 32


class Config:
    """Settings shared by every environment."""

    ENV_NAME = "base"
    TESTING = False
    DEBUG = False
    SQLALCHEMY_TRACK_MODIFICATIONS = False
    # No pre-ping on every checkout: app/database.py pings only idle connections.
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_recycle": 1800}
    JWT_TOKEN_LOCATION = ["headers", "cookies"]
    JWT_COOKIE_SECURE = False
    JWT_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SAMESITE = "Lax"
    JWT_COOKIE_CSRF_PROTECT = True
    JWT_ACCESS_COOKIE_PATH = "/"
    JWT_REFRESH_COOKIE_PATH = "/"
    JWT_REFRESH_TOKEN_EXPIRES = timedelta(days=14)
    JWT_ALGORITHM = "HS256"
    JWT_DECODE_ALGORITHMS = ["HS256"]
    WTF_CSRF_TIME_LIMIT = None
    MAX_CONTENT_LENGTH = 64 * 1024
    SOCKETIO_MAX_HTTP_BUFFER_SIZE = 64 * 1024
    DEMO_ACCOUNTS = False
    HSTS = None  # Strict-Transport-Security, sent only where the site is HTTPS
    RATELIMIT_HEADERS_ENABLED = True  # Retry-After on every 429
    RATELIMIT_STRATEGY = "moving-window"

    def __init__(self) -> None:
        env = os.environ
        self.DATABASE_URL = env.get("DATABASE_URL") or self.default_database_url()
        self.SQLALCHEMY_DATABASE_URI = _normalise_db_url(self.DATABASE_URL)
        if self.SQLALCHEMY_DATABASE_URI.startswith("postgresql"):
            # A fixed pool, no overflow: overflow connections are opened and closed
            # under load (a PostgreSQL backend forked per burst); waiting for one of a
            # fixed set is cheaper. The size is measured in docs/BENCHMARKS.md.
            self.SQLALCHEMY_ENGINE_OPTIONS = {
                **self.SQLALCHEMY_ENGINE_OPTIONS,
                "pool_size": _positive_int(env, "DATABASE_POOL_SIZE", 20),
                "max_overflow": 0,
                # Waiting longer for a connection means the process is past its
                # capacity: answer the event (busy / 503) instead of queueing for 30 s.
                "pool_timeout": _positive_seconds(env, "DATABASE_POOL_TIMEOUT", 2.0),
                # The last connection handed back is the next one out: the busy ones
                # stay warm (and prepared), the rest age and are pinged (app/database.py).
                "pool_use_lifo": True,
            }
        self.REDIS_URL = env.get("REDIS_URL") or None
        # Each process's Redis connections (app/registry.py; services/events.py for
        # Socket.IO's): a fixed number, waited for at most REDIS_POOL_TIMEOUT seconds, for
        # the shared state and for Socket.IO's publishing alike. redis-py's own pool fails
        # at once past 100 connections.
        self.REDIS_POOL_SIZE = _positive_int(env, "REDIS_POOL_SIZE", 32)
        self.REDIS_POOL_TIMEOUT = _positive_seconds(env, "REDIS_POOL_TIMEOUT", 2.0)
        self.JWT_ACCESS_TOKEN_EXPIRES = timedelta(
            seconds=int(env.get("JWT_ACCESS_TOKEN_EXPIRES", "900"))
        )
        self.CHAT_RATE_LIMIT = parse_rate_limit(env.get("CHAT_RATE_LIMIT", "20/10"))
        # Every other socket event has a budget of its own, per user and event.
        self.CHAT_EVENT_RATE_LIMIT = parse_rate_limit(
            env.get("CHAT_EVENT_RATE_LIMIT", "60/10"), "CHAT_EVENT_RATE_LIMIT"
        )
        self.CHAT_MAX_SOCKETS_PER_USER = _positive_int(env, "CHAT_MAX_SOCKETS_PER_USER", 20)
        # Engine.IO's heartbeat: the server pings every SOCKETIO_PING_INTERVAL seconds
        # and closes a socket whose pong is SOCKETIO_PING_TIMEOUT seconds late.
        self.SOCKETIO_PING_INTERVAL = _positive_seconds(env, "SOCKETIO_PING_INTERVAL", 25.0)
        self.SOCKETIO_PING_TIMEOUT = _positive_seconds(env, "SOCKETIO_PING_TIMEOUT", 20.0)
        # Overload (app/serving.py, Admission): sends are answered busy once those in
        # flight would take longer than this to finish; a send waits at most
        # CHAT_SEND_WAIT for a database connection, and sends leave
        # DATABASE_POOL_RESERVED connections to reads.
        self.CHAT_SHED_AFTER = _positive_seconds(env, "CHAT_SHED_AFTER", 0.25)
        self.CHAT_SENDS_ALWAYS_ADMITTED = _positive_int(env, "CHAT_SENDS_ALWAYS_ADMITTED", 256)
        # 1.5 s: a busy answer then reaches the client within 3 s even while the
        # process is saturated by refusals (the overload test saw 3.1 s at 2 s).
        self.CHAT_SEND_WAIT = _positive_seconds(env, "CHAT_SEND_WAIT", 1.5)
        self.DATABASE_POOL_RESERVED = _positive_int(env, "DATABASE_POOL_RESERVED", 4)
        # Seconds between `stats` lines on the output (RSS, descriptors, pool, sockets);
        # 0, the default, prints none (bench/soak.py turns them on).
        self.CHAT_STATS_EVERY = float(env.get("CHAT_STATS_EVERY", "0") or 0)
        # Logins and sign-ups, as COUNT/SECONDS (Flask-Limiter keeps the counts).
        self.LOGIN_RATE_LIMIT_ACCOUNT = as_limiter_string(
            parse_rate_limit(
                env.get("LOGIN_RATE_LIMIT_ACCOUNT", "5/60"), "LOGIN_RATE_LIMIT_ACCOUNT"
            )
        )
        self.LOGIN_RATE_LIMIT_ADDRESS = as_limiter_string(
            parse_rate_limit(
                env.get("LOGIN_RATE_LIMIT_ADDRESS", "20/60"), "LOGIN_RATE_LIMIT_ADDRESS"
            )
        )
        self.WIDGET_SESSION_RATE_LIMIT_ADDRESS = as_limiter_string(
            parse_rate_limit(
                env.get("WIDGET_SESSION_RATE_LIMIT_ADDRESS", "30/60"),
                "WIDGET_SESSION_RATE_LIMIT_ADDRESS",
            )
        )
        self.REGISTER_RATE_LIMIT_ADDRESS = as_limiter_string(
            parse_rate_limit(
                env.get("REGISTER_RATE_LIMIT_ADDRESS", "10/3600"), "REGISTER_RATE_LIMIT_ADDRESS"
            )
        )
        # A refused login or sign-up is answered this many seconds late (cooperatively):
        # a guessing loop then costs the server next to nothing instead of a flood of 429s.
        self.LOGIN_THROTTLE_DELAY = float(env.get("LOGIN_THROTTLE_DELAY", "1.0"))
        # Addresses the per-address limits leave alone: the machine itself by default
        # (health checks, load tests, and a local proxy not yet named in TRUSTED_PROXIES,
        # which would otherwise put every client in one bucket). Per-account limits apply.
        self.RATELIMIT_EXEMPT_ADDRESSES = frozenset(
            a.strip()
            for a in env.get("RATELIMIT_EXEMPT_ADDRESSES", "127.0.0.1,::1").split(",")
            if a.strip()
        )
        # How many proxies in front of the app set X-Forwarded-For (0: none, trust nobody).
        self.TRUSTED_PROXIES = int(env.get("TRUSTED_PROXIES", "0"))
        self.RATELIMIT_STORAGE_URI = env.get("REDIS_URL") or "memory://"
        # Attachments (issue 21): where the files live, how large and of which types
        # (judged from their bytes), and each user's upload budget an hour.
        self.ATTACHMENT_STORE = env.get("ATTACHMENT_STORE", "").strip()  # "" or s3://bucket
        if self.ATTACHMENT_STORE and not self.ATTACHMENT_STORE.startswith("s3://"):
            raise ConfigError("ATTACHMENT_STORE must be empty (a folder) or s3://bucket[/prefix]")
        self.ATTACHMENT_DIR = env.get("ATTACHMENT_DIR") or str(INSTANCE_DIR / "attachments")
        # Beside a folder store (the same file system: a received file is renamed into
        # the store, not copied); for S3, the system's temporary folder.
        self.UPLOAD_SCRATCH_DIR = env.get("UPLOAD_SCRATCH_DIR") or (
            os.path.join(tempfile.gettempdir(), "chat-uploads")
            if self.ATTACHMENT_STORE
            else self.ATTACHMENT_DIR.rstrip("/") + "-incoming"
        )
        self.ATTACHMENT_S3_ENDPOINT = env.get("ATTACHMENT_S3_ENDPOINT") or None
        self.ATTACHMENT_S3_REGION = env.get("ATTACHMENT_S3_REGION", "us-east-1")
        self.CHAT_ATTACHMENT_MAX_BYTES = _positive_int(
            env, "CHAT_ATTACHMENT_MAX_BYTES", 20 * 1024 * 1024
        )
        self.CHAT_ATTACHMENT_TYPES = frozenset(
            t.strip().lower()
            for t in env.get("CHAT_ATTACHMENT_TYPES", DEFAULT_ATTACHMENT_TYPES).split(",")
            if t.strip()
        )
        self.CHAT_UPLOAD_RATE_LIMIT = as_limiter_string(
            parse_rate_limit(env.get("CHAT_UPLOAD_RATE_LIMIT", "60/3600"), "CHAT_UPLOAD_RATE_LIMIT")
        )
        self.CHAT_UPLOAD_BYTES_PER_HOUR = _positive_int(
            env, "CHAT_UPLOAD_BYTES_PER_HOUR", 200 * 1024 * 1024
        )
        # Email (issue 22). No MAIL_URL: every email is written to MAIL_OUTBOX_DIR as an
        # .eml file (listed at /dev/outbox). MAIL_URL: smtp://, smtp+starttls:// or
        # smtps://user:password@host:port.
        self.MAIL_URL = env.get("MAIL_URL", "").strip() or None
        if self.MAIL_URL and self.MAIL_URL.split("://")[0] not in MAIL_SCHEMES:
            raise ConfigError(f"MAIL_URL must start with one of {MAIL_SCHEMES}")
        self.MAIL_OUTBOX_DIR = env.get("MAIL_OUTBOX_DIR") or str(INSTANCE_DIR / "outbox")
        self.MAIL_FROM = env.get("MAIL_FROM", "Support <support@localhost>")
        self.MAIL_INBOUND_DOMAIN = env.get("MAIL_INBOUND_DOMAIN", "").strip() or None
        # Customers' replies by email (`flask --app wsgi mail-inbound`): the largest
        # email taken (files come base64-encoded, a third larger), and emails per room.
        self.CHAT_INBOUND_MAX_BYTES = _positive_int(env, "CHAT_INBOUND_MAX_BYTES", 30 * 1024 * 1024)
        self.CHAT_INBOUND_RATE_LIMIT = as_limiter_string(
            parse_rate_limit(
                env.get("CHAT_INBOUND_RATE_LIMIT", "30/3600"), "CHAT_INBOUND_RATE_LIMIT"
            )
        )
        # The address customers reach the app at: the links in emails.
        here = f"http://{env.get('HOST', '127.0.0.1')}:{env.get('PORT', '5000')}"
        self.PUBLIC_URL = (env.get("PUBLIC_URL") or here).rstrip("/")
        # An agent's reply the customer has not seen is emailed after this many seconds
        # with no socket of theirs open.
        self.CHAT_EMAIL_DELAY = _positive_int(env, "CHAT_EMAIL_DELAY", 120)
        # Assignment (issue 23): how many open conversations automatic assignment gives
        # one member at most (each member's own capacity overrides it), and after how
        # many seconds away or offline a member's open conversations go back to the
        # queue (0: never, the default).
        self.CHAT_AGENT_CAPACITY = _positive_int(env, "CHAT_AGENT_CAPACITY", 10)
        self.CHAT_RELEASE_AFTER = _non_negative_int(env, "CHAT_RELEASE_AFTER", 0)
        # Jobs (emails, delayed checks): Huey, in Redis with REDIS_URL, else in a SQLite
        # file. `python wsgi.py` runs them itself unless CHAT_JOBS_IN_PROCESS=0 (then
        # `flask --app wsgi worker` does).
        self.CHAT_JOBS_IN_PROCESS = env.get("CHAT_JOBS_IN_PROCESS", "1") not in ("0", "false", "")
        self.CHAT_JOBS_NAME = env.get("CHAT_JOBS_NAME", "chat")
        self.JOBS_SQLITE_PATH = env.get("JOBS_SQLITE_PATH") or self.default_jobs_path()
        self.ASYNC_MODE = env.get("ASYNC_MODE", "eventlet")
        if self.ASYNC_MODE not in ASYNC_MODES:
            raise ConfigError(f"ASYNC_MODE must be one of {ASYNC_MODES}, got {self.ASYNC_MODE!r}")
        self.HOST = env.get("HOST", "127.0.0.1")
        self.PORT = int(env.get("PORT", "5000"))
        self.SECRET_KEY = env.get("SECRET_KEY") or self.default_secret("secret_key")
        self.JWT_SECRET_KEY = env.get("JWT_SECRET_KEY") or self.default_secret("jwt_secret_key")
        self.check_secrets()

    def check_secrets(self) -> None:
        """Development and tests accept any secret; production demands strong ones."""

    def default_database_url(self) -> str:
        INSTANCE_DIR.mkdir(exist_ok=True)
        return f"sqlite:///{INSTANCE_DIR / 'chat.db'}"

    def default_secret(self, name: str) -> str:
        return _instance_secret(name)

    def default_jobs_path(self) -> str:
        return str(INSTANCE_DIR / "jobs.sqlite3")


def _normalise_db_url(url: str) -> str:
    # Heroku-style URLs say postgres://, which SQLAlchemy 2 no longer accepts.
    if url.startswith("postgres://"):
        return "postgresql://" + url[len("postgres://") :]
    return url


class DevelopmentConfig(Config):
    ENV_NAME = "development"
    DEBUG = False  # the reloader does not mix with eventlet; use FLASK_DEBUG for flask run
    DEMO_ACCOUNTS = True


class TestingConfig(Config):
    ENV_NAME = "testing"
    TESTING = True

    def default_database_url(self) -> str:
        return os.environ.get("TEST_DATABASE_URL") or "sqlite://"

    def default_secret(self, name: str) -> str:
        return f"testing-{name}-not-secret-0123456789abcdef"

    def default_jobs_path(self) -> str:
        # Each app of the tests has a queue of its own.
        return os.path.join(tempfile.mkdtemp(prefix="chat-jobs-"), "jobs.sqlite3")


class ProductionConfig(Config):
    ENV_NAME = "production"
    JWT_COOKIE_SECURE = True
    SESSION_COOKIE_SECURE = True  # Flask's session holds the forms' CSRF secret
    HSTS = "max-age=31536000; includeSubDomains"  # production is served over HTTPS

    def default_secret(self, name: str) -> str:
        raise ConfigError(f"{name.upper()} must be set in production")

    def check_secrets(self) -> None:
        for name in ("SECRET_KEY", "JWT_SECRET_KEY"):
            if len(getattr(self, name).encode()) < MIN_SECRET_BYTES:
                raise ConfigError(
                    f"{name} must be at least {MIN_SECRET_BYTES} bytes in production "
                    '(python -c "import secrets; print(secrets.token_hex(32))" makes one)'
                )


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def load_config(name: str | None = None) -> Config:
    """Build the configuration named by `name`, else by APP_CONFIG (default development)."""
    name = name or os.environ.get("APP_CONFIG", "development")
    try:
        return CONFIGS[name]()
    except KeyError:
        raise ConfigError(f"APP_CONFIG must be one of {sorted(CONFIGS)}, got {name!r}") from None
