"""`transaction()`: the one place where the chat commits.

Service helpers only `flush()`; a command wraps its writes in `with transaction():`, which
commits when the block ends and rolls back on any error (the error then propagates).
Events are emitted by the caller *after* the block, so nothing is heard before it is
stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import current_app
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from ..extensions import db


@contextmanager
def core_transaction(*, one_statement: bool = False) -> Iterator[Connection]:
    """The same promise for the hot paths' Core statements: a pooled connection in a
    transaction of its own, committed when the block ends and rolled back on any error,
    without the ORM session's bookkeeping (the send path: services/sending.py).

    `one_statement=True` is the block's promise that it runs a single statement that
    writes. On PostgreSQL every statement outside BEGIN is a transaction of its own:
    all of it or none of it, committed and durable when it returns. The helper then
    leaves out BEGIN and COMMIT, two round trips and a sixth of the send's CPU
    (docs/BENCHMARKS.md). A second statement in such a block is refused, before it
    runs. SQLite always gets an ordinary transaction.
    """
    engine = current_app.extensions["chat_engine"]
    if not (one_statement and on_postgres()):
        with engine.begin() as connection:
            yield connection
        return
    with engine.connect() as connection:
        dbapi_connection = connection.connection.dbapi_connection
        dbapi_connection.autocommit = True  # psycopg2 sends nothing for this
        connection.info["chat_one_statement"] = 0
        try:
            yield connection
        finally:
            connection.info.pop("chat_one_statement", None)
            if not dbapi_connection.closed:
                dbapi_connection.autocommit = False


def run_on_driver(connection: Connection, statement: str, parameters: tuple) -> tuple | None:
    """`_run_on_driver`'s first row (or None)."""
    rows = _run_on_driver(connection, statement, parameters, all_rows=False)
    return rows[0] if rows else None


def run_all_on_driver(connection: Connection, statement: str, parameters: tuple) -> list:
    """`_run_on_driver`'s rows."""
    return _run_on_driver(connection, statement, parameters, all_rows=True)


def _run_on_driver(
    connection: Connection, statement: str, parameters: tuple, all_rows: bool
) -> list:
    """Run one statement on the DBAPI cursor of `connection`, inside its transaction,
    and return its rows (the first only, unless `all_rows`).

    For the send, the hottest statement there is: SQLAlchemy's execution machinery
    (compiled-cache lookup, result metadata from the cursor's description, row
    processors) cost more CPU than the statement itself (docs/BENCHMARKS.md). The
    statement is announced to `before_cursor_execute` listeners like any other, so
    logging and the statement-budget tests see it; a lost connection is invalidated as
    SQLAlchemy would (and the error propagates, rolling the transaction back).
    """
    if "chat_one_statement" in connection.info:  # core_transaction(one_statement=True)
        if connection.info["chat_one_statement"]:
            raise RuntimeError("a one-statement transaction ran a second statement")
        connection.info["chat_one_statement"] = 1
    connection.dispatch.before_cursor_execute(connection, None, statement, parameters, None, False)
    dbapi_connection = connection.connection.dbapi_connection
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(statement, parameters)
        if all_rows:
            return cursor.fetchall()
        row = cursor.fetchone()
        return [row] if row is not None else []
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
