"""The pages renew their access cookie from the HttpOnly refresh cookie."""

from __future__ import annotations

from flask_jwt_extended import decode_token

from tests.conftest import emit


def refresh_cookie(app, users, http, account) -> str:
    """Give the browser `http` a refresh cookie (and its CSRF twin); returns the CSRF value."""
    token = users.token(account, kind="refresh")
    with app.app_context():
        csrf_value = decode_token(token)["csrf"]
    http.set_cookie("refresh_token_cookie", token, domain="localhost")
    http.set_cookie("csrf_refresh_token", csrf_value, domain="localhost")
    return csrf_value


def test_cookie_refresh_needs_the_csrf_header(app, users, http, customer):
    refresh_cookie(app, users, http, customer)
    response = http.post("/api/auth/refresh")
    assert response.status_code == 401
    assert response.json["error"]["code"] == "unauthorized"
    assert http.get_cookie("access_token_cookie") is None


def test_cookie_refresh_sets_a_new_access_cookie_that_opens_a_socket(
    app, users, http, connect, customer
):
    csrf_value = refresh_cookie(app, users, http, customer)
    response = http.post("/api/auth/refresh", headers={"X-CSRF-TOKEN": csrf_value})
    assert response.status_code == 200
    assert set(response.json) == {"access_token", "refresh_token", "token_type", "expires_in"}
    cookie = http.get_cookie("access_token_cookie")
    assert cookie is not None and cookie.http_only
    client = connect(headers={"Origin": "http://localhost"}, flask_client=http)
    assert client.is_connected("/chat")
    assert emit(client, "list_rooms")["rooms"][0]["customer"]["id"] == customer.id


def test_bearer_refresh_sets_no_cookie(users, http, customer):
    token = users.token(customer, kind="refresh")
    response = http.post("/api/auth/refresh", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
