"""The widget's identity exchange (issue 20): a site signs its logged-in user's
identity, and `POST /api/widget/session` trades it for one of our sessions.

Every refusal is checked for its effect: 401 `unauthorized`, and no account made.
"""

from __future__ import annotations

import json
import time

import jwt
import pytest
from sqlalchemy import func, select

from tests.conftest import drain, emit, heard


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def site(app):
    """`site(name, origins)`: a registered site, as `{"key", "secret", "id"}`."""
    from app.services.sites import add_site

    def make(name="Teapot Shop", origins=("https://shop.example",), login_url=None):
        with app.app_context():
            made, secret = add_site(name, list(origins), login_url)
            return {"key": made.key, "secret": secret, "id": made.id}

    return make


def identity(site, *, secret=None, algorithm="HS256", lifetime=600, drop=(), **claims):
    body = {"sub": "u-1", "email": "Kim@Shop.example", "name": "김민지", **claims}
    if lifetime is not None:
        body.setdefault("exp", int(time.time()) + lifetime)
    for name in drop:
        body.pop(name, None)
    return jwt.encode(body, secret or site["secret"], algorithm=algorithm)


def exchange(http, site_key, token):
    return http.post("/api/widget/session", json={"site_key": site_key, "identity": token})


def user_count(app) -> int:
    from app.extensions import db
    from app.models import User

    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(User))


def test_a_signed_identity_becomes_a_session_of_ours_that_chats(app, http, site, connect):
    shop = site()
    answer = exchange(http, shop["key"], identity(shop))
    assert answer.status_code == 200, answer.json
    body = answer.json
    assert set(body) >= {"access_token", "refresh_token", "user"}
    assert body["user"]["name"] == "김민지"
    assert body["user"]["email"] == "kim@shop.example"
    assert body["user"]["role"] == "customer"
    # An ordinary token of ours: the socket takes it and the customer chats.
    client = connect(auth={"token": body["access_token"]})
    assert client.is_connected("/chat")
    sent = client.emit("send_message", {"body": "안녕하세요"}, namespace="/chat", callback=True)
    assert sent["ok"], sent
    # The same person again: the same account, their name and email brought up to date.
    again = exchange(http, shop["key"], identity(shop, name="Kim Minji", email="k@shop.example"))
    assert again.json["user"]["id"] == body["user"]["id"]
    assert again.json["user"]["name"] == "Kim Minji"
    assert again.json["user"]["email"] == "k@shop.example"
    # And refresh rotation treats the pair like any other.
    renewed = http.post("/api/auth/refresh", headers=bearer(body["refresh_token"]))
    assert renewed.status_code == 200


def test_an_audience_naming_the_site_is_accepted(http, site):
    shop = site()
    assert exchange(http, shop["key"], identity(shop, aud=shop["key"])).status_code == 200


