"""Commands and configuration, as PROTOCOL.md's operator's contract says."""

from __future__ import annotations

from datetime import timedelta

import pytest

import config
from config import ConfigError, load_config
from tests.conftest import ON_POSTGRES, needs_postgres


def run(app, *args, input=None):
    return app.test_cli_runner().invoke(args=list(args), input=input)


def test_create_admin_makes_an_admin_who_can_log_in(app, http):
    result = run(
        app,
        "create-admin",
        "--email",
        "Boss@Example.com",
        "--name",
        "Boss",
        "--password",
        "a long password",
    )
    assert result.exit_code == 0, result.output
    login = http.post(
        "/api/auth/login", json={"email": "boss@example.com", "password": "a long password"}
    )
    assert login.status_code == 200 and login.get_json()["user"]["role"] == "admin"


def test_create_admin_asks_for_the_password_when_left_out(app, http):
    result = run(
        app,
        "create-admin",
        "--email",
        "p@example.com",
        "--name",
        "P",
        input="prompted password\nprompted password\n",
    )
    assert result.exit_code == 0, result.output
    assert (
        http.post(
            "/api/auth/login", json={"email": "p@example.com", "password": "prompted password"}
        ).status_code
        == 200
    )


@pytest.mark.parametrize(
    "email, password, message",
    [
        ("taken@example.com", "long enough", "already registered"),
        ("TAKEN@example.com", "long enough", "already registered"),
        ("new@example.com", "short", "at least 8 characters"),
        ("not-an-email", "long enough", "not an email"),
    ],
)
def test_create_admin_fails_clearly(app, users, email, password, message):
    run(
        app,
        "create-admin",
        "--email",
        "taken@example.com",
        "--name",
        "T",
        "--password",
        "long enough",
    )
    result = run(app, "create-admin", "--email", email, "--name", "N", "--password", password)
    assert result.exit_code != 0
    assert message in result.output


def test_demo_accounts_exist_only_in_development(app):
    result = run(app, "demo-accounts")
    assert result.exit_code != 0
    assert "only with APP_CONFIG=development" in result.output


