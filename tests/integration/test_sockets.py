"""The /chat namespace through Flask-SocketIO's test client: several users at once."""

from __future__ import annotations

import pytest
from sqlalchemy import event, func, select

from app.extensions import db
from app.models import ChatRoom, Message
from tests.conftest import drain, emit, heard
from tests.live import wait_for


def test_customer_first_message_creates_room_and_reaches_every_audience(
    connect, customer, other_customer, admin
):
    tab1, tab2 = connect(customer), connect(customer)
    support, stranger = connect(admin), connect(other_customer)
    for client in (tab1, tab2, support, stranger):
        client.get_received("/chat")

    ack = emit(tab1, "send_message", {"body": "  Hello, my order is late  "})

    assert ack["ok"] is True
    message = ack["message"]
    assert message["body"] == "Hello, my order is late"
    assert message["author"] == {"id": customer.id, "name": "Carl Customer", "role": "customer"}
    assert message["created_at"].endswith("Z") and len(message["created_at"]) == 24
    assert heard(tab1, "new_message") == [message]
    assert heard(tab2, "new_message") == [message]
    support_events = support.get_received("/chat")
    names = [e["name"] for e in support_events]
    # ... then automatic assignment gives it to the one member online, and says so
    assert names == ["room_created", "new_message", "room_updated", "room_updated", "room_event"]
    room = support_events[0]["args"][0]
    assert room["id"] == message["room_id"]
    assert room["customer"]["id"] == customer.id
    assert room["assignee"] is None
    assert support_events[2]["args"][0]["last_message"] == message
    assert support_events[2]["args"][0]["unread_count"] == 1
    given = support_events[3]["args"][0]
    assert given["assignee"] == {"id": admin.id, "name": admin.name}
    line = support_events[4]["args"][0]
    assert (line["kind"], line["by"], line["assignee"]) == ("assigned", None, given["assignee"])
    assert stranger.get_received("/chat") == []


def test_tab_connected_before_the_room_existed_hears_it(connect, customer, admin):
    early_tab = connect(customer)
    ack = emit(connect(customer), "send_message", {"body": "first"})
    assert heard(early_tab, "new_message") == [ack["message"]]
    reply = emit(
        connect(admin), "send_message", {"room_id": ack["message"]["room_id"], "body": "hi"}
    )
    assert reply["ok"] is True
    assert heard(early_tab, "new_message") == [reply["message"]]


def test_admin_reply_reaches_customer_and_other_admins_only(
    connect, customer, other_customer, users
):
    admin1, admin2 = users.make("admin"), users.make("admin")
    room_id = emit(connect(customer), "send_message", {"body": "help"})["message"]["room_id"]
    emit(connect(other_customer), "send_message", {"body": "me too"})
    cust, other, a1, a2 = (
        connect(customer),
        connect(other_customer),
        connect(admin1),
        connect(admin2),
    )

    drain(cust, other, a1, a2)
    ack = emit(a1, "send_message", {"room_id": room_id, "body": "On it."})

    assert ack["ok"] is True and ack["message"]["author"]["role"] == "admin"
    assert heard(cust, "new_message") == [ack["message"]]
    assert heard(a1, "new_message") == [ack["message"]]
    assert heard(a2, "new_message") == [ack["message"]]
    assert other.get_received("/chat") == []


def test_admin_must_name_the_room(connect, admin):
    ack = emit(connect(admin), "send_message", {"body": "hello?"})
    assert ack == {
        "ok": False,
        "error": {"code": "validation_error", "message": "room_id: an admin must name the room"},
    }


def test_customer_writing_to_a_foreign_room_gets_not_found_and_nobody_hears(
    connect, customer, other_customer, admin
):
    victim_room = emit(connect(other_customer), "send_message", {"body": "private"})["message"]
    victim, support, intruder = connect(other_customer), connect(admin), connect(customer)
    drain(victim, support, intruder)

    for event_name, payload in [
        ("send_message", {"room_id": victim_room["room_id"], "body": "let me in"}),
        ("history", {"room_id": victim_room["room_id"]}),
    ]:
        ack = emit(intruder, event_name, payload)
        assert ack["ok"] is False and ack["error"]["code"] == "not_found"
    assert victim.get_received("/chat") == []
    assert support.get_received("/chat") == []
    assert intruder.get_received("/chat") == []


def test_history_pages_oldest_first_and_resyncs_after_id(connect, customer):
    client = connect(customer)
    ids = [emit(client, "send_message", {"body": f"m{i}"})["message"]["id"] for i in range(5)]
    room_id = emit(client, "list_rooms")["rooms"][0]["id"]

    newest = emit(client, "history", {"room_id": room_id, "limit": 2})
    assert [m["id"] for m in newest["messages"]] == ids[3:]
    assert newest["has_more"] is True
    older = emit(client, "history", {"room_id": room_id, "before_id": ids[3], "limit": 2})
    assert [m["id"] for m in older["messages"]] == ids[1:3]
    after = emit(client, "history", {"room_id": room_id, "after_id": ids[1], "limit": 2})
    assert [m["id"] for m in after["messages"]] == ids[2:4] and after["has_more"] is True
    last = emit(client, "history", {"room_id": room_id, "after_id": ids[3]})
    assert [m["id"] for m in last["messages"]] == ids[4:] and last["has_more"] is False


