"""Promise 7: events say only what their audience may know. Every payload a client can
hear, and every acknowledgement, has exactly the keys pinned here."""

from __future__ import annotations

import re
import time
from datetime import timedelta

from tests.conftest import drain, emit, heard

AUTHOR = {"id", "name", "role"}
USER = {"id", "name", "email", "role"}
MESSAGE = {
    "id",
    "room_id",
    "author",
    "body",
    "created_at",
    "client_id",
    "internal",
    "attachments",
}
ROOM = {
    "id",
    "customer",
    "status",
    "created_at",
    "last_message",
    "unread_count",
    "customer_online",
    "seen_up_to",
}
# the team's view of a room also names its assignee (never the customer's)
STAFF_ROOM = ROOM | {"assignee"}
ASSIGNEE = {"id", "name"}
ROOM_EVENT = {"id", "room_id", "kind", "status", "by", "after_message_id", "created_at"}
FORBIDDEN_KEYS = {
    "password_hash",
    "admin_read_id",
    "customer_read_id",
    "token",
    "jti",
    "last_activity_at",
    "customer_id",
    "author_id",
}
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def all_keys(value):
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key
            yield from all_keys(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from all_keys(inner)


def check_message(message):
    assert set(message) == MESSAGE
    assert set(message["author"]) == AUTHOR
    assert TIME.match(message["created_at"])


def check_room(room, staff=False):
    assert set(room) == (STAFF_ROOM if staff else ROOM)
    if staff and room["assignee"] is not None:
        assert set(room["assignee"]) == ASSIGNEE
    assert set(room["customer"]) == USER
    assert TIME.match(room["created_at"])
    if room["last_message"] is not None:
        check_message(room["last_message"])


def test_every_event_a_customer_hears_has_its_pinned_shape(app, connect, users, customer, admin):
    cust = connect(customer)
    support = connect(admin)
    sent = emit(cust, "send_message", {"body": "hello", "client_id": "k1"})
    room_id = sent["message"]["room_id"]
    emit(support, "typing", {"room_id": room_id, "is_typing": True})
    reply = emit(support, "send_message", {"room_id": room_id, "body": "hi"})["message"]
    emit(support, "mark_read", {"room_id": room_id, "message_id": sent["message"]["id"]})
    emit(support, "set_status", {"room_id": room_id, "status": "resolved"})
    support.disconnect(namespace="/chat")

    events = cust.get_received("/chat")
    by_name = {}
    for event in events:
        by_name.setdefault(event["name"], []).append(event["args"][0])
    assert set(by_name) == {"presence", "new_message", "typing", "read", "room_updated"}
    for message in by_name["new_message"]:
        check_message(message)
    assert by_name["typing"] == [
        {
            "room_id": room_id,
            "user": {"id": admin.id, "name": "Ada Admin", "role": "admin"},
            "is_typing": True,
        }
    ]
    assert by_name["read"] == [
        {"room_id": room_id, "user_id": admin.id, "message_id": sent["message"]["id"]}
    ]
    for room in by_name["room_updated"]:
        check_room(room)
    assert by_name["presence"] == [
        {"admins_online": False},  # on connect: no admin yet
        {"admins_online": True},  # the first admin arrives
        {"admins_online": False},  # the last admin leaves
    ]
    for event in events:
        assert not FORBIDDEN_KEYS & set(all_keys(event["args"])), event
    assert reply in by_name["new_message"]


def test_every_event_an_admin_hears_has_its_pinned_shape(connect, customer, admin):
    support = connect(admin)
    drain(support)
    cust = connect(customer)
    sent = emit(cust, "send_message", {"body": "hello"})["message"]
    emit(cust, "typing", {"room_id": sent["room_id"], "is_typing": False})
    cust.disconnect(namespace="/chat")

    events = support.get_received("/chat")
    names = [e["name"] for e in events]
    # The customer never asked for their room before writing: their first message makes it.
    # ... and the admin, the one member online, is given it (a thread line says so)
    assert set(names) == {
        "presence",
        "room_updated",
        "room_created",
        "new_message",
        "typing",
        "room_event",
    }
    for event in events:
        payload = event["args"][0]
        if event["name"] in ("room_created", "room_updated"):
            check_room(payload, staff=True)
        elif event["name"] == "room_event":
            assert set(payload) == ROOM_EVENT | {"assignee"}
            assert payload["kind"] == "assigned" and payload["by"] is None  # automatic
            assert payload["assignee"] == {"id": admin.id, "name": "Ada Admin"}
        elif event["name"] == "new_message":
            check_message(payload)
        elif event["name"] == "typing":
            assert (
                set(payload) == {"room_id", "user", "is_typing"} and set(payload["user"]) == AUTHOR
            )
        elif event["name"] == "presence":
            assert set(payload) == {"user_id", "online"}
        assert not FORBIDDEN_KEYS & set(all_keys(payload)), event


def test_session_expired_is_an_empty_object(app, connect, users, customer):
    from app.services.expiry import expire_due_sockets

    client = connect(auth={"token": users.token(customer, expires_delta=timedelta(seconds=60))})
    drain(client)
    with app.app_context():
        expire_due_sockets(now=time.time() + 10**6)
    assert heard(client, "session_expired") == [{}]


def test_acknowledgements_have_their_pinned_shape(connect, customer, admin):
    cust, support = connect(customer), connect(admin)
    sent = emit(cust, "send_message", {"body": "x"})
    room_id = sent["message"]["room_id"]
    assert set(sent) == {"ok", "message"}
    check_message(sent["message"])
    rooms = emit(cust, "list_rooms", {})
    assert set(rooms) == {"ok", "rooms", "next"}
    check_room(rooms["rooms"][0])
    history = emit(cust, "history", {"room_id": room_id})
    assert set(history) == {"ok", "messages", "has_more"}
    assert emit(
        support, "mark_read", {"room_id": room_id, "message_id": sent["message"]["id"]}
    ) == {"ok": True}
    assert emit(cust, "typing", {"room_id": room_id, "is_typing": True}) == {"ok": True}
    status = emit(support, "set_status", {"room_id": room_id, "status": "resolved"})
    assert set(status) == {"ok", "room"}
    check_room(status["room"], staff=True)
    error = emit(cust, "history", {"room_id": "nope"})
    assert set(error) == {"ok", "error"}
    assert error["error"] == {
        "code": "validation_error",
        "message": error["error"]["message"],
        "field": "room_id",  # the first field that failed (PROTOCOL, Error)
    }
    refused = emit(cust, "history", {"room_id": room_id + 1000})
    assert set(refused["error"]) == {"code", "message"}, "only validation names a field"
