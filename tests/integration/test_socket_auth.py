"""Who may open a /chat socket: every way of proving it, and every way of failing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.extensions import db
from app.models import User
from tests.conftest import emit, forged, heard


def test_forged_helper_makes_a_token_the_server_accepts(app, connect, customer):
    # Guards the failure cases below: they differ from this one in one thing only.
    assert connect(auth={"token": forged(app, customer)}).is_connected("/chat")


@pytest.mark.parametrize(
    "make_auth",
    [
        pytest.param(lambda app, users, acc: None, id="nothing"),
        pytest.param(lambda app, users, acc: {}, id="empty-auth"),
        pytest.param(lambda app, users, acc: {"token": ""}, id="empty-token"),
        pytest.param(lambda app, users, acc: {"token": 12345}, id="token-not-a-string"),
        pytest.param(lambda app, users, acc: {"token": "not.a.jwt"}, id="garbage"),
        pytest.param(
            lambda app, users, acc: {"token": forged(app, acc, key="k" * 40)}, id="wrong-key"
        ),
        pytest.param(
            lambda app, users, acc: {"token": forged(app, acc, algorithm="none")}, id="alg-none"
        ),
        pytest.param(
            lambda app, users, acc: {"token": forged(app, acc, drop=("exp",))}, id="no-exp"
        ),
        pytest.param(
            lambda app, users, acc: {"token": forged(app, acc, type="refresh")},
            id="forged-refresh-type",
        ),
        pytest.param(
            lambda app, users, acc: {"token": users.token(acc, kind="refresh")}, id="refresh-token"
        ),
        pytest.param(
            lambda app, users, acc: {
                "token": users.token(acc, expires_delta=timedelta(seconds=-1))
            },
            id="expired",
        ),
        pytest.param(
            lambda app, users, acc: {"token": forged(app, acc, sub="999999")}, id="unknown-user"
        ),
        pytest.param(
            lambda app, users, acc: {"token": forged(app, acc, sub="abc")}, id="sub-not-an-id"
        ),
        pytest.param(
            lambda app, users, acc: {"token": users.token(acc)[:-4] + "AAAA"},
            id="tampered-signature",
        ),
    ],
)
def test_bad_auth_payload_is_refused(app, users, connect, customer, make_auth):
    client = connect(auth=make_auth(app, users, customer))
    assert not client.is_connected("/chat")
    assert app.extensions["chat_registry"].sids_of(customer.id) == set()


def test_token_of_a_deleted_user_is_refused(app, users, connect, customer):
    token = users.token(customer)
    with app.app_context():
        db.session.delete(db.session.get(User, customer.id))
        db.session.commit()
    assert not connect(auth={"token": token}).is_connected("/chat")


def test_bearer_header_is_accepted(users, connect, customer):
    client = connect(headers={"Authorization": f"Bearer {users.token(customer)}"})
    assert client.is_connected("/chat")
    assert emit(client, "list_rooms")["ok"] is True


@pytest.mark.parametrize("header", ["Basic abc", "Bearer", "Bearer ", "Token x"])
def test_malformed_authorization_header_is_refused(connect, header):
    assert not connect(headers={"Authorization": header}).is_connected("/chat")


@pytest.mark.parametrize(
    "headers, accepted",
    [
        ({"Origin": "http://localhost"}, True),
        ({"Sec-Fetch-Site": "same-origin"}, True),
        ({"Origin": "https://evil.example"}, False),
        ({"Origin": "http://localhost.evil.example"}, False),
        ({"Origin": "null"}, False),
        ({"Sec-Fetch-Site": "cross-site"}, False),
        ({}, False),
    ],
)
def test_access_cookie_counts_only_from_our_own_origin(
    app, users, connect, customer, headers, accepted
):
    http = app.test_client()  # a browser holding the HTML login's HttpOnly cookie
    http.set_cookie("access_token_cookie", users.token(customer), domain="localhost")
    client = connect(headers=headers, flask_client=http)
    assert client.is_connected("/chat") is accepted


def test_refused_connection_leaves_nothing_behind(app, connect, customer, admin):
    support = connect(admin)
    support.get_received("/chat")
    connect(auth={"token": "garbage"})
    assert support.get_received("/chat") == []
    assert app.extensions["chat_registry"].online([customer.id]) == set()


def test_connect_handler_error_refuses_and_runs_once(app, connect, customer, monkeypatch):
    """A crash inside the handler (even a TypeError, which Flask-SocketIO would answer
    by calling the handler again without `auth`) must refuse the socket, once."""
    import app.sockets.namespace as sockets

    calls = []

    def broken(auth, environ):
        calls.append(auth)
        raise TypeError("injected failure inside the connect handler")

    monkeypatch.setattr(sockets, "authenticate_handshake", broken)
    client = connect(customer)
    assert not client.is_connected("/chat")
    assert len(calls) == 1


def test_registry_failure_refuses_the_socket(app, connect, customer, monkeypatch):
    registry = app.extensions["chat_registry"]

    def explode(conn):
        raise RuntimeError("injected registry outage")

    monkeypatch.setattr(registry, "add", explode)
    assert not connect(customer).is_connected("/chat")


def test_identity_is_per_connection(connect, customer, other_customer):
    a, b = connect(customer), connect(other_customer)
    ack_a = emit(a, "send_message", {"body": "from a"})
    ack_b = emit(b, "send_message", {"body": "from b"})
    assert ack_a["message"]["author"]["id"] == customer.id
    assert ack_b["message"]["author"]["id"] == other_customer.id
    assert ack_a["message"]["room_id"] != ack_b["message"]["room_id"]


def test_disconnect_forgets_the_socket(app, connect, customer):
    registry = app.extensions["chat_registry"]
    first, second = connect(customer), connect(customer)
    assert len(registry.sids_of(customer.id)) == 2
    first.disconnect(namespace="/chat")
    assert len(registry.sids_of(customer.id)) == 1
    second.disconnect(namespace="/chat")
    assert registry.online([customer.id]) == set()


def test_deleting_an_account_closes_its_sockets(app, connect, users, customer, other_customer):
    """A socket keeps the identity it connected with, so an account's end must end its
    sockets: every one, whichever login opened it."""
    from app.services.users import delete_user

    tabs = [connect(customer), connect(customer)]
    bystander = connect(other_customer)
    token = users.token(customer)
    with app.app_context():
        delete_user(customer.id)
        assert db.session.get(User, customer.id) is None
    for tab in tabs:
        assert heard(tab, "session_expired") == [{}]
        assert not tab.is_connected("/chat")
    assert not connect(auth={"token": token}).is_connected("/chat")
    assert bystander.is_connected("/chat")


def test_failure_after_registration_leaves_nobody_online(app, connect, customer, monkeypatch):
    import app.sockets.namespace as sockets

    def explode(*args, **kwargs):
        raise RuntimeError("injected failure after the socket was registered")

    monkeypatch.setattr(sockets.housekeeping, "start", explode)
    assert not connect(customer).is_connected("/chat")
    assert app.extensions["chat_registry"].online([customer.id]) == set()
