"""The database pool checks a connection only after it sat idle.

`pool_pre_ping` sends a `SELECT 1` before every checkout: a round trip on every socket
event. A connection handed back a moment ago is almost surely alive, so only one idle
for more than `IDLE_SECONDS` is pinged; a dead one is replaced before anyone uses it
(SQLAlchemy retries the checkout). A connection that dies while in use fails its
statement, and SQLAlchemy then invalidates the whole pool, so the next checkouts get
fresh connections.
"""

from __future__ import annotations

import time

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError

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
