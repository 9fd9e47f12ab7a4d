"""The HTML side: forms with CSRF tokens, HttpOnly cookies, role redirects, escaping."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest


def csrf_from(response) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', response.get_data(True))
    assert match, "the form carries no CSRF token"
    return match.group(1)


def set_cookies(response) -> list[str]:
    return response.headers.getlist("Set-Cookie")


def token_cookies(response) -> list[str]:
    """The JWT cookies a response sets (Flask's own session cookie aside)."""
    return [c for c in set_cookies(response) if not c.startswith("session=")]


def log_in(http, account):
    token = csrf_from(http.get("/login"))
    data = {"email": account.email, "password": account.password, "csrf_token": token}
    return http.post("/login", data=data)


@pytest.mark.parametrize("path", ["/login", "/register"])
def test_forms_refuse_a_post_without_csrf_token(http, customer, path):
    data = {"email": customer.email, "password": customer.password, "name": "X"}
    response = http.post(path, data=data)
    assert response.status_code == 400
    assert set_cookies(response) == []


def test_register_form_logs_in_with_httponly_cookies(http):
    token = csrf_from(http.get("/register"))
    response = http.post(
        "/register",
        data={
            "name": "Rita",
            "email": "rita@example.com",
            "password": "long enough",
            "csrf_token": token,
        },
    )
    assert response.status_code == 302
    cookies = {c.split("=", 1)[0]: c for c in set_cookies(response)}
    assert "HttpOnly" in cookies["access_token_cookie"]
    assert "HttpOnly" in cookies["refresh_token_cookie"]
    assert "HttpOnly" not in cookies["csrf_access_token"]  # read by the page's script
    assert http.get("/").headers["Location"].endswith("/chat")


def test_register_form_shows_the_rule_that_failed(http):
    token = csrf_from(http.get("/register"))
    response = http.post(
        "/register",
        data={"name": "R", "email": "r@example.com", "password": "short", "csrf_token": token},
    )
    assert response.status_code == 400
    assert "at least 8 characters" in response.get_data(True)
    assert token_cookies(response) == []


def test_wrong_password_shows_an_error_and_sets_no_cookie(http, customer):
    token = csrf_from(http.get("/login"))
    response = http.post(
        "/login", data={"email": customer.email, "password": "nope-nope", "csrf_token": token}
    )
    assert response.status_code == 400
    assert "Wrong email or password." in response.get_data(True)
    assert token_cookies(response) == []


@pytest.mark.parametrize(
    "role, page, other",
    [("customer", "/chat", "/admin"), ("admin", "/admin", "/chat")],
)
def test_each_role_is_sent_to_its_page(http, users, role, page, other):
    account = users.make(role)
    assert log_in(http, account).status_code == 302
    assert http.get("/").headers["Location"].endswith(page)
    assert http.get(page).status_code == 200
    assert http.get(other).status_code == 302
    assert http.get(page).headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("path", ["/", "/chat", "/admin"])
def test_anonymous_visitors_are_sent_to_login(http, path):
    response = http.get(path)
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")


def test_logout_needs_its_csrf_token_and_revokes_the_session(http, customer):
    log_in(http, customer)
    assert http.post("/logout").status_code == 400  # no CSRF token: refused, still logged in
    assert http.get("/chat").status_code == 200
    token = csrf_from(http.get("/logout"))
    response = http.post("/logout", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")
    assert http.get("/chat").status_code == 302


def test_user_text_is_escaped_in_pages(http, users):
    account = users.make("customer", name="<script>alert(1)</script>")
    log_in(http, account)
    html = http.get("/chat").get_data(True)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # the header
    assert "\\u003cscript\\u003e" in html  # the JSON handed to the script


def test_expired_access_cookie_is_renewed_from_the_refresh_cookie(http, users, customer):
    http.set_cookie(
        "access_token_cookie",
        users.token(customer, expires_delta=timedelta(seconds=-1)),
        domain="localhost",
    )
    http.set_cookie(
        "refresh_token_cookie", users.token(customer, kind="refresh"), domain="localhost"
    )
    response = http.get("/chat")
    assert response.status_code == 200
    assert any(c.startswith("access_token_cookie=") for c in set_cookies(response))


def test_an_unknown_page_gets_a_styled_404_page_and_the_api_its_json(http):
    page = http.get("/no-such-page")
    assert page.status_code == 404
    assert page.content_type.startswith("text/html")
    text = page.get_data(as_text=True)
    assert "Page not found" in text and 'class="card error-card"' in text
    assert 'href="/"' in text  # a way back
    api = http.get("/api/no-such-thing")
    assert api.status_code == 404 and api.get_json()["error"]["code"] == "not_found"


def test_a_wrong_method_on_a_page_gets_the_error_page_not_a_bare_message(http):
    page = http.post("/chat")
    assert page.status_code == 405
    assert "That did not work" in page.get_data(as_text=True)


def test_register_form_says_every_mistake_at_once_beside_its_field(http, customer):
    """Issue 9: errors that talk like a person, all shown at once next to their fields."""
    token = csrf_from(http.get("/register"))
    page = http.post(
        "/register",
        data={"name": "  ", "email": "not-an-email", "password": "short", "csrf_token": token},
    )
    assert page.status_code == 400
    text = page.get_data(as_text=True)
    errors = re.findall(r'<span class="field-error">([^<]*)</span>', text)
    assert errors == [
        "Tell us your name.",
        "That doesn&#39;t look like an email address.",
        "Use at least 8 characters.",
    ]
    assert text.count('aria-invalid="true"') == 3
    assert token_cookies(page) == []

    taken = http.post(
        "/register",
        data={
            "name": "Again",
            "email": customer.email,
            "password": "long enough password",
            "csrf_token": token,
        },
    )
    assert "That email is already registered. Log in instead?" in taken.get_data(as_text=True)