def test_the_customers_room_is_made_once_and_the_team_sees_it_from_its_first_message(
    connect, customer, admin
):
    client, support = connect(customer), connect(admin)
    first = emit(client, "list_rooms")
    second = emit(client, "list_rooms", {})
    assert first["ok"] and len(first["rooms"]) == 1 and first["next"] is None
    assert second["rooms"][0]["id"] == first["rooms"][0]["id"]
    # Empty, it is not the team's work: not announced, not listed, not counted.
    assert heard(support, "room_created") == [] and heard(support, "room_updated") == []
    assert emit(support, "list_rooms")["rooms"] == []
    assert emit(support, "inbox_counts")["counts"] == {
        "all": 0,
        "open": 0,
        "resolved": 0,
        "unread": 0,
        "views": {"mine": 0, "unassigned": 0, "all": 0},
    }
    emit(client, "send_message", {"body": "hello"})
    # the message's update, then its assignment to the member online
    updates = heard(support, "room_updated")
    assert [room["id"] for room in updates] == [first["rooms"][0]["id"]] * 2
    assert [room["assignee"] for room in updates] == [None, {"id": admin.id, "name": admin.name}]
    assert [room["id"] for room in emit(support, "list_rooms")["rooms"]] == [
        first["rooms"][0]["id"]
    ]
    assert emit(support, "inbox_counts")["counts"]["all"] == 1


def test_admin_list_rooms_is_empty_then_most_recent_first(connect, users, admin):
    support = connect(admin)
    assert emit(support, "list_rooms") == {"ok": True, "rooms": [], "next": None}
    customers = [users.make("customer") for _ in range(3)]
    for account in customers:
        emit(connect(account), "send_message", {"body": "hi"})
    emit(connect(customers[0]), "send_message", {"body": "again"})
    rooms = emit(support, "list_rooms")["rooms"]
    assert [r["customer"]["id"] for r in rooms] == [
        customers[0].id,
        customers[2].id,
        customers[1].id,
    ]
    assert rooms[0]["last_message"]["body"] == "again"
    assert rooms[0]["unread_count"] == 2
    assert rooms[0]["customer_online"] is True  # its socket is still open


@pytest.mark.parametrize(
    "payload, code",
    [
        (None, "validation_error"),
        ("hello", "validation_error"),
        ([1, 2], "validation_error"),
        ({}, "validation_error"),
        ({"body": ""}, "validation_error"),
        ({"body": "   \n\t "}, "validation_error"),
        ({"body": "a" * 4001}, "validation_error"),
        ({"body": "nul\x00byte"}, "validation_error"),
        ({"body": 42}, "validation_error"),
        ({"body": "x", "room_id": "1"}, "validation_error"),
        ({"body": "x", "room_id": True}, "validation_error"),
        ({"body": "x", "room_id": 10**40}, "validation_error"),
        ({"body": "x", "room_id": 999999}, "not_found"),
        ({"body": "x", "client_id": ""}, "validation_error"),
        ({"body": "x", "client_id": "c" * 65}, "validation_error"),
    ],
)
def test_malformed_send_is_answered_and_the_socket_stays_up(connect, customer, payload, code):
    client = connect(customer)
    ack = emit(client, "send_message", payload)
    assert ack["ok"] is False and ack["error"]["code"] == code
    assert client.is_connected("/chat")
    assert emit(client, "send_message", {"body": "still here"})["ok"] is True


def test_body_of_exactly_4000_code_points_is_accepted(connect, customer):
    body = "é" * 3999 + "😀"
    ack = emit(connect(customer), "send_message", {"body": body})
    assert ack["ok"] is True and ack["message"]["body"] == body


def test_unknown_event_is_answered_not_found(connect, customer):
    client = connect(customer)
    assert emit(client, "delete_everything", {})["error"]["code"] == "not_found"
    assert client.is_connected("/chat")


def test_a_failing_first_message_stores_no_room_and_broadcasts_nothing(
    app, connect, customer, admin
):
    # The first message makes the room in the same transaction: on PostgreSQL inside
    # its one statement, on SQLite in the statements before the room's counters move.
    # The send's last statement fails; the room must not be left behind.
    client, support = connect(customer), connect(admin)
    drain(client, support)

    def refuse_the_send(conn, cursor, statement, parameters, context, executemany):
        if "chat_send" in statement or statement.startswith("UPDATE chat_rooms"):
            raise RuntimeError("injected: the database refused the send")

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", refuse_the_send)
    try:
        ack = emit(client, "send_message", {"body": "will not be stored"})
    finally:
        event.remove(engine, "before_cursor_execute", refuse_the_send)

    assert ack == {
        "ok": False,
        "error": {"code": "internal_error", "message": "Something went wrong on our side."},
    }
    assert client.get_received("/chat") == []
    assert support.get_received("/chat") == []
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Message)) == 0
        assert db.session.scalar(select(func.count()).select_from(ChatRoom)) == 0
    assert emit(client, "send_message", {"body": "works again"})["ok"] is True


