"""The migrations build the schema on an empty database, match the models, and undo."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from app.extensions import db
from tests.conftest import ON_POSTGRES, PG_URL, ROOT


def flask_cli(database_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": database_url, "APP_CONFIG": "development"}
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/empty.db"
        return
    if not ON_POSTGRES:
        pytest.skip("needs PostgreSQL: set TEST_DATABASE_URL=postgresql://…")
    name = f"migration_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# SQLite has no full-text index (ix_messages_body_fts is PostgreSQL's); alembic says it
# cannot compare expression indexes there. On PostgreSQL it compares them.
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression")
def test_upgrade_builds_the_schema_that_matches_the_models(app, empty_database):
    result = flask_cli(empty_database, "db", "upgrade")
    assert result.returncode == 0, result.stderr

    engine = create_engine(empty_database)
    try:
        inspector = inspect(engine)
        assert {"users", "chat_rooms", "messages", "token_families"} <= set(
            inspector.get_table_names()
        )
        indexes = {
            ix["name"]
            for table in ("chat_rooms", "messages")
            for ix in inspector.get_indexes(table)
        }
        assert {"ix_chat_rooms_activity", "ix_messages_room_id_id"} <= indexes
        if empty_database.startswith("postgresql"):
            assert "ix_messages_body_fts" in indexes
        uniques = {tuple(u["column_names"]) for u in inspector.get_unique_constraints("chat_rooms")}
        assert ("customer_id",) in uniques
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
        assert diff == [], f"models and migrations disagree: {diff}"
    finally:
        engine.dispose()

    down = flask_cli(empty_database, "db", "downgrade", "base")
    assert down.returncode == 0, down.stderr
    engine = create_engine(empty_database)
    try:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
