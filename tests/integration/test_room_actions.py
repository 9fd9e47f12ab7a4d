"""Read marks, typing, status, presence, rate limits and ending sessions, over /chat."""

from __future__ import annotations

import time

import pytest

from tests.conftest import drain, emit, heard
from tests.live import wait_for


def events_of(client):
    return [(e["name"], e["args"][0] if e["args"] else None) for e in client.get_received("/chat")]


@pytest.fixture
def room(connect, customer):
    """A customer's room with two messages from the customer."""
    client = connect(customer)
    first = emit(client, "send_message", {"body": "one"})["message"]
    second = emit(client, "send_message", {"body": "two"})["message"]
    client.disconnect(namespace="/chat")
    return {"id": first["room_id"], "messages": [first["id"], second["id"]]}


def test_admin_mark_read_clears_unread_and_tells_the_customer(connect, customer, admin, room):
    cust, support, other_admin_tab = connect(customer), connect(admin), connect(admin)
    drain(cust, support, other_admin_tab)

    ack = emit(support, "mark_read", {"room_id": room["id"], "message_id": room["messages"][1]})

    assert ack == {"ok": True}
    expected = {"room_id": room["id"], "user_id": admin.id, "message_id": room["messages"][1]}
    assert heard(cust, "read") == [expected]
    updated = heard(other_admin_tab, "room_updated")
    assert [r["unread_count"] for r in updated] == [0]
    assert emit(support, "list_rooms")["rooms"][0]["unread_count"] == 0


def test_mark_read_never_moves_backwards(connect, customer, admin, room):
    cust, support = connect(customer), connect(admin)
    emit(support, "mark_read", {"room_id": room["id"], "message_id": room["messages"][1]})
    drain(cust, support)
    ack = emit(support, "mark_read", {"room_id": room["id"], "message_id": room["messages"][0]})
    assert ack == {"ok": True}
    assert cust.get_received("/chat") == []
    assert emit(support, "list_rooms")["rooms"][0]["unread_count"] == 0


def test_customer_mark_read_is_heard_by_admins_not_by_the_customer(connect, customer, admin, room):
    support = connect(admin)
    reply = emit(support, "send_message", {"room_id": room["id"], "body": "answer"})["message"]
    cust = connect(customer)
    assert emit(cust, "list_rooms")["rooms"][0]["unread_count"] == 1
    drain(cust, support)
    assert emit(cust, "mark_read", {"room_id": room["id"], "message_id": reply["id"]})["ok"]
    assert heard(support, "read") == [
        {"room_id": room["id"], "user_id": customer.id, "message_id": reply["id"]}
    ]
    assert heard(cust, "read") == []
    assert emit(cust, "list_rooms")["rooms"][0]["unread_count"] == 0


def test_mark_read_of_a_message_from_another_room_is_not_found(
    connect, customer, other_customer, room
):
    foreign = emit(connect(other_customer), "send_message", {"body": "x"})["message"]
    ack = emit(connect(customer), "mark_read", {"room_id": room["id"], "message_id": foreign["id"]})
    assert ack["error"]["code"] == "not_found"


def test_typing_reaches_everyone_in_the_room_but_the_typists_sockets(
    connect, customer, other_customer, admin, room
):
    tab1, tab2 = connect(customer), connect(customer)
    support, stranger = connect(admin), connect(other_customer)
    drain(tab1, tab2, support, stranger)

    assert emit(tab1, "typing", {"room_id": room["id"], "is_typing": True}) == {"ok": True}

    expected = {
        "room_id": room["id"],
        "user": {"id": customer.id, "name": "Carl Customer", "role": "customer"},
        "is_typing": True,
    }
    assert heard(support, "typing") == [expected]
    assert tab1.get_received("/chat") == [] and tab2.get_received("/chat") == []
    assert stranger.get_received("/chat") == []

    assert emit(support, "typing", {"room_id": room["id"], "is_typing": False})["ok"]
    assert [t["user"]["id"] for t in heard(tab2, "typing")] == [admin.id]
    assert heard(support, "typing") == []


