"""The statement budget of every hot event, counted with SQLAlchemy's
`before_cursor_execute`: one more statement sneaking into a path fails its test.

PostgreSQL runs the hot paths as single statements (CTEs). SQLite, the quick-start
default, cannot put an INSERT or UPDATE inside a CTE, so it has budgets of its own, a
statement or two higher; they are pinned just as tightly. The commit is not a
statement here: the drivers commit on the connection, not through a cursor. Nor is
the PREPARE of the send statements, run once per pooled connection.
"""

from __future__ import annotations

import re
import threading

import pytest
from sqlalchemy import event

from tests.conftest import ON_POSTGRES, drain, emit

BUDGET = {  # event: (PostgreSQL, SQLite)
    "send_message": (1, 3),
    # the files linked, and their rows read back, inside the same statement
    "send_with_two_files": (1, 7),
    # the room is made inside the same statement; automatic assignment reads nothing
    # while no member of the team is online (the registry says so)
    "first_message": (1, 4),
    # ... and with someone online, one round: who is online, lock the candidates, pick
    # the least loaded, give the oldest waiting room (SKIP LOCKED, one UPDATE), stamp
    # the member, write the thread line, and read the Room back for the team (one query)
    "first_message_assigned": (8, 11),
    "admin_send": (1, 3),
    "internal_note": (1, 2),
    "history": (1, 1),
    "history_admin": (2, 2),  # and the page's status lines (RoomEvents)
    "mark_read": (1, 2),
    "list_rooms_admin": (2, 2),
    "list_rooms_search": (4, 4),  # and the rooms found, and what matched in their messages
    "connect_customer": (1, 1),
    # a member's first socket: the team is told they are online (the member and their
    # open count), and a look whether any conversation waits for them
    "connect_admin": (4, 4),
}


def budget(name: str) -> int:
    return BUDGET[name][0 if ON_POSTGRES else 1]


@pytest.fixture
def statements(app):
    """The SQL statements run while the test's block runs: `with statements() as seen`."""
    from contextlib import contextmanager

    from app.extensions import db

    with app.app_context():
        engine = db.engine

    @contextmanager
    def counting():
        seen: list[str] = []
        here = threading.get_ident()

        def record(conn, cursor, statement, parameters, context, executemany):
            if threading.get_ident() != here:  # the app's once-a-second housekeeping
                return
            if not statement.startswith("PREPARE "):  # once per pooled connection
                seen.append(" ".join(statement.split()))

        event.listen(engine, "before_cursor_execute", record)
        try:
            yield seen
        finally:
            event.remove(engine, "before_cursor_execute", record)

    return counting


def selects_users(seen: list[str]) -> list[str]:
    """Statements that read the users table on their own (not joined for a summary)."""
    return [s for s in seen if re.match(r"SELECT .* FROM users\b", s) and " JOIN " not in s]


def test_send_into_an_existing_room(connect, customer, statements):
    sock = connect(customer)
    assert emit(sock, "send_message", {"body": "first"})["ok"]
    with statements() as seen:
        assert emit(sock, "send_message", {"body": "second", "client_id": "c2"})["ok"]
    assert len(seen) == budget("send_message"), seen
    assert selects_users(seen) == []


def test_a_send_while_the_team_is_away_queues_its_automatic_reply_without_a_statement(
    app, connect, customer, admin, statements
):
    """The automatic reply and the emails are jobs, queued after the commit: the send
    itself stays one statement (issue 22)."""
    from app.services import availability

    sock = connect(customer)
    assert emit(sock, "send_message", {"body": "first"})["ok"]  # the room, no reply yet
    support = connect(admin)
    closed = {"timezone": "UTC", "week": {}}
    emit(support, "save_team_settings", {"hours": closed, "away_message": "Back soon"})
    with app.app_context():
        availability.load()
    huey = app.extensions["chat_jobs"].huey
    huey.flush()
    with statements() as seen:
        assert emit(sock, "send_message", {"body": "anyone?", "client_id": "a2"})["ok"]
    assert len(seen) == budget("send_message"), seen
    assert huey.pending_count() == 1  # the automatic reply's job, in the job store
    room_id = emit(sock, "list_rooms", {})["rooms"][0]["id"]
    with statements() as seen:  # an agent's reply queues the customer's email check
        assert emit(support, "send_message", {"room_id": room_id, "body": "Here"})["ok"]
    assert len(seen) == budget("admin_send"), seen
    assert huey.pending_count() == 2  # (Huey queues a delayed job; its eta waits there)


def test_a_send_with_files_links_them_in_the_same_statement(
    http, users, connect, customer, statements
):
    import io

    sock = connect(customer)
    assert emit(sock, "send_message", {"body": "first"})["ok"]
    ids = []
    for n in range(2):
        answer = http.post(
            "/api/attachments",
            data={"file": (io.BytesIO(b"text %d\n" % n), f"{n}.txt")},
            headers={"Authorization": f"Bearer {users.token(customer)}"},
            content_type="multipart/form-data",
        )
        ids.append(answer.json["id"])
    with statements() as seen:
        sent = emit(sock, "send_message", {"body": "", "attachments": ids, "client_id": "f"})
    assert [a["id"] for a in sent["message"]["attachments"]] == ids
    assert len(seen) == budget("send_with_two_files"), seen


def test_a_customers_first_message(connect, customer, statements):
    sock = connect(customer)
    with statements() as seen:
        assert emit(sock, "send_message", {"body": "hello"})["ok"]
    assert len(seen) == budget("first_message"), seen


