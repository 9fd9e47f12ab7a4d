"""Login sessions end for real: page logout, API logout, and rotating refresh tokens.

Each check looks at the effect (the old token is refused, the socket is closed), not at
a proxy for it (the cookie is gone).
"""

from __future__ import annotations

from datetime import timedelta

from flask_jwt_extended import decode_token

from tests.conftest import drain, emit, heard
from tests.integration.test_pages import csrf_from, log_in


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def cookie_socket(connect, http):
    """A socket authenticated by the page's access cookie, as the page opens it."""
    return connect(headers={"Origin": "http://localhost"}, flask_client=http)


def page_cookies(http) -> tuple[str, str]:
    return http.get_cookie("access_token_cookie").value, http.get_cookie(
        "refresh_token_cookie"
    ).value


def test_page_logout_revokes_both_tokens_and_closes_the_socket(app, http, connect, customer):
    assert log_in(http, customer).status_code == 302
    access, refresh = page_cookies(http)
    sock = cookie_socket(connect, http)
    assert sock.is_connected("/chat")
    drain(sock)

    response = http.post("/logout", data={"csrf_token": csrf_from(http.get("/logout"))})
    assert response.status_code == 302

    assert http.get("/api/me", headers=bearer(access)).status_code == 401
    assert app.test_client().post("/api/auth/refresh", headers=bearer(refresh)).status_code == 401
    browser = app.test_client()  # only the old refresh cookie left
    browser.set_cookie("refresh_token_cookie", refresh, domain="localhost")
    page = browser.get("/chat")
    assert page.status_code == 302 and page.headers["Location"].endswith("/login")
    assert browser.get_cookie("access_token_cookie") is None
    assert heard(sock, "session_expired") == [{}]
    assert not sock.is_connected("/chat")


def test_page_logout_with_an_expired_access_cookie_still_ends_the_session(
    app, http, users, customer
):
    pair = users.session(customer, access_expires=timedelta(seconds=-1))
    http.set_cookie("access_token_cookie", pair["access_token"], domain="localhost")
    http.set_cookie("refresh_token_cookie", pair["refresh_token"], domain="localhost")
    token = csrf_from(http.get("/logout"))
    assert http.post("/logout", data={"csrf_token": token}).status_code == 302
    refreshed = app.test_client().post("/api/auth/refresh", headers=bearer(pair["refresh_token"]))
    assert refreshed.status_code == 401


def test_refresh_rotates_and_the_spent_token_is_refused(http, users, customer):
    first = users.session(customer)
    second = http.post("/api/auth/refresh", headers=bearer(first["refresh_token"])).json
    assert second["refresh_token"] != first["refresh_token"]
    third = http.post("/api/auth/refresh", headers=bearer(second["refresh_token"]))
    assert third.status_code == 200, "the new refresh token works"
    again = http.post("/api/auth/refresh", headers=bearer(first["refresh_token"]))
    assert again.status_code == 401
    assert again.json["error"]["code"] == "unauthorized"


def test_reuse_of_a_spent_refresh_token_revokes_the_whole_family(
    app, http, connect, users, customer
):
    first = users.session(customer)
    second = http.post("/api/auth/refresh", headers=bearer(first["refresh_token"])).json
    sockets = [connect(auth={"token": first["access_token"]})]
    sockets.append(connect(auth={"token": second["access_token"]}))
    bystander = connect(customer)  # another login session of the same customer
    drain(bystander, *sockets)

    reuse = http.post("/api/auth/refresh", headers=bearer(first["refresh_token"]))

    assert reuse.status_code == 401
    assert (
        http.post("/api/auth/refresh", headers=bearer(second["refresh_token"])).status_code == 401
    )
    assert http.get("/api/me", headers=bearer(second["access_token"])).status_code == 401
    for sock in sockets:
        assert heard(sock, "session_expired") == [{}]
        assert not sock.is_connected("/chat")
    assert not connect(auth={"token": second["access_token"]}).is_connected("/chat")
    assert bystander.is_connected("/chat")
    assert emit(bystander, "list_rooms")["ok"] is True


def test_every_token_names_its_family(app, http, users, customer):
    first = users.session(customer)
    second = http.post("/api/auth/refresh", headers=bearer(first["refresh_token"])).json
    tokens = [pair[kind] for pair in (first, second) for kind in ("access_token", "refresh_token")]
    other = users.session(customer)["access_token"]
    with app.app_context():
        families = {decode_token(token, allow_expired=True)["fam"] for token in tokens}
        assert len(families) == 1, "a login and its rotations are one family"
        assert decode_token(other)["fam"] not in families, "another login is another family"


def test_api_logout_ends_the_refresh_token_and_every_socket_of_the_family(
    http, connect, users, customer
):
    first = users.session(customer)
    second = http.post("/api/auth/refresh", headers=bearer(first["refresh_token"])).json
    old, new = (
        connect(auth={"token": first["access_token"]}),
        connect(auth={"token": second["access_token"]}),
    )
    other_login = connect(customer)
    drain(old, new, other_login)

    assert http.post("/api/auth/logout", headers=bearer(second["access_token"])).status_code == 204

    assert (
        http.post("/api/auth/refresh", headers=bearer(second["refresh_token"])).status_code == 401
    )
    assert http.get("/api/me", headers=bearer(first["access_token"])).status_code == 401
    for sock in (old, new):
        assert heard(sock, "session_expired") == [{}]
        assert not sock.is_connected("/chat")
    assert other_login.is_connected("/chat")


def test_page_renewal_rotates_the_refresh_cookie(app, http, users, customer):
    pair = users.session(customer, access_expires=timedelta(seconds=-1))
    http.set_cookie("access_token_cookie", pair["access_token"], domain="localhost")
    http.set_cookie("refresh_token_cookie", pair["refresh_token"], domain="localhost")

    assert http.get("/chat").status_code == 200

    new_refresh = http.get_cookie("refresh_token_cookie").value
    assert new_refresh != pair["refresh_token"]
    assert http.get("/chat").status_code == 200, "the renewed cookies keep the page"
    spent = app.test_client().post("/api/auth/refresh", headers=bearer(pair["refresh_token"]))
    assert spent.status_code == 401


def test_root_redirect_renewal_hands_over_the_rotated_pair(app, http, users, customer):
    pair = users.session(customer, access_expires=timedelta(seconds=-1))
    http.set_cookie("refresh_token_cookie", pair["refresh_token"], domain="localhost")
    response = http.get("/")
    assert response.headers["Location"].endswith("/chat")
    assert http.get_cookie("refresh_token_cookie").value != pair["refresh_token"]
    assert http.get("/chat").status_code == 200


def test_a_token_without_a_family_is_refused(app, http, connect, customer):
    from flask_jwt_extended import create_access_token

    with app.app_context():  # shaped like the tokens this server issued before families
        token = create_access_token(identity=str(customer.id))
    assert http.get("/api/me", headers=bearer(token)).status_code == 401
    assert not connect(auth={"token": token}).is_connected("/chat")
