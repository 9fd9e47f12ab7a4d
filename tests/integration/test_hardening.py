"""Smaller holes the security review found: NUL characters, forged cursors, sockets per
user, namespaces, CORS credentials, response headers, short secrets, shared ports."""

from __future__ import annotations

import base64

import pytest

from config import ConfigError, load_config
from tests.conftest import emit

NUL = "a\x00b"


def cursor(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def assert_validation_error(response):
    assert response.status_code == 400, response.get_data(True)
    assert response.json["error"]["code"] == "validation_error"


# --- item 7: one string type, bounded cursors ----------------------------------------


@pytest.mark.parametrize(
    "event, payload",
    [
        ("send_message", {"body": "hi", "client_id": NUL}),
        ("send_message", {"body": NUL}),
        ("list_rooms", {"q": NUL}),
        ("list_rooms", {"before": NUL}),
    ],
)
def test_nul_in_any_socket_field_is_a_validation_error(connect, admin, customer, event, payload):
    for account in (customer, admin):
        ack = emit(connect(account), event, payload)
        assert ack["ok"] is False and ack["error"]["code"] == "validation_error", ack


def test_nul_in_http_fields_is_a_validation_error(http, users, customer):
    token = users.token(customer)
    rooms = http.get("/api/rooms?q=%00", headers={"Authorization": f"Bearer {token}"})
    assert_validation_error(rooms)
    register = {"email": f"x{NUL}@example.com", "password": "long enough", "name": "X"}
    assert_validation_error(http.post("/api/auth/register", json=register))
    login = {"email": f"{customer.email}\x00", "password": customer.password}
    assert_validation_error(http.post("/api/auth/login", json=login))
    password = {"email": customer.email, "password": f"pass{NUL}word"}
    assert_validation_error(http.post("/api/auth/login", json=password))


@pytest.mark.parametrize(
    "raw",
    [
        "2026-11-30T10:00:00|99999999999999999999",  # past any id the database holds
        "2026-11-30T10:00:00|0",
        "2026-11-30T10:00:00|-5",
        "2026-11-30T10:00:00+05:00|3",  # a time zone this server never writes
        "not a time|3",
        "2026-11-30T10:00:00",
    ],
)
def test_forged_cursor_is_a_validation_error(http, connect, users, admin, raw):
    ack = emit(connect(admin), "list_rooms", {"before": cursor(raw)})
    assert ack["ok"] is False and ack["error"]["code"] == "validation_error", ack
    token = users.token(admin)
    response = http.get(
        f"/api/rooms?before={cursor(raw)}", headers={"Authorization": f"Bearer {token}"}
    )
    assert_validation_error(response)


# --- item 6: sockets per user, /chat only ---------------------------------------------


def test_sockets_per_user_are_capped(app, connect, monkeypatch, customer, other_customer):
    monkeypatch.setitem(app.config, "CHAT_MAX_SOCKETS_PER_USER", 3)
    tabs = [connect(customer) for _ in range(3)]
    assert all(tab.is_connected("/chat") for tab in tabs)

    refused = connect(customer)
    assert not refused.is_connected("/chat")
    assert len(app.extensions["chat_registry"].sids_of(customer.id)) == 3
    assert connect(other_customer).is_connected("/chat"), "other users are not affected"

    tabs[0].disconnect(namespace="/chat")
    assert connect(customer).is_connected("/chat"), "a closed tab frees its place"


@pytest.mark.parametrize("namespace", ["/", "/other"])
def test_only_the_chat_namespace_accepts_connections(app, users, customer, namespace):
    from app.extensions import socketio

    client = socketio.test_client(app, namespace=namespace, auth={"token": users.token(customer)})
    assert not client.is_connected(namespace)


# --- item 8: CORS, headers, secrets, ports ----------------------------------------------


def test_engineio_never_allows_credentials_cross_origin(http):
    response = http.get(
        "/socket.io/?EIO=4&transport=polling", headers={"Origin": "https://evil.example"}
    )
    assert response.headers.get("Access-Control-Allow-Credentials") != "true"


def test_api_answers_are_never_cached(http, users, customer):
    token = users.token(customer)
    assert (
        http.get("/api/me", headers={"Authorization": f"Bearer {token}"}).headers["Cache-Control"]
        == "no-store"
    )
    login = http.post("/api/auth/login", json={"email": customer.email, "password": "x" * 8})
    assert login.headers["Cache-Control"] == "no-store"


def test_hsts_is_sent_in_production_only(http, app, monkeypatch):
    assert "Strict-Transport-Security" not in http.get("/login").headers
    monkeypatch.setenv("SECRET_KEY", "s" * 32)
    monkeypatch.setenv("JWT_SECRET_KEY", "j" * 32)
    production = load_config("production")
    monkeypatch.setitem(app.config, "HSTS", production.HSTS)
    header = http.get("/login").headers["Strict-Transport-Security"]
    assert header.startswith("max-age=") and int(header.split("=")[1].split(";")[0]) >= 15552000


@pytest.mark.parametrize("name", ["SECRET_KEY", "JWT_SECRET_KEY"])
def test_production_refuses_short_secrets(monkeypatch, name):
    monkeypatch.setenv("SECRET_KEY", "s" * 32)
    monkeypatch.setenv("JWT_SECRET_KEY", "j" * 32)
    monkeypatch.setenv(name, "x" * 31)
    with pytest.raises(ConfigError, match=f"{name} must be at least 32 bytes"):
        load_config("production")