def test_set_status_by_admin_is_heard_by_both_sides(connect, customer, admin, room):
    cust, support = connect(customer), connect(admin)
    drain(cust, support)
    ack = emit(support, "set_status", {"room_id": room["id"], "status": "resolved"})
    assert ack["ok"] and ack["room"]["status"] == "resolved"
    assert [r["status"] for r in heard(cust, "room_updated")] == ["resolved"]
    assert [r["status"] for r in heard(support, "room_updated")] == ["resolved"]
    emit(cust, "send_message", {"body": "one more thing"})
    assert emit(support, "list_rooms")["rooms"][0]["status"] == "open"


def test_set_status_from_a_customer_is_forbidden_or_not_found(
    connect, customer, other_customer, room
):
    own = emit(connect(customer), "set_status", {"room_id": room["id"], "status": "resolved"})
    foreign = emit(
        connect(other_customer), "set_status", {"room_id": room["id"], "status": "resolved"}
    )
    assert own["error"]["code"] == "forbidden"
    assert foreign["error"]["code"] == "not_found"


def test_presence_of_customers_and_admins(connect, customer, admin, room):
    support = connect(admin)
    drain(support)
    tab1 = connect(customer)
    assert heard(tab1, "presence") == [{"admins_online": True}]
    support_heard = events_of(support)
    assert ("presence", {"user_id": customer.id, "online": True}) in support_heard
    assert any(n == "room_updated" and p["customer_online"] for n, p in support_heard)

    tab2 = connect(customer)  # a second tab is not news to the admins
    assert events_of(support) == []
    tab1.disconnect(namespace="/chat")
    assert events_of(support) == []
    tab2.disconnect(namespace="/chat")
    support_heard = events_of(support)
    assert ("presence", {"user_id": customer.id, "online": False}) in support_heard

    watcher = connect(customer)
    drain(watcher)
    support.disconnect(namespace="/chat")
    assert heard(watcher, "presence") == [{"admins_online": False}]
    connect(admin)
    assert heard(watcher, "presence") == [{"admins_online": True}]


def test_customer_without_admins_hears_admins_offline(connect, customer):
    assert heard(connect(customer), "presence") == [{"admins_online": False}]


def test_rate_limit_answers_rate_limited_and_spares_other_users(
    app, connect, customer, users, monkeypatch
):
    monkeypatch.setitem(app.config, "CHAT_RATE_LIMIT", (5, 60))
    client, other = connect(customer), connect(users.make("customer"))
    answers = [emit(client, "send_message", {"body": f"m{i}"}) for i in range(7)]
    assert [a["ok"] for a in answers] == [True] * 5 + [False] * 2
    assert answers[5]["error"]["code"] == "rate_limited"
    assert emit(other, "send_message", {"body": "not slowed"})["ok"] is True
    # the limit comes before the payload is read
    assert emit(client, "send_message", {})["error"]["code"] == "rate_limited"


def test_the_send_window_slides(app, connect, customer, monkeypatch):
    """Past the limit a send is refused until the window has moved on; then it goes."""
    monkeypatch.setitem(app.config, "CHAT_RATE_LIMIT", (2, 1))
    client = connect(customer)
    answers = [emit(client, "send_message", {"body": f"w{i}"})["ok"] for i in range(3)]
    assert answers == [True, True, False]
    assert wait_for(
        lambda: emit(client, "send_message", {"body": "later", "client_id": "l"})["ok"],
        timeout=5,
        interval=0.2,
    ), "the window moved on within 5 s"


def test_expired_token_gets_session_expired_and_is_disconnected(app, connect, users, customer):
    from app.services.expiry import expire_due_sockets

    soon = connect(auth={"token": users.token(customer, expires_delta=_seconds(60))})
    later = connect(customer)
    drain(soon, later)
    with app.app_context():
        assert expire_due_sockets(now=time.time() + 120) == 1
    assert heard(soon, "session_expired") == [{}]
    assert not soon.is_connected("/chat")
    assert later.is_connected("/chat")