REFUSALS = {
    "another site's secret": lambda shop, other: identity(shop, secret=other["secret"]),
    "a wrong signature": lambda shop, other: identity(shop)[:-4] + "AAAA",
    "algorithm none": lambda shop, other: jwt.encode(
        {"sub": "u-1", "email": "a@b.c", "exp": int(time.time()) + 60}, None, algorithm="none"
    ),
    "algorithm HS512": lambda shop, other: identity(shop, algorithm="HS512"),
    "no exp": lambda shop, other: identity(shop, lifetime=None),
    "exp past": lambda shop, other: identity(shop, lifetime=-10),
    "exp 25 hours ahead": lambda shop, other: identity(shop, lifetime=25 * 3600),
    "no sub": lambda shop, other: identity(shop, drop=("sub",)),
    "no email": lambda shop, other: identity(shop, drop=("email",)),
    "a sub that is not a string": lambda shop, other: identity(shop, sub=42),
    "an email that is no address": lambda shop, other: identity(shop, email="nobody"),
    "aud naming another site": lambda shop, other: identity(shop, aud=other["key"]),
    "not a JWT": lambda shop, other: "not-a-token",
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_a_bad_identity_is_refused_and_creates_nothing(app, http, site, case):
    shop, other = site(), site("Other Shop", ("https://other.example",))
    before = user_count(app)
    answer = exchange(http, shop["key"], REFUSALS[case](shop, other))
    assert answer.status_code == 401, (case, answer.json)
    assert answer.json["error"]["code"] == "unauthorized"
    assert user_count(app) == before


def test_an_unknown_site_key_or_a_malformed_request_is_refused(app, http, site):
    shop = site()
    assert exchange(http, "site_nope", identity(shop)).status_code == 401
    bad = http.post("/api/widget/session", json={"site_key": shop["key"]})
    assert bad.status_code == 400 and bad.json["error"]["code"] == "validation_error"
    assert http.post("/api/widget/session", data="{").status_code == 400
    assert user_count(app) == 0


def test_an_identity_never_reaches_a_password_account_with_its_email(app, http, site, users):
    ours = users.make("customer", name="Carl Customer")
    shop = site()
    answer = exchange(http, shop["key"], identity(shop, email=ours.email, sub="carl"))
    assert answer.status_code == 200
    assert answer.json["user"]["id"] != ours.id
    # The password account still logs in as itself, and its email is not taken.
    login = http.post("/api/auth/login", json={"email": ours.email, "password": ours.password})
    assert login.status_code == 200 and login.json["user"]["id"] == ours.id
    # And the site's customer cannot log in with a password.
    refused = http.post("/api/auth/login", json={"email": ours.email, "password": "!"})
    assert refused.status_code == 401


def test_the_same_sub_on_two_sites_is_two_customers_with_two_rooms(app, http, site, connect):
    shop, other = site(), site("Other Shop", ("https://other.example",))
    a = exchange(http, shop["key"], identity(shop, sub="same")).json
    b = exchange(http, other["key"], identity(other, sub="same")).json
    assert a["user"]["id"] != b["user"]["id"]
    first = connect(auth={"token": a["access_token"]})
    second = connect(auth={"token": b["access_token"]})
    room_a = first.emit("send_message", {"body": "a"}, namespace="/chat", callback=True)
    room_b = second.emit("send_message", {"body": "b"}, namespace="/chat", callback=True)
    assert room_a["message"]["room_id"] != room_b["message"]["room_id"]
    history = second.emit(
        "history", {"room_id": room_a["message"]["room_id"]}, namespace="/chat", callback=True
    )
    assert not history["ok"] and history["error"]["code"] in {"forbidden", "not_found"}


@pytest.mark.parametrize("action", ["rotate", "remove"])
def test_a_rotated_or_removed_site_refuses_identities_and_ends_its_sessions(
    app, http, site, connect, action
):
    from app.services.sites import remove_site, rotate_secret

    shop, other = site(), site("Other Shop", ("https://other.example",))
    pair = exchange(http, shop["key"], identity(shop)).json
    bystander = exchange(http, other["key"], identity(other)).json
    sock = connect(auth={"token": pair["access_token"]})
    other_sock = connect(auth={"token": bystander["access_token"]})
    drain(sock, other_sock)
    old = identity(shop)
    with app.app_context():
        new_secret = rotate_secret(shop["key"]) if action == "rotate" else remove_site(shop["key"])

    assert exchange(http, shop["key"], old).status_code == 401
    # The session it gave is dead: its socket closed, its tokens refused.
    assert heard(sock, "session_expired") == [{}]
    assert not sock.is_connected("/chat")
    assert http.get("/api/me", headers=bearer(pair["access_token"])).status_code == 401
    assert http.post("/api/auth/refresh", headers=bearer(pair["refresh_token"])).status_code == 401
    # Another site's customer is untouched.
    assert other_sock.is_connected("/chat")
    if action == "rotate":
        fresh = identity(shop, secret=new_secret)
        assert exchange(http, shop["key"], fresh).status_code == 200
    else:
        assert exchange(http, shop["key"], identity(shop)).status_code == 401


def test_the_sites_commands_print_json(app):
    runner = app.test_cli_runner()
    added = runner.invoke(
        args=["sites", "add", "--name", "Teapot Shop", "--origin", "https://Shop.example/"]
    )
    assert added.exit_code == 0, added.output
    made = json.loads(added.output)
    assert set(made) == {"site_key", "secret"}
    listing = runner.invoke(args=["sites", "list"]).output
    listed = [json.loads(line) for line in listing.splitlines()]
    assert listed[0]["site_key"] == made["site_key"]
    assert listed[0]["origins"] == ["https://shop.example"]
    assert "secret" not in listed[0] and made["secret"] not in json.dumps(listed)
    rotated = runner.invoke(args=["sites", "rotate-secret", made["site_key"]])
    assert rotated.exit_code == 0 and json.loads(rotated.output)["secret"] != made["secret"]
    assert runner.invoke(args=["sites", "remove", made["site_key"]]).exit_code == 0
    gone = runner.invoke(args=["sites", "remove", made["site_key"]])
    assert gone.exit_code != 0 and "No such site" in gone.output
    bad = runner.invoke(args=["sites", "add", "--name", "X", "--origin", "shop.example/path"])
    assert bad.exit_code != 0 and "not an origin" in bad.output


def test_the_frame_may_be_framed_only_by_its_sites_origins(http, site):
    shop = site(origins=("https://shop.example", "http://localhost:8001"))
    page = http.get(f"/widget/frame?site={shop['key']}")
    assert page.status_code == 200
    policy = page.headers["Content-Security-Policy"]
    assert "frame-ancestors https://shop.example http://localhost:8001;" in policy
    assert "X-Frame-Options" not in page.headers
    assert "Set-Cookie" not in page.headers, "the widget relies on no cookie of ours"
    # Every other page still refuses every frame.
    login = http.get("/login")
    assert "frame-ancestors 'none'" in login.headers["Content-Security-Policy"]
    assert login.headers["X-Frame-Options"] == "DENY"
    # An unknown or removed site has no frame.
    assert http.get("/widget/frame?site=site_nope").status_code == 404
    from app.services.sites import remove_site

    with http.application.app_context():
        remove_site(shop["key"])
    assert http.get(f"/widget/frame?site={shop['key']}").status_code == 404


def test_the_loader_is_served_as_a_script_any_site_may_load(http):
    loader = http.get("/widget.js")
    assert loader.status_code == 200
    assert loader.mimetype == "text/javascript"
    assert loader.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert b"window.SupportChat" in loader.data
    assert "Set-Cookie" not in loader.headers


def test_the_team_sees_which_site_a_customer_came_from(app, http, site, connect, admin, users):
    shop = site()
    pair = exchange(http, shop["key"], identity(shop, name="Kim Minji")).json
    sock = connect(auth={"token": pair["access_token"]})
    room = sock.emit("send_message", {"body": "hi"}, namespace="/chat", callback=True)
    support = connect(admin)
    profile = support.emit(
        "customer_profile",
        {"room_id": room["message"]["room_id"]},
        namespace="/chat",
        callback=True,
    )["profile"]
    assert profile["site"] == {"key": shop["key"], "name": "Teapot Shop"}
    assert profile["customer"]["name"] == "Kim Minji"
    assert profile["customer"]["email"] == "kim@shop.example"
    ours = connect(users.make("customer"))
    own_room = ours.emit("send_message", {"body": "hi"}, namespace="/chat", callback=True)
    mine = support.emit(
        "customer_profile",
        {"room_id": own_room["message"]["room_id"]},
        namespace="/chat",
        callback=True,
    )["profile"]
    assert mine["site"] is None


# --- sites from the inbox's settings (the same actions as `flask sites`) ----------------


def test_an_admin_adds_a_site_in_the_inbox_and_its_secret_signs_identities(
    app, http, connect, admin, customer
):
    support = connect(admin)
    added = emit(
        support,
        "add_site",
        {
            "name": " Teapot Shop ",
            "origins": ["https://Shop.example:443/", "http://localhost:8000"],
            "login_url": "https://shop.example/login",
        },
    )
    assert added["ok"], added
    shop = added["site"]
    assert shop == {
        "site_key": shop["site_key"],
        "name": "Teapot Shop",
        "origins": ["https://shop.example", "http://localhost:8000"],
        "login_url": "https://shop.example/login",
        "created_at": shop["created_at"],
    }
    assert emit(support, "list_sites", {})["sites"] == [shop], "listed, never with a secret"
    signed = identity({"secret": added["secret"]})
    assert exchange(http, shop["site_key"], signed).status_code == 200
    frame = http.get(f"/widget/frame?site={shop['site_key']}")
    assert (
        "frame-ancestors https://shop.example http://localhost:8000"
        in frame.headers["Content-Security-Policy"]
    )
    assert emit(connect(customer), "list_sites", {})["error"]["code"] == "forbidden"


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"name": "  ", "origins": ["https://shop.example"]}, "name"),
        ({"name": "Shop", "origins": []}, "origins"),
        ({"name": "Shop", "origins": ["shop.example"]}, "origins"),
        ({"name": "Shop", "origins": ["https://shop.example/path"]}, "origins"),
        ({"name": "Shop", "origins": ["https://shop.example"] * 21}, "origins"),
        ({"name": "S", "origins": ["https://a.example"], "login_url": "ftp://x"}, "login_url"),
        ({"name": "Shop", "origins": "https://shop.example"}, "origins"),
    ],
)
def test_a_site_that_is_not_right_is_refused_with_the_field_and_nothing_is_made(
    app, connect, admin, payload, field
):
    support = connect(admin)
    answer = emit(support, "add_site", payload)
    assert answer["error"]["code"] == "validation_error"
    assert answer["error"]["field"] == field
    assert emit(support, "list_sites", {})["sites"] == []


