"""The pool pings only connections that sat idle, and so still never hands out a
connection PostgreSQL has dropped meanwhile (PostgreSQL)."""

from __future__ import annotations

import time

import psycopg2

from tests.conftest import PG_URL, emit, needs_postgres


def terminate_the_apps_connections() -> int:
    with psycopg2.connect(PG_URL) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cur.fetchone()[0]


@needs_postgres
def test_an_idle_connection_that_was_dropped_is_replaced_before_use(connect, customer, monkeypatch):
    import app.database as pooling

    monkeypatch.setattr(pooling, "IDLE_SECONDS", 0.2)
    sock = connect(customer)
    assert emit(sock, "send_message", {"body": "before"})["ok"]
    assert terminate_the_apps_connections() >= 1
    time.sleep(0.3)  # the pooled connection is now idle, and dead

    ack = emit(sock, "send_message", {"body": "after"})
    assert ack["ok"] is True, ack


@needs_postgres
def test_a_busy_pool_is_not_pinged(connect, customer, monkeypatch):
    import app.database as pooling

    sock = connect(customer)
    emit(sock, "send_message", {"body": "warm"})
    pings = []
    real = pooling.ping
    monkeypatch.setattr(pooling, "ping", lambda conn: pings.append(1) or real(conn))
    for n in range(5):
        assert emit(sock, "send_message", {"body": f"n{n}"})["ok"]
    assert pings == [], "a connection used a moment ago is not pinged"
    monkeypatch.setattr(pooling, "IDLE_SECONDS", 0.0)
    assert emit(sock, "send_message", {"body": "idle"})["ok"]
    assert pings == [1], "an idle one is"
