"""The overload and shutdown answers, through the real Socket.IO stack (Flask-SocketIO's
test client goes through the same namespace dispatch as a WebSocket does).
tests/system/test_faults.py measures them under real load."""

from __future__ import annotations

from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError

from app.extensions import db
from app.models import Message
from app.serving import Admission, in_flight
from tests.conftest import drain, emit

BUSY = {
    "ok": False,
    "error": {
        "code": "rate_limited",
        "message": "The chat is busy right now; try again in a moment.",
    },
}


def stored(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Message))


def test_an_overloaded_process_answers_sends_busy_and_still_serves_history(
    app, connect, customer, admin
):
    client, support = connect(customer), connect(admin)
    first = emit(client, "send_message", {"body": "before"})
    assert first["ok"]
    drain(client, support)
    admission: Admission = app.extensions["chat_admission"]
    admission.in_flight += admission.always_admitted  # as if that many sends were waiting
    try:
        ack = emit(client, "send_message", {"body": "during", "client_id": "o-1"})
        history = emit(client, "history", {"room_id": first["message"]["room_id"]})
    finally:
        admission.in_flight -= admission.always_admitted
    assert ack == BUSY
    assert admission.shed >= 1
    assert support.get_received("/chat") == [] and stored(app) == 1  # nothing stored or said
    assert history["ok"] and [m["body"] for m in history["messages"]] == ["before"]
    retry = emit(client, "send_message", {"body": "during", "client_id": "o-1"})
    assert retry["ok"] and stored(app) == 2


def test_a_shed_send_is_answered_before_its_payload_is_read(app, connect, customer):
    """Shedding comes first in the namespace's dispatch: a payload that would be refused
    as invalid is answered busy all the same, at the cost of a counter."""
    client = connect(customer)
    admission: Admission = app.extensions["chat_admission"]
    shed = admission.shed
    admission.in_flight += admission.always_admitted
    try:
        ack = emit(client, "send_message", {"body": ""})  # invalid, and never parsed
        other = emit(client, "list_rooms", {})  # only sends are shed
    finally:
        admission.in_flight -= admission.always_admitted
    assert ack == BUSY and admission.shed == shed + 1
    assert other["ok"] is True
    assert emit(client, "send_message", {"body": ""})["error"]["code"] == "validation_error"


def test_an_admitted_send_is_in_flight_while_it_is_handled(app, connect, customer):
    client = connect(customer)
    admission: Admission = app.extensions["chat_admission"]
    seen = []

    def count(conn, cursor, statement, parameters, context, executemany):
        seen.append(admission.in_flight)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        assert emit(client, "send_message", {"body": "counted"})["ok"]
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert seen and set(seen) == {1}, "every statement of the send ran while it was counted"
    assert admission.in_flight == 0


def test_a_send_that_finds_no_free_connection_in_time_is_answered_busy(app, connect, customer):
    client = connect(customer)
    assert emit(client, "send_message", {"body": "makes the room"})["ok"]
    slots = app.extensions["chat_send_slots"]
    taken = 0
    while slots.acquire(timeout=0):  # every connection sends may hold is busy
        taken += 1
    wait = app.config["CHAT_SEND_WAIT"]
    app.config["CHAT_SEND_WAIT"] = 0.05
    try:
        ack = emit(client, "send_message", {"body": "waits", "client_id": "w-1"})
    finally:
        app.config["CHAT_SEND_WAIT"] = wait
        for _ in range(taken):
            slots.release()
    assert taken >= 1
    assert ack == BUSY and stored(app) == 1
    assert emit(client, "send_message", {"body": "waits", "client_id": "w-1"})["ok"]


def test_while_draining_every_event_is_answered_at_once_and_nothing_is_stored(
    app, connect, customer
):
    client = connect(customer)
    room_id = emit(client, "send_message", {"body": "before"})["message"]["room_id"]
    tracker = in_flight(app)
    tracker.draining = True
    try:
        answers = [
            emit(client, "send_message", {"body": "during the drain"}),
            emit(client, "history", {"room_id": room_id}),
        ]
    finally:
        tracker.draining = False
    for answer in answers:
        assert answer["ok"] is False and answer["error"]["code"] == "rate_limited"
        assert "restarting" in answer["error"]["message"]
    assert stored(app) == 1


def test_a_database_away_at_connect_refuses_the_socket_and_the_next_connect_works(
    app, connect, customer, users
):
    # That the refusal says `unavailable`, not `unauthorized`, is checked on a real
    # server: tests/system/test_faults.py, the outage test.
    def refuse(conn, cursor, statement, parameters, context, executemany):
        raise OperationalError(statement, parameters, Exception("injected: database away"))

    token = users.token(customer)
    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", refuse)
    try:
        client = connect(auth={"token": token})
    finally:
        event.remove(engine, "before_cursor_execute", refuse)
    assert not client.is_connected("/chat")
    assert connect(auth={"token": token}).is_connected("/chat")  # the token was fine


def test_the_stats_line_counts_registry_and_sockets_alike(app, connect, customer, admin):
    from app.sockets.housekeeping import stats_line

    connect(customer), connect(admin)
    with app.app_context():
        figures = dict(kv.split("=") for kv in stats_line(app).split()[1:])
    assert figures["registry"] == figures["sockets"] == "2"
    assert int(figures["rss_kb"]) > 0 and int(figures["fds"]) > 0
    assert figures["pool_checked_out"].isdigit() and figures["sends_in_flight"] == "0"