def test_a_new_secret_from_the_inbox_refuses_the_old_one_and_removing_stops_the_site(
    app, http, connect, admin, site
):
    shop = site()
    support = connect(admin)
    old = identity(shop)
    rotated = emit(support, "rotate_site_secret", {"site_key": shop["key"]})
    assert rotated["ok"] and rotated["secret"] != shop["secret"]
    assert exchange(http, shop["key"], old).status_code == 401
    fresh = identity({"secret": rotated["secret"]})
    assert exchange(http, shop["key"], fresh).status_code == 200

    assert emit(support, "remove_site", {"site_key": shop["key"]}) == {"ok": True}
    assert exchange(http, shop["key"], fresh).status_code == 401
    assert emit(support, "list_sites", {})["sites"] == []
    again = emit(support, "remove_site", {"site_key": shop["key"]})
    assert again["error"]["code"] == "not_found"


def test_a_widget_customer_is_deleted_by_their_sites_key_and_their_own_id(app, http, site, connect):
    """`flask delete-customer --site KEY --external-id ID`: that customer only, not the
    same id on another site; their token is dead after."""
    shop, other = site(), site("Other Shop", ("https://other.example",))
    kim = exchange(http, shop["key"], identity(shop)).json
    twin = exchange(http, other["key"], identity(other)).json  # the same sub elsewhere
    connect(auth={"token": kim["access_token"]}).emit(
        "send_message", {"body": "delete me please"}, namespace="/chat", callback=True
    )
    runner = app.test_cli_runner()
    half = runner.invoke(args=["delete-customer", "--site", shop["key"], "--yes"])
    assert half.exit_code == 2 and "--external-id" in half.output
    done = runner.invoke(
        args=["delete-customer", "--site", shop["key"], "--external-id", "u-1", "--yes"]
    )
    assert done.exit_code == 0, done.output
    assert "김민지" in done.output
    assert http.get("/api/me", headers=bearer(kim["access_token"])).status_code == 401
    assert http.get("/api/me", headers=bearer(twin["access_token"])).status_code == 200
    assert user_count(app) == 1