def test_a_customers_first_message_given_to_the_online_agent(connect, users, customer, statements):
    agent = users.make("agent")
    support = connect(agent)
    sock = connect(customer)
    drain(support)
    with statements() as seen:
        sent = emit(sock, "send_message", {"body": "hello"})
    assert sent["ok"]
    assert len(seen) == budget("first_message_assigned"), seen
    room = emit(support, "list_rooms", {})["rooms"][0]
    assert room["assignee"]["id"] == agent.id


def test_a_send_into_an_assigned_room_stays_one_statement(connect, users, customer, statements):
    """Assignment costs the send path nothing once the room has its assignee."""
    agent = users.make("agent")
    support = connect(agent)
    sock = connect(customer)
    room = emit(sock, "send_message", {"body": "first"})["message"]["room_id"]
    assert emit(support, "list_rooms", {})["rooms"][0]["assignee"]["id"] == agent.id
    with statements() as seen:
        assert emit(sock, "send_message", {"body": "second", "client_id": "s2"})["ok"]
    assert len(seen) == budget("send_message"), seen
    with statements() as seen:
        assert emit(support, "send_message", {"room_id": room, "body": "here"})["ok"]
    assert len(seen) == budget("admin_send"), seen


def test_an_admins_answer(connect, customer, admin, statements):
    room = emit(connect(customer), "send_message", {"body": "help"})["message"]["room_id"]
    support = connect(admin)
    with statements() as seen:
        assert emit(support, "send_message", {"room_id": room, "body": "here"})["ok"]
    assert len(seen) == budget("admin_send"), seen
    assert selects_users(seen) == []


def test_an_internal_note(connect, customer, admin, statements):
    room = emit(connect(customer), "send_message", {"body": "help"})["message"]["room_id"]
    support = connect(admin)
    with statements() as seen:
        note = {"room_id": room, "body": "for the team", "internal": True}
        assert emit(support, "send_message", note)["ok"]
    assert len(seen) == budget("internal_note"), seen


def test_history(connect, customer, statements):
    sock = connect(customer)
    room = emit(sock, "send_message", {"body": "one"})["message"]["room_id"]
    with statements() as seen:
        assert emit(sock, "history", {"room_id": room})["ok"]
    assert len(seen) == budget("history"), seen


def test_an_admins_history_page(connect, customer, admin, statements):
    room = emit(connect(customer), "send_message", {"body": "one"})["message"]["room_id"]
    support = connect(admin)
    emit(support, "set_status", {"room_id": room, "status": "resolved"})
    with statements() as seen:
        page = emit(support, "history", {"room_id": room})
    # given to the admin when they came online, then resolved
    assert [(e["kind"], e["status"]) for e in page["events"]] == [
        ("assigned", "open"),
        ("status", "resolved"),
    ]
    assert len(seen) == budget("history_admin"), seen


def test_mark_read(connect, customer, admin, statements):
    sent = emit(connect(customer), "send_message", {"body": "read me"})["message"]
    support = connect(admin)
    with statements() as seen:
        ack = emit(support, "mark_read", {"room_id": sent["room_id"], "message_id": sent["id"]})
    assert ack["ok"]
    assert len(seen) == budget("mark_read"), seen


def test_an_admins_list_rooms_page(connect, users, admin, statements):
    for n in range(3):
        emit(connect(users.make("customer")), "send_message", {"body": f"hi {n}"})
    support = connect(admin)
    with statements() as seen:
        assert len(emit(support, "list_rooms", {"limit": 2})["rooms"]) == 2
    assert len(seen) == budget("list_rooms_admin"), seen


def test_an_admins_search_through_message_text(connect, users, admin, statements):
    for n in range(3):
        emit(connect(users.make("customer")), "send_message", {"body": f"refund {n}"})
    support = connect(admin)
    with statements() as seen:
        found = emit(support, "list_rooms", {"q": "refund", "limit": 2})["rooms"]
    assert len(found) == 2 and all(room["match"] for room in found)
    assert len(seen) == budget("list_rooms_search"), seen


@pytest.mark.parametrize("role", ["customer", "admin"])
def test_connect(connect, users, statements, role):  # the token is made beforehand
    account = users.make(role)
    if role == "customer":
        emit(connect(account), "send_message", {"body": "so the room exists"})
    token = users.token(account)
    with statements() as seen:
        sock = connect(auth={"token": token})
    assert sock.is_connected("/chat")
    assert len(seen) == budget(f"connect_{role}"), seen


def test_no_event_reads_the_user_again(connect, customer, admin, statements):
    sock, support = connect(customer), connect(admin)
    sent = emit(sock, "send_message", {"body": "x"})["message"]
    drain(sock, support)
    with statements() as seen:
        emit(sock, "send_message", {"body": "y"})
        emit(sock, "history", {"room_id": sent["room_id"]})
        emit(support, "mark_read", {"room_id": sent["room_id"], "message_id": sent["id"]})
        emit(support, "list_rooms")
        emit(sock, "typing", {"room_id": sent["room_id"], "is_typing": True})
    assert selects_users(seen) == [], seen


def test_inbox_counts(connect, customer, admin, statements):
    emit(connect(customer), "send_message", {"body": "help"})
    support = connect(admin)
    with statements() as seen:
        assert emit(support, "inbox_counts")["ok"]
    assert len(seen) == 1, seen
