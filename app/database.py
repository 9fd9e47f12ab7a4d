"""The database: where the chat commits, and how its pooled connections are kept.

- `transaction()` is the one place where the ORM side commits. Service helpers only
  `flush()`; a command wraps its writes in `with transaction():`, which commits when the
  block ends and rolls back on any error (the error then propagates). Events are emitted
  by the caller *after* the block, so nothing is heard before it is stored.
- `core_transaction()` is the same promise for the send path's Core statements.
- `ping_when_idle()`: the pool checks a connection only after it sat idle.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from flask import current_app
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session

from .extensions import db


@contextmanager
def core_transaction(*, one_statement: bool = False) -> Iterator[Connection]:
    """A pooled connection in a transaction of its own, committed when the block ends
    and rolled back on any error, without the ORM session's bookkeeping (the send path:
    services/store.py).

    `one_statement=True`: the block's writes are one statement. On PostgreSQL every
    statement outside BEGIN is a transaction of its own: all of it or none of it,
    committed and durable when it returns. The helper then leaves out BEGIN and COMMIT,
    two round trips and a sixth of the send's CPU (docs/BENCHMARKS.md); a read after
    that statement (a retried send's lookup) sees what it committed. SQLite always gets
    an ordinary transaction.
    """
    engine = current_app.extensions["chat_engine"]
    if not (one_statement and on_postgres()):
        with engine.begin() as connection:
            yield connection
        return
    with engine.connect() as connection:
        dbapi_connection = connection.connection.dbapi_connection
        dbapi_connection.autocommit = True  # psycopg2 sends nothing for this
        try:
            yield connection
        finally:
            if not dbapi_connection.closed:
                dbapi_connection.autocommit = False


def run_on_driver(connection: Connection, statement: str, parameters: tuple) -> tuple | None:
    """Run one statement on the DBAPI cursor of `connection`, inside its transaction,
    and return its first row (or None).

    For the send, the hottest statement there is: SQLAlchemy's execution machinery
    (compiled-cache lookup, result metadata from the cursor's description, row
    processors) cost more CPU than the statement itself (docs/BENCHMARKS.md). The
    statement is announced to `before_cursor_execute` listeners like any other, so
    logging and the statement-budget tests see it; a lost connection is invalidated as
    SQLAlchemy would (and the error propagates, rolling the transaction back).
    """
    connection.dispatch.before_cursor_execute(connection, None, statement, parameters, None, False)
    dbapi_connection = connection.connection.dbapi_connection
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(statement, parameters)
        return cursor.fetchone()
    except connection.dialect.loaded_dbapi.Error as exc:
        if connection.dialect.is_disconnect(exc, dbapi_connection, cursor):
            connection.invalidate(exc)
        raise
    finally:
        cursor.close()


def on_postgres() -> bool:
    """Whether the app's database is PostgreSQL (read once, at start)."""
    return current_app.extensions["chat_on_postgres"]


@contextmanager
def transaction() -> Iterator[Session]:
    session = db.session
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise


# The database pool checks a connection only after it sat idle.
#
# `pool_pre_ping` sends a `SELECT 1` before every checkout: a round trip on every socket
# event. A connection handed back a moment ago is almost surely alive, so only one idle
# for more than `IDLE_SECONDS` is pinged; a dead one is replaced before anyone uses it
# (SQLAlchemy retries the checkout). A connection that dies while in use fails its
# statement, and SQLAlchemy then invalidates the whole pool, so the next checkouts get
# fresh connections.
IDLE_SECONDS = 2.0


def ping_when_idle(engine: Engine) -> None:
    @event.listens_for(engine, "checkin")
    def checked_in(dbapi_connection, record):
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def checked_out(dbapi_connection, record, proxy):
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < IDLE_SECONDS:
            return
        try:
            ping(dbapi_connection)
        except Exception as exc:  # any failure: this connection is not worth keeping
            raise DisconnectionError("an idle connection did not answer") from exc


def ping(dbapi_connection) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SELECT 1")
    finally:
        cursor.close()
    # The driver opened a transaction for the SELECT; hand the connection over idle
    # (a one-statement send switches it to autocommit, which needs no open transaction).
    dbapi_connection.rollback()
