"""Throttles: logins per account and per address, sign-ups per address, a budget for
every socket event, and typing thinned to one state per user and room a second."""

from __future__ import annotations

import time

import pytest

from tests.conftest import drain, emit, heard
from tests.integration.test_pages import csrf_from


@pytest.fixture
def limits(app, monkeypatch):
    """`limits(NAME="COUNT per SECONDS second", ...)` lowers a limit for one test."""

    def lower(**values):
        for name, value in values.items():
            monkeypatch.setitem(app.config, name, value)

    return lower


def login(http, email, password, address="127.0.0.1"):
    return http.post(
        "/api/auth/login",
        json={"email": email, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )


def assert_rate_limited(response):
    assert response.status_code == 429, response.get_data(True)
    assert response.json["error"]["code"] == "rate_limited"
    assert int(response.headers["Retry-After"]) >= 1
    assert "try again in" in response.json["error"]["message"]


def test_failed_logins_lock_the_account_even_for_the_right_password(http, limits, admin, users):
    limits(LOGIN_RATE_LIMIT_ACCOUNT="3 per 60 second")
    for _ in range(3):
        assert login(http, admin.email, "wrong-password").status_code == 401
    assert_rate_limited(login(http, admin.email, admin.password))
    assert_rate_limited(login(http, admin.email.upper(), admin.password))  # same account
    other = users.make("customer")
    assert login(http, other.email, other.password).status_code == 200, "others get in"


def test_a_locked_account_still_lets_its_owner_in_from_an_address_that_has_not_failed(
    http, limits, customer, connect
):
    limits(LOGIN_RATE_LIMIT_ACCOUNT="3 per 60 second")
    for _ in range(3):
        assert login(http, customer.email, "wrong-password", "198.51.100.7").status_code == 401
    stranger = login(http, customer.email, customer.password, "198.51.100.7")
    assert_rate_limited(stranger)  # the failing address is refused, right password or not
    owner = login(http, customer.email, customer.password, "203.0.113.20")
    assert owner.status_code == 200, owner.get_data(True)
    assert connect(auth={"token": owner.json["access_token"]}).is_connected("/chat")
    # Another address that starts failing is locked too, and its next try hashes nothing.
    assert login(http, customer.email, "wrong-password", "203.0.113.21").status_code == 401
    assert_rate_limited(login(http, customer.email, customer.password, "203.0.113.21"))
    # The owner's address has not failed, so it is still let through.
    assert login(http, customer.email, customer.password, "203.0.113.20").status_code == 200


def test_successful_logins_do_not_spend_the_account_budget(http, limits, customer):
    limits(LOGIN_RATE_LIMIT_ACCOUNT="3 per 60 second")
    for _ in range(6):
        assert login(http, customer.email, customer.password).status_code == 200


def test_one_address_cannot_try_many_accounts(http, limits, users):  # not loopback
    limits(LOGIN_RATE_LIMIT_ADDRESS="4 per 60 second")
    accounts = [users.make("customer") for _ in range(5)]
    for account in accounts[:4]:
        assert login(http, account.email, "wrong-password", "10.9.8.7").status_code == 401
    assert_rate_limited(login(http, accounts[4].email, accounts[4].password, "10.9.8.7"))
    ok = login(http, accounts[4].email, accounts[4].password, "10.9.8.6")
    assert ok.status_code == 200, "another address is not slowed"


def sign_up(http, n, address):
    body = {"email": f"new{n}@example.com", "password": "long enough", "name": "N"}
    return http.post("/api/auth/register", json=body, environ_base={"REMOTE_ADDR": address})


def test_sign_ups_are_limited_per_address(http, limits):
    limits(REGISTER_RATE_LIMIT_ADDRESS="2 per 3600 second")
    for n in range(2):
        assert sign_up(http, n, "203.0.113.5").status_code == 201
    assert_rate_limited(sign_up(http, 9, "203.0.113.5"))
    assert sign_up(http, 10, "203.0.113.6").status_code == 201, "another address is not slowed"


def test_loopback_skips_the_per_address_limits_but_not_the_account_limit(http, limits, customer):
    limits(
        REGISTER_RATE_LIMIT_ADDRESS="1 per 3600 second",
        LOGIN_RATE_LIMIT_ADDRESS="1 per 60 second",
        LOGIN_RATE_LIMIT_ACCOUNT="2 per 60 second",
    )
    assert [sign_up(http, n, "127.0.0.1").status_code for n in range(3)] == [201] * 3
    assert login(http, customer.email, "wrong-password").status_code == 401
    assert login(http, customer.email, "wrong-password").status_code == 401
    assert_rate_limited(login(http, customer.email, customer.password))


def test_the_login_form_shares_the_account_counter(http, limits, customer):
    limits(LOGIN_RATE_LIMIT_ACCOUNT="2 per 60 second")
    for _ in range(2):
        assert login(http, customer.email, "wrong-password").status_code == 401
    token = csrf_from(http.get("/login"))
    data = {"email": customer.email, "password": customer.password, "csrf_token": token}
    page = http.post("/login", data=data)
    assert page.status_code == 429
    assert int(page.headers["Retry-After"]) >= 1
    assert "Too many attempts; try again in" in page.get_data(True)
    assert http.get_cookie("access_token_cookie") is None


def test_a_refused_login_is_answered_late(http, limits, customer, app, monkeypatch):
    limits(LOGIN_RATE_LIMIT_ACCOUNT="1 per 60 second")
    monkeypatch.setitem(app.config, "LOGIN_THROTTLE_DELAY", 0.4)
    assert login(http, customer.email, "wrong-password").status_code == 401
    started = time.monotonic()
    assert_rate_limited(login(http, customer.email, "wrong-password"))
    assert time.monotonic() - started >= 0.4


def test_a_throttled_login_hashes_no_password(http, limits, customer, monkeypatch):
    import app.services.users as users_module

    limits(LOGIN_RATE_LIMIT_ACCOUNT="1 per 60 second")
    assert login(http, customer.email, "wrong-password").status_code == 401
    calls = []
    real = users_module.password_matches
    monkeypatch.setattr(users_module, "password_matches", lambda *a: calls.append(1) or real(*a))
    assert_rate_limited(login(http, customer.email, customer.password))
    assert calls == []


# --- socket events --------------------------------------------------------------------


@pytest.mark.parametrize(
    "event, payload",
    [
        ("history", lambda room: {"room_id": room}),
        ("list_rooms", lambda room: {}),
        ("mark_read", lambda room: {"room_id": room, "message_id": 1}),
        ("typing", lambda room: {"room_id": room, "is_typing": True}),
        ("set_status", lambda room: {"room_id": room, "status": "open"}),
    ],
)
def test_every_socket_event_has_a_per_user_budget(
    connect, users, limits, customer, admin, event, payload
):
    cust = connect(customer)
    room = emit(cust, "send_message", {"body": "hello"})["message"]["room_id"]
    support = connect(admin)
    limits(CHAT_EVENT_RATE_LIMIT=(3, 60))
    codes = [emit(support, event, payload(room)).get("error", {}).get("code") for _ in range(5)]
    assert "rate_limited" not in codes[:3]
    assert codes[3:] == ["rate_limited", "rate_limited"]
    other_admin = connect(users.make("admin"))
    assert emit(other_admin, event, payload(room)).get("error", {}).get("code") != "rate_limited"
    assert emit(cust, event, payload(room)).get("error", {}).get("code") != "rate_limited"


def test_typing_flood_is_thinned_to_one_state_a_second(connect, customer, admin):
    cust = connect(customer)
    room = emit(cust, "send_message", {"body": "hello"})["message"]["room_id"]
    support = connect(admin)
    drain(support, cust)

    started = time.monotonic()
    for _ in range(200):  # far beyond any honest typist
        assert emit(cust, "typing", {"room_id": room, "is_typing": True})["ok"] is True
    elapsed = time.monotonic() - started

    states = [e["is_typing"] for e in heard(support, "typing")]
    assert states == [True] * len(states)
    assert 1 <= len(states) <= 1 + int(elapsed / 2.0), "repeats are dropped"


def test_a_quick_stop_is_held_and_then_forwarded(connect, customer, admin):
    cust = connect(customer)
    room = emit(cust, "send_message", {"body": "hello"})["message"]["room_id"]
    support = connect(admin)
    drain(support, cust)

    for state in (True, False, True, False):  # all within a few milliseconds
        emit(cust, "typing", {"room_id": room, "is_typing": state})
    assert [e["is_typing"] for e in heard(support, "typing")] == [True]

    time.sleep(1.3)  # the held change is released when the second is over
    assert [e["is_typing"] for e in heard(support, "typing")] == [False]
