"""The JSON API exactly as PROTOCOL.md says: bodies, status codes, and every error."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.extensions import db
from app.models import User
from tests.conftest import emit, forged
from tests.integration.test_event_shapes import ROOM as ROOM_KEYS  # the one pinned Room shape

USER_KEYS = {"id", "name", "email", "role"}


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def assert_error(response, status, code):
    assert response.status_code == status, response.get_data(True)
    body = response.get_json()
    assert set(body) == {"error"}
    # `field` names the first failing field, on validation errors (PROTOCOL, Error)
    expected = {"code", "message"} | ({"field"} if "field" in body["error"] else set())
    assert set(body["error"]) == expected
    assert "field" not in body["error"] or code in ("validation_error", "conflict")
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


def test_register_answers_201_with_the_user(http):
    response = http.post(
        "/api/auth/register",
        json={"email": "New@Example.com", "password": "long enough", "name": "Nina"},
    )
    assert response.status_code == 201
    user = response.get_json()["user"]
    assert set(user) == USER_KEYS
    assert (user["email"], user["name"], user["role"]) == ("new@example.com", "Nina", "customer")


@pytest.mark.parametrize(
    "body",
    [
        {"email": "bad", "password": "long enough", "name": "N"},
        {"email": "a@b.co", "password": "short", "name": "N"},
        {"email": "a@b.co", "password": "long enough", "name": "  "},
        {"email": "a@b.co", "password": "long enough"},
        {"email": ["a@b.co"], "password": "long enough", "name": "N"},
        {"email": "a@b.co", "password": 12345678, "name": "N"},
        "not an object",
        None,
    ],
)
def test_register_refuses_bad_input_with_validation_error(http, body):
    response = http.post("/api/auth/register", json=body)
    assert_error(response, 400, "validation_error")


def test_register_with_a_non_json_body_is_a_validation_error(http):
    response = http.post("/api/auth/register", data="email=x", content_type="text/plain")
    assert_error(response, 400, "validation_error")


def test_register_with_a_taken_email_in_any_case_is_a_conflict(http):
    http.post(
        "/api/auth/register", json={"email": "A@x.com", "password": "long enough", "name": "A"}
    )
    response = http.post(
        "/api/auth/register", json={"email": "a@X.com", "password": "long enough", "name": "B"}
    )
    assert_error(response, 409, "conflict")


def test_login_answers_tokens_and_sets_no_cookie(http, customer):
    response = http.post(
        "/api/auth/login", json={"email": customer.email, "password": customer.password}
    )
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in", "user"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    assert body["user"]["id"] == customer.id
    assert response.headers.getlist("Set-Cookie") == []
    assert http.get("/api/me", headers=bearer(body["access_token"])).status_code == 200


def test_login_failures_look_the_same(http, customer):
    wrong = http.post("/api/auth/login", json={"email": customer.email, "password": "x" * 9})
    unknown = http.post("/api/auth/login", json={"email": "who@x.com", "password": "x" * 9})
    assert_error(wrong, 401, "unauthorized")
    assert_error(unknown, 401, "unauthorized")
    assert wrong.get_json() == unknown.get_json()


def test_refresh_gives_a_working_access_token(http, users, customer):
    response = http.post("/api/auth/refresh", headers=bearer(users.token(customer, "refresh")))
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert http.get("/api/me", headers=bearer(body["access_token"])).get_json()["user"]["id"] == (
        customer.id
    )


def test_refresh_refuses_an_access_token(http, users, customer):
    assert_error(
        http.post("/api/auth/refresh", headers=bearer(users.token(customer))), 401, "unauthorized"
    )


def test_me_answers_the_user(http, users, customer):
    body = http.get("/api/me", headers=bearer(users.token(customer))).get_json()
    assert body == {
        "user": {
            "id": customer.id,
            "name": customer.name,
            "email": customer.email,
            "role": "customer",
        }
    }


BAD_TOKENS = {
    "garbage": lambda app, users, acc: "not-a-token",
    "wrong-key": lambda app, users, acc: forged(app, acc, key="k" * 40),
    "alg-none": lambda app, users, acc: forged(app, acc, algorithm="none"),
    "no-exp": lambda app, users, acc: forged(app, acc, drop=("exp",)),
    "expired": lambda app, users, acc: users.token(acc, expires_delta=timedelta(seconds=-1)),
    "refresh": lambda app, users, acc: users.token(acc, "refresh"),
}


@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
def test_bad_tokens_are_refused_on_http(app, http, users, customer, kind):
    token = BAD_TOKENS[kind](app, users, customer)
    assert_error(http.get("/api/me", headers=bearer(token)), 401, "unauthorized")
    assert_error(http.get("/api/rooms", headers=bearer(token)), 401, "unauthorized")


def test_missing_token_and_deleted_user_are_refused(app, http, users, customer):
    assert_error(http.get("/api/me"), 401, "unauthorized")
    token = users.token(customer)
    with app.app_context():
        db.session.delete(db.session.get(User, customer.id))
        db.session.commit()
    assert_error(http.get("/api/me", headers=bearer(token)), 401, "unauthorized")


def test_customer_rooms_over_http_never_create_a_room(http, users, connect, customer):
    token = users.token(customer)
    assert http.get("/api/rooms", headers=bearer(token)).get_json() == {"rooms": [], "next": None}
    assert http.get("/api/rooms", headers=bearer(token)).get_json()["rooms"] == []
    emit(connect(customer), "send_message", {"body": "hi"})
    rooms = http.get("/api/rooms", headers=bearer(token)).get_json()["rooms"]
    assert len(rooms) == 1 and set(rooms[0]) == ROOM_KEYS
    assert rooms[0]["customer"]["id"] == customer.id


def test_admin_rooms_filters_and_pages(http, users, connect, admin):
    names = ["Zed 100%", "Yan", "Xia"]
    for name in names:
        emit(connect(users.make("customer", name=name)), "send_message", {"body": "hello"})
    token = users.token(admin)
    first = http.get("/api/rooms?limit=2", headers=bearer(token)).get_json()
    assert [r["customer"]["name"] for r in first["rooms"]] == ["Xia", "Yan"]
    rest = http.get(f"/api/rooms?limit=2&before={first['next']}", headers=bearer(token)).get_json()
    assert [r["customer"]["name"] for r in rest["rooms"]] == ["Zed 100%"] and rest["next"] is None
    found = http.get("/api/rooms?q=%25", headers=bearer(token)).get_json()["rooms"]
    assert [r["customer"]["name"] for r in found] == ["Zed 100%"]
    assert http.get("/api/rooms?status=resolved", headers=bearer(token)).get_json()["rooms"] == []


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=abc", "before=%%%", "status=x"])
def test_bad_room_queries_are_validation_errors(http, users, admin, query):
    response = http.get(f"/api/rooms?{query}", headers=bearer(users.token(admin)))
    assert_error(response, 400, "validation_error")


def test_messages_over_http(http, users, connect, customer, other_customer, admin):
    client = connect(customer)
    ids = [emit(client, "send_message", {"body": f"m{i}"})["message"]["id"] for i in range(3)]
    room_id = emit(client, "list_rooms")["rooms"][0]["id"]
    url = f"/api/rooms/{room_id}/messages"
    own = http.get(url + "?limit=2", headers=bearer(users.token(customer))).get_json()
    assert [m["id"] for m in own["messages"]] == ids[1:] and own["has_more"] is True
    older = http.get(f"{url}?before_id={ids[1]}", headers=bearer(users.token(customer)))
    assert [m["id"] for m in older.get_json()["messages"]] == ids[:1]
    assert http.get(url, headers=bearer(users.token(admin))).status_code == 200
    foreign = http.get(url, headers=bearer(users.token(other_customer)))
    missing = http.get("/api/rooms/999999/messages", headers=bearer(users.token(other_customer)))
    assert_error(foreign, 404, "not_found")
    assert foreign.get_json() == missing.get_json()
    assert_error(http.get(url), 401, "unauthorized")
    for limit in ("0", "201", "x"):
        response = http.get(f"{url}?limit={limit}", headers=bearer(users.token(customer)))
        assert_error(response, 400, "validation_error")


def test_logout_answers_204_and_revokes(http, users, customer):
    token = users.token(customer)
    assert http.post("/api/auth/logout", headers=bearer(token)).status_code == 204
    assert_error(http.get("/api/me", headers=bearer(token)), 401, "unauthorized")
    assert_error(http.post("/api/auth/logout"), 401, "unauthorized")


def test_healthz_and_unknown_paths(http):
    assert http.get("/healthz").get_json() == {"status": "ok"}
    assert_error(http.get("/api/nothing-here"), 404, "not_found")
    assert_error(http.post("/api/me"), 405, "not_found")


def test_oversized_body_is_refused(http):
    response = http.post("/api/auth/register", data="x" * 70_000, content_type="application/json")
    assert_error(response, 413, "validation_error")