def test_logout_revokes_the_token_and_closes_its_sockets(app, http, connect, users, customer):
    token = users.token(customer)
    doomed, other_token = connect(auth={"token": token}), connect(customer)
    drain(doomed, other_token)

    response = http.post("/api/auth/logout", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 204
    assert heard(doomed, "session_expired") == [{}]
    assert not doomed.is_connected("/chat")
    assert other_token.is_connected("/chat")
    assert not connect(auth={"token": token}).is_connected("/chat")
    assert http.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def _seconds(n):
    from datetime import timedelta

    return timedelta(seconds=n)


def test_each_side_learns_how_far_the_other_has_read_from_the_room(connect, customer, admin, room):
    """Room.seen_up_to (docs/PROTOCOL.md): for a customer the support team's read mark,
    for admins the customer's; every builder of a Room carries it (list, read, send)."""
    cust, support = connect(customer), connect(admin)
    second = room["messages"][1]
    assert emit(support, "list_rooms")["rooms"][0]["seen_up_to"] is None
    assert emit(cust, "list_rooms")["rooms"][0]["seen_up_to"] is None

    emit(support, "mark_read", {"room_id": room["id"], "message_id": second})
    assert emit(cust, "list_rooms")["rooms"][0]["seen_up_to"] == second
    assert emit(support, "list_rooms")["rooms"][0]["seen_up_to"] is None  # the customer's

    reply = emit(support, "send_message", {"room_id": room["id"], "body": "hi"})["message"]
    drain(cust, support)
    emit(cust, "mark_read", {"room_id": room["id"], "message_id": reply["id"]})
    assert [r["seen_up_to"] for r in heard(support, "room_updated")] == [reply["id"]]
    emit(cust, "send_message", {"body": "thanks"})
    assert [r["seen_up_to"] for r in heard(support, "room_updated")] == [reply["id"]]
    assert emit(support, "list_rooms")["rooms"][0]["seen_up_to"] == reply["id"]


def test_the_inbox_filters_rooms_by_unread_and_counts_each_filter(
    connect, customer, other_customer, admin, room
):
    support = connect(admin)
    other = emit(connect(other_customer), "send_message", {"body": "me too"})["message"]
    emit(support, "mark_read", {"room_id": other["room_id"], "message_id": other["id"]})
    emit(support, "set_status", {"room_id": other["room_id"], "status": "resolved"})

    unread = emit(support, "list_rooms", {"unread": True})["rooms"]
    assert [r["id"] for r in unread] == [room["id"]]
    assert len(emit(support, "list_rooms", {"unread": False})["rooms"]) == 2
    counts = emit(support, "inbox_counts", {})
    # the views count open rooms: both were given to the admin, the one member online
    assert counts == {
        "ok": True,
        "counts": {
            "all": 2,
            "open": 1,
            "resolved": 1,
            "unread": 1,
            "views": {"mine": 1, "unassigned": 0, "all": 1},
        },
    }
    # a customer counts only their own room, and its unread side is theirs
    assert emit(connect(customer), "inbox_counts")["counts"] == {
        "all": 1,
        "open": 1,
        "resolved": 0,
        "unread": 0,
    }
    bad = emit(support, "list_rooms", {"unread": "yes"})
    assert bad["ok"] is False and bad["error"]["code"] == "validation_error"


def test_the_customer_panel_tells_an_admin_who_this_is_and_nobody_else(
    app, connect, customer, other_customer, admin, room
):
    support = connect(admin)
    profile = emit(support, "customer_profile", {"room_id": room["id"]})["profile"]
    assert profile["customer"]["email"] == customer.email
    assert profile["message_count"] == 2 and profile["status"] == "open"
    assert profile["online"] is False and profile["last_seen_at"] is not None  # left at setup
    assert profile["signed_up_at"] <= profile["first_contact_at"] <= profile["last_seen_at"]

    tab = connect(customer)  # online now: no "last seen"
    now = emit(support, "customer_profile", {"room_id": room["id"]})["profile"]
    assert now["online"] is True and now["last_seen_at"] is None
    tab.disconnect(namespace="/chat")
    later = emit(support, "customer_profile", {"room_id": room["id"]})["profile"]
    assert later["last_seen_at"] > profile["last_seen_at"]

    own = emit(connect(customer), "customer_profile", {"room_id": room["id"]})
    assert own["error"]["code"] == "forbidden"
    foreign = emit(connect(other_customer), "customer_profile", {"room_id": room["id"]})
    assert foreign["error"]["code"] == "not_found"
    assert emit(support, "customer_profile", {"room_id": "1"})["error"]["code"] == (
        "validation_error"
    )
