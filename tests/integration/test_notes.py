"""Internal notes: an admin's text in a conversation that only the support team sees.

A note is never sent to the customer's sockets, never in their history (socket or
HTTP), never counted in their room's summary or unread count, and a customer can
neither write one nor aim a read mark at one.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Message
from tests.conftest import drain, emit, heard


@pytest.fixture
def room(app, connect, customer, admin):
    """A customer's room with their question and an admin's reply; their sockets."""
    customer_tab, admin_tab, colleague_tab = connect(customer), connect(admin), connect(admin)
    question = emit(customer_tab, "send_message", {"body": "Where is my parcel?"})["message"]
    reply = emit(admin_tab, "send_message", {"room_id": question["room_id"], "body": "Checking"})
    drain(customer_tab, admin_tab, colleague_tab)
    return {
        "id": question["room_id"],
        "question": question,
        "reply": reply["message"],
        "customer": customer_tab,
        "admin": admin_tab,
        "colleague": colleague_tab,
    }


def note(tab, room_id, body="VIP: refund without asking", **extra):
    return emit(tab, "send_message", {"room_id": room_id, "body": body, "internal": True, **extra})


def stored_notes(app, room_id):
    with app.app_context():
        query = select(Message.body).where(Message.room_id == room_id, Message.internal)
        return list(db.session.scalars(query))


def test_an_admins_note_is_stored_and_heard_by_every_admin_but_not_the_customer(app, room):
    ack = note(room["admin"], room["id"])

    assert ack["ok"] is True, ack
    assert ack["message"]["internal"] is True
    assert ack["message"]["author"]["role"] == "admin"
    assert stored_notes(app, room["id"]) == ["VIP: refund without asking"]
    assert heard(room["colleague"], "new_message") == [ack["message"]]
    assert heard(room["admin"], "new_message") == [ack["message"]]
    assert room["customer"].get_received("/chat") == []  # no message, no room_updated


def test_ordinary_messages_say_they_are_not_internal(room):
    assert room["question"]["internal"] is False
    assert room["reply"]["internal"] is False


def test_the_customers_history_leaves_notes_out_and_the_admins_has_them(
    room, http, users, customer
):
    added = note(room["admin"], room["id"])["message"]
    later = emit(room["admin"], "send_message", {"room_id": room["id"], "body": "Found it"})

    customer_view = emit(room["customer"], "history", {"room_id": room["id"]})["messages"]
    admin_view = emit(room["admin"], "history", {"room_id": room["id"]})["messages"]

    assert [m["body"] for m in customer_view] == ["Where is my parcel?", "Checking", "Found it"]
    assert [m["id"] for m in admin_view] == [
        room["question"]["id"],
        room["reply"]["id"],
        added["id"],
        later["message"]["id"],
    ]
    # Paging after the reply (a resync) skips the note for the customer, too.
    after = emit(
        room["customer"], "history", {"room_id": room["id"], "after_id": room["reply"]["id"]}
    )
    assert [m["body"] for m in after["messages"]] == ["Found it"]
    # And over HTTP.
    token = users.token(customer)
    response = http.get(
        f"/api/rooms/{room['id']}/messages", headers={"Authorization": f"Bearer {token}"}
    )
    assert [m["body"] for m in response.get_json()["messages"]] == [
        "Where is my parcel?",
        "Checking",
        "Found it",
    ]


def test_a_note_leaves_the_rooms_summary_status_and_counters_alone(room):
    emit(room["admin"], "set_status", {"room_id": room["id"], "status": "resolved"})
    before_admin = emit(room["admin"], "list_rooms", {})["rooms"][0]
    before_customer = emit(room["customer"], "list_rooms", {})["rooms"][0]
    drain(room["admin"], room["colleague"], room["customer"])

    assert note(room["admin"], room["id"])["ok"] is True

    after_admin = emit(room["admin"], "list_rooms", {})["rooms"][0]
    after_customer = emit(room["customer"], "list_rooms", {})["rooms"][0]
    assert after_admin == before_admin  # same last message, unread count, status
    assert after_customer == before_customer
    assert after_customer["status"] == "resolved"
    assert after_customer["unread_count"] == 1  # the reply, not the note
    assert heard(room["colleague"], "room_updated") == []


def test_the_customers_unread_count_never_counts_a_note(room):
    note(room["admin"], room["id"])
    emit(room["customer"], "mark_read", {"room_id": room["id"], "message_id": room["reply"]["id"]})

    mine = emit(room["customer"], "list_rooms", {})["rooms"][0]
    assert mine["unread_count"] == 0
    assert emit(room["customer"], "inbox_counts", {})["counts"]["unread"] == 0


def test_a_customer_cannot_aim_a_read_mark_at_a_note(room):
    added = note(room["admin"], room["id"])["message"]

    ack = emit(room["customer"], "mark_read", {"room_id": room["id"], "message_id": added["id"]})

    assert ack["ok"] is False and ack["error"]["code"] == "not_found"
    assert heard(room["admin"], "read") == []


def test_customers_cannot_write_notes_in_their_own_room_or_any_other(
    app, room, connect, other_customer
):
    own = emit(room["customer"], "send_message", {"body": "psst", "internal": True})
    aimed = note(room["customer"], room["id"], "psst")
    stranger = note(connect(other_customer), room["id"], "psst")

    for ack in (own, aimed, stranger):
        assert ack["ok"] is False and ack["error"]["code"] == "forbidden", ack
    assert stored_notes(app, room["id"]) == []
    with app.app_context():
        assert db.session.scalar(select(func.count()).where(Message.body == "psst")) == 0
    assert heard(room["admin"], "new_message") == []


def test_a_retried_note_is_stored_once(app, room):
    first = note(room["admin"], room["id"], client_id="note-1")["message"]
    again = note(room["admin"], room["id"], client_id="note-1")["message"]

    assert again == first
    assert stored_notes(app, room["id"]) == ["VIP: refund without asking"]
    assert len(heard(room["colleague"], "new_message")) == 1


@pytest.mark.parametrize(
    "payload, code",
    [
        ({"room_id": 999999, "body": "x", "internal": True}, "not_found"),
        ({"body": "x", "internal": True}, "validation_error"),  # an admin names the room
        ({"room_id": 1, "body": "x", "internal": "yes"}, "validation_error"),
        ({"room_id": 1, "body": "   ", "internal": True}, "validation_error"),
    ],
)
def test_bad_notes_get_a_clear_error(app, room, payload, code):
    ack = emit(room["admin"], "send_message", payload)

    assert ack["ok"] is False and ack["error"]["code"] == code, ack
    assert stored_notes(app, room["id"]) == []


def test_the_customer_panel_counts_messages_but_not_notes(room):
    note(room["admin"], room["id"])

    profile = emit(room["admin"], "customer_profile", {"room_id": room["id"]})["profile"]

    assert profile["message_count"] == 2