def test_a_failing_send_into_an_existing_room_stores_and_broadcasts_nothing(
    app, connect, customer, admin
):
    # The send into a known room is one statement (on PostgreSQL with no BEGIN/COMMIT
    # around it); when that statement fails, nothing is stored or announced.
    client, support = connect(customer), connect(admin)
    assert emit(client, "send_message", {"body": "makes the room"})["ok"]
    drain(client, support)

    def refuse_the_send(conn, cursor, statement, parameters, context, executemany):
        if "chat_send" in statement or statement.startswith("INSERT INTO messages"):
            raise RuntimeError("injected: the database refused the send")

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", refuse_the_send)
    try:
        ack = emit(client, "send_message", {"body": "will not be stored", "client_id": "x1"})
    finally:
        event.remove(engine, "before_cursor_execute", refuse_the_send)

    assert ack["ok"] is False and ack["error"]["code"] == "internal_error"
    assert client.get_received("/chat") == [] and support.get_received("/chat") == []
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Message)) == 1
        room = db.session.scalars(select(ChatRoom)).one()
        assert room.admin_unread == 1
    retry = emit(client, "send_message", {"body": "will not be stored", "client_id": "x1"})
    assert retry["ok"] is True
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Message)) == 2


def test_client_id_retry_returns_the_stored_message_and_broadcasts_once(connect, customer, admin):
    client, support = connect(customer), connect(admin)
    first = emit(client, "send_message", {"body": "once", "client_id": "abc-1"})
    support.get_received("/chat")
    retry = emit(client, "send_message", {"body": "once", "client_id": "abc-1"})
    assert retry == first
    assert support.get_received("/chat") == []
    assert emit(client, "send_message", {"body": "null id", "client_id": None})["ok"] is True


def test_customer_reply_reopens_a_resolved_room(app, connect, customer):
    client = connect(customer)
    room_id = emit(client, "send_message", {"body": "a"})["message"]["room_id"]
    with app.app_context():
        db.session.get(ChatRoom, room_id).status = "resolved"
        db.session.commit()
    emit(client, "send_message", {"body": "b"})
    assert emit(client, "list_rooms")["rooms"][0]["status"] == "open"


def test_a_customers_message_that_reopens_the_room_tells_every_tab_of_theirs(
    app, connect, customer, admin
):
    """A reopen is a status change: the customer's tabs hear `room_updated` (open) as
    they heard it when the room was resolved, once, and not again for the next send."""
    writing_tab, other_tab, support = connect(customer), connect(customer), connect(admin)
    room_id = emit(writing_tab, "send_message", {"body": "a"})["message"]["room_id"]
    emit(support, "set_status", {"room_id": room_id, "status": "resolved"})
    assert [r["status"] for r in heard(other_tab, "room_updated")] == ["resolved"]
    drain(writing_tab, support)

    emit(writing_tab, "send_message", {"body": "b", "client_id": "b-1"})
    for tab in (writing_tab, other_tab):
        updates = heard(tab, "room_updated")
        assert [(r["id"], r["status"]) for r in updates] == [(room_id, "open")]
        assert updates[0]["last_message"]["body"] == "b"
    assert [r["status"] for r in heard(support, "room_updated")] == ["open"]

    emit(writing_tab, "send_message", {"body": "c"})
    emit(writing_tab, "send_message", {"body": "b", "client_id": "b-1"})  # a retry
    assert heard(other_tab, "room_updated") == []
    # an admin's message never reopens, and tells the customer nothing of the status
    emit(support, "set_status", {"room_id": room_id, "status": "resolved"})
    drain(writing_tab, other_tab, support)
    emit(support, "send_message", {"room_id": room_id, "body": "closing note"})
    assert heard(other_tab, "room_updated") == []
    assert emit(support, "list_rooms")["rooms"][0]["status"] == "resolved"


def test_history_limit_outside_1_to_200_is_validation_error(connect, customer):
    client = connect(customer)
    room_id = emit(client, "list_rooms")["rooms"][0]["id"]
    for limit in (0, 201, -1, "10"):
        ack = emit(client, "history", {"room_id": room_id, "limit": limit})
        assert ack["error"]["code"] == "validation_error", limit
    assert emit(client, "history", {"room_id": room_id, "limit": 200})["ok"] is True


def test_each_event_gives_its_connection_back_to_the_pool(app, connect, customer):
    client = connect(customer)
    with app.app_context():
        pool = db.engine.pool
    room_id = emit(client, "list_rooms")["rooms"][0]["id"]
    for i in range(600):  # 1,800 events: sends, reads, and failures
        assert emit(client, "send_message", {"body": f"n{i}"})["ok"]
        assert emit(client, "history", {"room_id": room_id, "limit": 1})["ok"]
        assert emit(client, "history", {"room_id": 99999})["error"]["code"] == "not_found"
        # Housekeeping (another thread) may hold one for a moment while it looks for
        # sessions ended elsewhere: a leak is a connection that never comes back.
        assert wait_for(lambda: pool.checkedout() == 0, timeout=2)
