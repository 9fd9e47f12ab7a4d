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
def core_transaction() -> Iterator[Connection]:
    """The same promise for the hot paths' Core statements: a pooled connection in a
    transaction of its own, committed when the block ends and rolled back on any error,
    without the ORM session's bookkeeping (the send path: services/sending.py)."""
    with current_app.extensions["chat_engine"].begin() as connection:
        yield connection


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
