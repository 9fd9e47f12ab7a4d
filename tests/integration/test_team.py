"""The team: invitations, roles, deactivation and availability (issue 23)."""

from __future__ import annotations

from datetime import timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from sqlalchemy import update

from tests.conftest import drain, emit, heard


def bearer(users, account) -> dict:
    return {"Authorization": f"Bearer {users.token(account)}"}


def invite(http, users, admin, email="new.agent@example.com", role="agent", name=None):
    body = {"email": email, "role": role}
    if name:
        body["name"] = name
    response = http.post("/api/staff/invitations", json=body, headers=bearer(users, admin))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def token_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def test_invite_accept_and_first_login_as_an_agent(app, http, users, admin):
    sent = invite(http, users, admin, email="  Ben.Agent@Example.com ", name="Ben")
    assert sent["invite_url"].startswith(app.config["PUBLIC_URL"] + "/invite/")
    assert sent["expires_at"].endswith("Z")

    page = http.get(sent["invite_url"].removeprefix(app.config["PUBLIC_URL"]))
    assert page.status_code == 200 and b"ben.agent@example.com" in page.data

    accepted = http.post(
        "/api/auth/accept-invite",
        json={"token": token_of(sent["invite_url"]), "name": "Ben Agent", "password": "agentpass1"},
    )
    assert accepted.status_code == 201, accepted.get_json()
    body = accepted.get_json()
    assert body["user"]["role"] == "agent" and body["user"]["email"] == "ben.agent@example.com"
    me = http.get("/api/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.get_json()["user"]["name"] == "Ben Agent"

    # The link is spent: a second use is refused, and the page says so.
    again = http.post(
        "/api/auth/accept-invite",
        json={"token": token_of(sent["invite_url"]), "name": "Mallory", "password": "agentpass1"},
    )
    assert again.status_code == 404 and again.get_json()["error"]["code"] == "not_found"
    gone = http.get(sent["invite_url"].removeprefix(app.config["PUBLIC_URL"]))
    assert gone.status_code == 404

    # The new agent logs in with the password they chose.
    login = http.post(
        "/api/auth/login", json={"email": "ben.agent@example.com", "password": "agentpass1"}
    )
    assert login.status_code == 200 and login.get_json()["user"]["role"] == "agent"


def test_the_invitation_is_emailed(app, http, users, admin):
    from app.jobs import run_pending

    sent = invite(http, users, admin, email="mail.me@example.com", role="admin", name="Mia")
    assert sent["emailed"] is True
    run_pending(app.extensions["chat_jobs"])
    outbox = Path(app.config["MAIL_OUTBOX_DIR"])
    emails = [
        BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        for path in outbox.glob("*.eml")
    ]
    mine = [e for e in emails if e["To"].addresses[0].addr_spec == "mail.me@example.com"]
    assert len(mine) == 1
    text = mine[0].get_body(("plain",)).get_content()
    assert sent["invite_url"] in text and "Ada Admin" in text


def test_an_expired_invitation_is_refused(app, http, users, admin):
    from app.extensions import db
    from app.models import StaffInvitation, utcnow

    sent = invite(http, users, admin)
    with app.app_context():
        db.session.execute(
            update(StaffInvitation).values(expires_at=utcnow() - timedelta(seconds=1))
        )
        db.session.commit()
    response = http.post(
        "/api/auth/accept-invite",
        json={"token": token_of(sent["invite_url"]), "name": "Late", "password": "agentpass1"},
    )
    assert response.status_code == 404
    login = http.post(
        "/api/auth/login", json={"email": "new.agent@example.com", "password": "agentpass1"}
    )
    assert login.status_code == 401  # no account was made


@pytest.mark.parametrize(
    "body, field",
    [
        ({"email": "not-an-email", "role": "agent"}, "email"),
        ({"email": "a@example.com", "role": "owner"}, "role"),
        ({"email": "a@example.com"}, "role"),
    ],
)
def test_bad_invitations_are_refused_with_the_field(http, users, admin, body, field):
    response = http.post("/api/staff/invitations", json=body, headers=bearer(users, admin))
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == field


def test_an_email_with_an_account_cannot_be_invited(http, users, admin, customer):
    response = http.post(
        "/api/staff/invitations",
        json={"email": customer.email, "role": "agent"},
        headers=bearer(users, admin),
    )
    assert response.status_code == 409 and response.get_json()["error"]["field"] == "email"


def test_accept_checks_name_and_password(http, users, admin):
    sent = invite(http, users, admin)
    short = http.post(
        "/api/auth/accept-invite",
        json={"token": token_of(sent["invite_url"]), "name": "Ben", "password": "short"},
    )
    assert short.status_code == 400 and short.get_json()["error"]["field"] == "password"
    # Nothing was spent: the right form still works.
    fine = http.post(
        "/api/auth/accept-invite",
        json={"token": token_of(sent["invite_url"]), "name": "Ben", "password": "longenough"},
    )
    assert fine.status_code == 201


def test_accept_through_the_page_logs_in_with_cookies(app, http, users, admin):
    sent = invite(http, users, admin, name="Pat")
    path = sent["invite_url"].removeprefix(app.config["PUBLIC_URL"])
    app.config["WTF_CSRF_ENABLED"] = False
    try:
        response = http.post(path, data={"name": "Pat Agent", "password": "agentpass1"})
    finally:
        app.config["WTF_CSRF_ENABLED"] = True
    assert response.status_code == 302
    inbox = http.get("/admin")
    assert inbox.status_code == 200 and b"Pat Agent" in inbox.data


def test_agents_and_customers_cannot_manage_the_team(http, users, admin, customer):
    agent = users.make("agent", name="Ann Agent")
    for account in (agent, customer):
        headers = bearer(users, account)
        assert http.get("/api/staff", headers=headers).status_code == 403
        assert (
            http.post(
                "/api/staff/invitations",
                json={"email": "x@example.com", "role": "agent"},
                headers=headers,
            ).status_code
            == 403
        )
        assert (
            http.patch(
                f"/api/staff/{admin.id}", json={"active": False}, headers=headers
            ).status_code
            == 403
        )
    # The admin's account is untouched.
    login = http.post("/api/auth/login", json={"email": admin.email, "password": admin.password})
    assert login.status_code == 200
    assert http.get("/api/staff").status_code == 401


def test_the_team_list_shows_roles_load_and_presence(app, http, users, admin, connect):
    agent = users.make("agent", name="Ann Agent")
    connect(agent)
    response = http.get("/api/staff", headers=bearer(users, admin))
    staff = {m["name"]: m for m in response.get_json()["staff"]}
    assert set(staff) == {"Ada Admin", "Ann Agent"}
    ann = staff["Ann Agent"]
    assert ann["role"] == "agent" and ann["active"] and ann["available"] and ann["online"]
    assert ann["email"] == agent.email and ann["effective_capacity"] == 10
    assert staff["Ada Admin"]["online"] is False


def test_resolved_rooms_of_a_deactivated_member_wait_for_someone_when_reopened(
    app, http, users, admin, customer, connect
):
    agent = users.make("agent", name="Ann Agent")
    agent_socket = connect(agent)
    cust = connect(customer)
    room_id = emit(cust, "send_message", {"body": "Hello"})["message"]["room_id"]
    assert emit(agent_socket, "set_status", {"room_id": room_id, "status": "resolved"})["ok"]
    http.patch(f"/api/staff/{agent.id}", json={"active": False}, headers=bearer(users, admin))
    support = connect(admin)
    assert emit(cust, "send_message", {"body": "It broke again"})["ok"]
    [room] = emit(support, "list_rooms", {})["rooms"]
    assert room["status"] == "open"
    assert room["assignee"] == {"id": admin.id, "name": admin.name}  # not Ann's any more


def test_deactivating_an_agent_closes_sockets_and_kills_tokens(app, http, users, admin, connect):
    agent = users.make("agent", name="Ann Agent")
    pair = users.session(agent)
    socket = connect(agent)
    assert socket.is_connected("/chat")

    response = http.patch(
        f"/api/staff/{agent.id}", json={"active": False}, headers=bearer(users, admin)
    )
    assert response.status_code == 200 and response.get_json()["member"]["active"] is False

    assert not socket.is_connected("/chat")  # closed at once, in this process
    # The effect, not a proxy: each token is refused, and so is the password.
    me = http.get("/api/me", headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert me.status_code == 401
    refresh = http.post(
        "/api/auth/refresh", headers={"Authorization": f"Bearer {pair['refresh_token']}"}
    )
    assert refresh.status_code == 401
    login = http.post("/api/auth/login", json={"email": agent.email, "password": agent.password})
    assert login.status_code == 401
    assert "deactivated" in login.get_json()["error"]["message"]
    late = connect(agent)
    assert not late.is_connected("/chat")

    # Reactivated: the password works again.
    http.patch(f"/api/staff/{agent.id}", json={"active": True}, headers=bearer(users, admin))
    login = http.post("/api/auth/login", json={"email": agent.email, "password": agent.password})
    assert login.status_code == 200


def test_a_deactivated_agents_messages_keep_their_name(app, http, users, admin, customer, connect):
    agent = users.make("agent", name="Ann Agent")
    customer_socket = connect(customer)
    assert emit(customer_socket, "send_message", {"body": "Hello"})["ok"]
    room_id = emit(customer_socket, "list_rooms")["rooms"][0]["id"]
    agent_socket = connect(agent)
    assert emit(agent_socket, "send_message", {"room_id": room_id, "body": "Hi, Ann here"})["ok"]
    http.patch(f"/api/staff/{agent.id}", json={"active": False}, headers=bearer(users, admin))
    history = emit(customer_socket, "history", {"room_id": room_id})["messages"]
    assert history[-1]["author"] == {"id": agent.id, "name": "Ann Agent", "role": "agent"}


def test_the_last_active_admin_stays(http, users, admin):
    headers = bearer(users, admin)
    demote = http.patch(f"/api/staff/{admin.id}", json={"role": "agent"}, headers=headers)
    assert demote.status_code == 409
    leave = http.patch(f"/api/staff/{admin.id}", json={"active": False}, headers=headers)
    assert leave.status_code == 409
    second = users.make("admin", name="Bea Admin")
    assert (
        http.patch(f"/api/staff/{second.id}", json={"role": "agent"}, headers=headers).status_code
        == 200
    )
    # Bea is an agent now: Ada is again the last admin.
    assert (
        http.patch(f"/api/staff/{admin.id}", json={"active": False}, headers=headers).status_code
        == 409
    )
    login = http.post("/api/auth/login", json={"email": admin.email, "password": admin.password})
    assert login.status_code == 200 and login.get_json()["user"]["role"] == "admin"


def test_a_demoted_admin_loses_admin_powers(http, users, admin, connect):
    second = users.make("admin", name="Bea Admin")
    old_socket = connect(second)
    old_token = users.token(second)
    http.patch(f"/api/staff/{second.id}", json={"role": "agent"}, headers=bearer(users, admin))
    # the sockets and tokens of the old role end with it (a socket keeps the role it
    # connected with, so it must not outlive the change)
    assert not old_socket.is_connected("/chat")
    assert http.get("/api/me", headers={"Authorization": f"Bearer {old_token}"}).status_code == 401
    bea = connect(second)  # a new login: the role is read again
    ack = emit(bea, "add_site", {"name": "Shop", "origins": ["https://shop.example"]})
    assert ack["ok"] is False and ack["error"]["code"] == "forbidden"
    assert http.get("/api/staff", headers=bearer(users, second)).status_code == 403


@pytest.mark.parametrize(
    "body",
    [{}, {"role": "owner"}, {"capacity": -1}, {"capacity": "5"}, {"active": "no"}, {"role": None}],
)
def test_bad_changes_are_refused(http, users, admin, body):
    agent = users.make("agent")
    response = http.patch(f"/api/staff/{agent.id}", json=body, headers=bearer(users, admin))
    assert response.status_code == 400, response.get_json()


def test_changing_someone_who_is_not_staff_is_not_found(http, users, admin, customer):
    response = http.patch(
        f"/api/staff/{customer.id}", json={"role": "admin"}, headers=bearer(users, admin)
    )
    assert response.status_code == 404
    login = http.post(
        "/api/auth/login", json={"email": customer.email, "password": customer.password}
    )
    assert login.get_json()["user"]["role"] == "customer"


def test_availability_is_heard_by_the_team_and_never_by_customers(users, admin, customer, connect):
    agent = users.make("agent", name="Ann Agent")
    ann, ada, carl = connect(agent), connect(admin), connect(customer)
    drain(ann, ada, carl)
    ack = emit(ann, "set_availability", {"available": False})
    assert ack == {"ok": True, "available": False}
    [member] = heard(ada, "staff_updated")
    assert member["id"] == agent.id and member["available"] is False and "email" not in member
    assert heard(carl) == []
    staff = emit(ada, "list_staff")["staff"]
    assert {m["name"]: m["available"] for m in staff}["Ann Agent"] is False
    bad = emit(ann, "set_availability", {"available": "yes"})
    assert bad["ok"] is False and bad["error"]["code"] == "validation_error"
    refused = emit(carl, "set_availability", {"available": True})
    assert refused["ok"] is False and refused["error"]["code"] == "forbidden"
    listing = emit(carl, "list_staff")
    assert listing["ok"] is False and listing["error"]["code"] == "forbidden"


def test_agents_answer_customers_but_do_not_manage(users, customer, connect):
    agent = users.make("agent", name="Ann Agent")
    carl, ann = connect(customer), connect(agent)
    assert emit(carl, "send_message", {"body": "Hi"})["ok"]
    rooms = emit(ann, "list_rooms")["rooms"]
    assert len(rooms) == 1
    room_id = rooms[0]["id"]
    assert emit(ann, "send_message", {"room_id": room_id, "body": "Hello!"})["ok"]
    assert emit(ann, "send_message", {"room_id": room_id, "body": "note", "internal": True})["ok"]
    assert emit(ann, "list_canned")["ok"]
    for event, payload in [
        ("save_canned", {"shortcut": "hi", "body": "Hello"}),
        ("save_team_settings", {"hours": None, "away_message": None}),
        ("list_sites", {}),
    ]:
        ack = emit(ann, event, payload)
        assert ack["ok"] is False and ack["error"]["code"] == "forbidden", event