@pytest.fixture
def env(monkeypatch, tmp_path):
    for name in (
        "APP_CONFIG",
        "DATABASE_URL",
        "SECRET_KEY",
        "JWT_SECRET_KEY",
        "REDIS_URL",
        "JWT_ACCESS_TOKEN_EXPIRES",
        "CHAT_RATE_LIMIT",
        "ASYNC_MODE",
        "HOST",
        "PORT",
        "ATTACHMENT_STORE",
        "ATTACHMENT_DIR",
        "UPLOAD_SCRATCH_DIR",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(config, "INSTANCE_DIR", tmp_path)
    return monkeypatch


@pytest.mark.parametrize("missing", ["SECRET_KEY", "JWT_SECRET_KEY"])
def test_production_refuses_to_start_without_its_keys(env, missing):
    env.setenv("SECRET_KEY", "s" * 32)
    env.setenv("JWT_SECRET_KEY", "j" * 32)
    env.delenv(missing)
    with pytest.raises(ConfigError, match=missing):
        load_config("production")


def test_production_with_its_keys_uses_them(env):
    env.setenv("SECRET_KEY", "s" * 32)
    env.setenv("JWT_SECRET_KEY", "j" * 32)
    env.setenv("DATABASE_URL", "postgres://u@db/chat")
    cfg = load_config("production")
    assert (cfg.SECRET_KEY, cfg.JWT_SECRET_KEY) == ("s" * 32, "j" * 32)
    assert cfg.SQLALCHEMY_DATABASE_URI == "postgresql://u@db/chat"
    assert cfg.JWT_COOKIE_SECURE is True


def test_development_defaults(env, tmp_path):
    cfg = load_config()
    assert cfg.ENV_NAME == "development"
    assert cfg.SQLALCHEMY_DATABASE_URI == f"sqlite:///{tmp_path / 'chat.db'}"
    assert cfg.JWT_ACCESS_TOKEN_EXPIRES == timedelta(seconds=900)
    assert cfg.CHAT_RATE_LIMIT == (20, 10)
    assert (cfg.ASYNC_MODE, cfg.HOST, cfg.PORT, cfg.REDIS_URL) == (
        "eventlet",
        "127.0.0.1",
        5000,
        None,
    )
    again = load_config()  # generated secrets are kept under instance/, not regenerated
    assert len(cfg.SECRET_KEY) == 64 and cfg.SECRET_KEY == again.SECRET_KEY
    assert cfg.SECRET_KEY != cfg.JWT_SECRET_KEY


def test_settings_are_read_from_the_environment(env):
    env.setenv("JWT_ACCESS_TOKEN_EXPIRES", "60")
    env.setenv("CHAT_RATE_LIMIT", "5/30")
    env.setenv("ASYNC_MODE", "gevent")
    env.setenv("PORT", "8080")
    env.setenv("REDIS_URL", "redis://r:6379/0")
    cfg = load_config("development")
    assert cfg.JWT_ACCESS_TOKEN_EXPIRES == timedelta(seconds=60)
    assert cfg.CHAT_RATE_LIMIT == (5, 30)
    assert (cfg.ASYNC_MODE, cfg.PORT, cfg.REDIS_URL) == ("gevent", 8080, "redis://r:6379/0")


@pytest.mark.parametrize(
    "name, value",
    [
        ("CHAT_RATE_LIMIT", "0/10"),
        ("CHAT_RATE_LIMIT", "abc"),
        ("CHAT_RATE_LIMIT", "10"),
        ("ASYNC_MODE", "threading"),
        ("APP_CONFIG", "staging"),
    ],
)
def test_bad_settings_fail_fast(env, name, value):
    env.setenv(name, value)
    with pytest.raises(ConfigError):
        load_config()


@needs_postgres
def test_seed_scale_fills_an_empty_database_with_consistent_rooms(app):
    from sqlalchemy import text

    from app.extensions import db

    result = run(app, "seed-scale", "--rooms", "4", "--messages", "30", "--big-room", "12")
    assert result.exit_code == 0, result.output
    with app.app_context():
        counts = db.session.execute(
            text("SELECT (SELECT count(*) FROM chat_rooms), (SELECT count(*) FROM messages)")
        ).one()
        assert tuple(counts) == (4, 30)
        assert (
            db.session.execute(text("SELECT count(*) FROM messages WHERE room_id = 1")).scalar()
            == 12
        )
        wrong = db.session.execute(
            text(
                "SELECT count(*) FROM chat_rooms r WHERE last_message_id IS DISTINCT FROM "
                "(SELECT max(id) FROM messages WHERE room_id = r.id) OR admin_unread <> "
                "(SELECT count(*) FROM messages WHERE room_id = r.id)"
            )
        ).scalar()
        assert wrong == 0, "every room's counters match its messages"
    again = run(app, "seed-scale", "--rooms", "4")
    assert again.exit_code != 0 and "already holds rooms" in again.output


@pytest.mark.skipif(ON_POSTGRES, reason="checks the refusal on SQLite")
def test_seed_scale_refuses_sqlite(app):
    result = run(app, "seed-scale", "--rooms", "2")
    assert result.exit_code != 0 and "needs PostgreSQL" in result.output


def test_an_upload_waits_beside_a_folder_store_and_in_the_temporary_folder_for_s3(env, tmp_path):
    """Beside the folder store, a received file is renamed into it, not copied."""
    import tempfile

    cfg = load_config()
    assert cfg.ATTACHMENT_DIR == str(tmp_path / "attachments")
    assert cfg.UPLOAD_SCRATCH_DIR == str(tmp_path / "attachments-incoming")
    env.setenv("ATTACHMENT_DIR", "/srv/files/")
    assert load_config().UPLOAD_SCRATCH_DIR == "/srv/files-incoming"
    env.setenv("ATTACHMENT_STORE", "s3://bucket")
    assert load_config().UPLOAD_SCRATCH_DIR == tempfile.gettempdir() + "/chat-uploads"
    env.setenv("UPLOAD_SCRATCH_DIR", "/scratch")
    assert load_config().UPLOAD_SCRATCH_DIR == "/scratch"
