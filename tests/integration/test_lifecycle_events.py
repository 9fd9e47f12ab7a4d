"""A client cannot run the server's lifecycle handlers by naming them as events.

python-socketio hands `42/chat,["disconnect"]` or `42/chat,["connect", …]` from a
connected client to the namespace like any other event. Sent by a client they are
unknown events: answered `not_found`, and nothing changes.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from tests.conftest import drain, emit, heard

LIFECYCLE = ["disconnect", "connect"]


def lifecycle_payload(name, users, victim):
    """What an attacker sends: `connect` carries another user's token."""
    return {"token": users.token(victim)} if name == "connect" else None


@pytest.mark.parametrize("name", LIFECYCLE)
@pytest.mark.parametrize("role", ["customer", "admin"])
def test_lifecycle_event_from_a_client_is_unknown_and_changes_nothing(
    app, users, connect, name, role
):
    attacker = users.make(role)
    victim = users.make("customer")
    watcher = users.make("customer" if role == "admin" else "admin")
    listening = connect(watcher)
    sock = connect(attacker)
    drain(listening, sock)

    ack = emit(sock, name, lifecycle_payload(name, users, victim))

    assert ack == {"ok": False, "error": {"code": "not_found", "message": "Unknown event."}}
    assert sock.is_connected("/chat")
    registry = app.extensions["chat_registry"]
    assert len(registry.sids_of(attacker.id)) == 1, "the socket is still known"
    assert registry.sids_of(victim.id) == set(), "nobody connected as the victim"
    assert heard(listening, "presence") == [], "no presence change was broadcast"
    assert heard(sock, "presence") == []


@pytest.mark.parametrize("name", LIFECYCLE)
@pytest.mark.parametrize("role", ["customer", "admin"])
def test_expiry_still_closes_a_socket_that_sent_a_lifecycle_event(app, users, connect, name, role):
    from app.services.expiry import expire_due_sockets

    attacker, victim = users.make(role), users.make("customer")
    sock = connect(auth={"token": users.token(attacker, expires_delta=timedelta(seconds=60))})
    emit(sock, name, lifecycle_payload(name, users, victim))
    drain(sock)

    with app.app_context():
        assert expire_due_sockets(now=time.time() + 120) == 1

    assert heard(sock, "session_expired") == [{}]
    assert not sock.is_connected("/chat")


@pytest.mark.parametrize("name", LIFECYCLE)
@pytest.mark.parametrize("role", ["customer", "admin"])
def test_logout_still_closes_a_socket_that_sent_a_lifecycle_event(
    app, http, users, connect, name, role
):
    attacker, victim = users.make(role), users.make("customer")
    token = users.token(attacker)
    sock = connect(auth={"token": token})
    emit(sock, name, lifecycle_payload(name, users, victim))
    drain(sock)

    response = http.post("/api/auth/logout", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 204
    assert heard(sock, "session_expired") == [{}]
    assert not sock.is_connected("/chat")


@pytest.mark.parametrize("role", ["customer", "admin"])
def test_connect_event_with_another_users_token_joins_no_channel_of_theirs(
    users, connect, admin, role
):
    attacker = users.make(role)
    victim = users.make("customer")
    victim_sock = connect(victim)
    assert emit(victim_sock, "send_message", {"body": "my first message"})["ok"]
    support = connect(admin)
    sock = connect(attacker)
    room_id = emit(victim_sock, "list_rooms")["rooms"][0]["id"]

    emit(sock, "connect", {"token": users.token(victim)})
    drain(sock, victim_sock, support)
    emit(support, "send_message", {"room_id": room_id, "body": "private answer"})
    emit(victim_sock, "typing", {"room_id": room_id, "is_typing": True})

    bodies = [m["body"] for m in heard(victim_sock, "new_message")]
    assert bodies == ["private answer"], "the victim's channel works"
    attacker_heard = heard(sock, "new_message")
    if role == "customer":
        assert attacker_heard == [], "nothing of the victim's room reached the attacker"
        assert heard(sock, "typing") == []
    else:  # an admin hears every room anyway: once, through `admins`, never twice
        assert [m["body"] for m in attacker_heard] == ["private answer"]


def test_a_connect_is_told_apart_by_its_environ_whatever_the_library_counts(
    app, connect, users, customer, monkeypatch
):
    """python-socketio before 5.18 counts a socket as connected while its connect
    handler runs. The namespace must not take the real connect for a client's event
    then: a socket without a valid token is refused, and one with a token is served."""
    from app.extensions import socketio

    monkeypatch.setattr(socketio.server.manager, "is_connected", lambda sid, namespace: True)
    anonymous = connect(auth={"token": "not a token"})
    assert not anonymous.is_connected("/chat")
    sock = connect(auth={"token": users.token(customer)})
    assert sock.is_connected("/chat")
    assert emit(sock, "send_message", {"body": "served"})["ok"]
