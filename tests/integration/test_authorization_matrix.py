"""Promise 1: nobody sees a room that is not theirs.

Every socket event and every HTTP endpoint, tried by an anonymous client, the room's
customer, another customer (the intruder), an agent and an admin. For each socket case we listen
on every socket: the victim's and the admins' hear nothing from an intruder, and the
intruder hears nothing of the victim's room.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Message
from tests.conftest import drain, emit, heard


@pytest.fixture
def world(app, users, connect):
    victim = users.make("customer", name="Vera Victim")
    intruder = users.make("customer", name="Ivan Intruder")
    admin = users.make("admin", name="Ada Admin")
    agent = users.make("agent", name="Aggie Agent")
    seed = emit(connect(victim), "send_message", {"body": "private details"})["message"]
    own = emit(connect(intruder), "send_message", {"body": "my own question"})["message"]
    canned = emit(connect(admin), "save_canned", {"shortcut": "hello", "body": "Hi!"})["reply"]
    shop = emit(connect(admin), "add_site", {"name": "Shop", "origins": ["https://shop.example"]})[
        "site"
    ]
    return {
        "site": shop["site_key"],
        "canned": canned["id"],
        "victim": victim,
        "intruder": intruder,
        "admin": admin,
        "agent": agent,
        "room": seed["room_id"],
        "message": seed["id"],
        "intruder_room": own["room_id"],
    }


def payload_for(event, world):
    room, message = world["room"], world["message"]
    return {
        "send_message": {"room_id": room, "body": "knock knock"},
        "send_note": {"room_id": room, "body": "team only", "internal": True},
        "history": {"room_id": room},
        "mark_read": {"room_id": room, "message_id": message},
        "typing": {"room_id": room, "is_typing": True},
        "set_status": {"room_id": room, "status": "resolved"},
        "list_rooms": {},
        "inbox_counts": {},
        "customer_profile": {"room_id": room},
        "list_canned": {},
        "save_canned": {"shortcut": "new-one", "body": "A saved answer"},
        "delete_canned": {"id": world["canned"]},
        "list_sites": {},
        "add_site": {"name": "Another shop", "origins": ["https://other.example"]},
        "rotate_site_secret": {"site_key": world["site"]},
        "remove_site": {"site_key": world["site"]},
        "set_alert_emails": {"on": False},
        "availability": {},
        "team_settings": {},
        "save_team_settings": {"hours": None, "away_message": "Back soon"},
        "assign": {"room_id": room, "agent_id": world["agent"].id},
        "set_availability": {"available": True},
        "list_staff": {},
        "view_room": {"room_id": room},
    }[event]


# event -> what the room's customer, an intruder, an agent and an admin get
SOCKET_MATRIX = {
    "send_message": {"victim": "ok", "intruder": "not_found", "agent": "ok", "admin": "ok"},
    # an internal note (send_message with internal: true) is for the support team alone
    "send_note": {"victim": "forbidden", "intruder": "forbidden", "agent": "ok", "admin": "ok"},
    "history": {"victim": "ok", "intruder": "not_found", "agent": "ok", "admin": "ok"},
    "mark_read": {"victim": "ok", "intruder": "not_found", "agent": "ok", "admin": "ok"},
    "typing": {"victim": "ok", "intruder": "not_found", "agent": "ok", "admin": "ok"},
    "set_status": {"victim": "forbidden", "intruder": "not_found", "agent": "ok", "admin": "ok"},
    "list_rooms": {"victim": "ok", "intruder": "ok", "agent": "ok", "admin": "ok"},
    "inbox_counts": {"victim": "ok", "intruder": "ok", "agent": "ok", "admin": "ok"},
    "customer_profile": {
        "victim": "forbidden",
        "intruder": "not_found",
        "agent": "ok",
        "admin": "ok",
    },
    # the team's saved replies: the whole team uses them, admins keep them
    "list_canned": {"victim": "forbidden", "intruder": "forbidden", "agent": "ok", "admin": "ok"},
    "save_canned": {
        "victim": "forbidden",
        "intruder": "forbidden",
        "agent": "forbidden",
        "admin": "ok",
    },
    "delete_canned": {
        "victim": "forbidden",
        "intruder": "forbidden",
        "agent": "forbidden",
        "admin": "ok",
    },
    # the businesses' sites (the widget): admins only
    "list_sites": {
        "victim": "forbidden",
        "intruder": "forbidden",
        "agent": "forbidden",
        "admin": "ok",
    },
    "add_site": {
        "victim": "forbidden",
        "intruder": "forbidden",
        "agent": "forbidden",
        "admin": "ok",
    },
    "rotate_site_secret": {
        "victim": "forbidden",
        "intruder": "forbidden",
        "agent": "forbidden",
        "admin": "ok",
    },
    "remove_site": {
        "victim": "forbidden",
        "intruder": "forbidden",
        "agent": "forbidden",
        "admin": "ok",
    },
    # a member's own waiting-customer emails
    "set_alert_emails": {
        "victim": "forbidden",
        "intruder": "forbidden",
        "agent": "ok",
        "admin": "ok",
    },
    # whether the team is in: anyone; the team's hours and away text: the team reads
    # them, admins change them
    "availability": {"victim": "ok", "intruder": "ok", "agent": "ok", "admin": "ok"},
    "team_settings": {"victim": "forbidden", "intruder": "forbidden", "agent": "ok", "admin": "ok"},
    "save_team_settings": {
        "victim": "forbidden",
        "intruder": "forbidden",
        "agent": "forbidden",
        "admin": "ok",
    },
    # assignment, availability and the team list: the team's alone (a customer cannot
    # assign; the intruder is refused before the room is even looked up)
    "assign": {"victim": "forbidden", "intruder": "forbidden", "agent": "ok", "admin": "ok"},
    "set_availability": {
        "victim": "forbidden",
        "intruder": "forbidden",
        "agent": "ok",
        "admin": "ok",
    },
    "list_staff": {"victim": "forbidden", "intruder": "forbidden", "agent": "ok", "admin": "ok"},
    "view_room": {"victim": "forbidden", "intruder": "forbidden", "agent": "ok", "admin": "ok"},
}
SOCKET_CASES = [
    (e, actor, outcome) for e, row in SOCKET_MATRIX.items() for actor, outcome in row.items()
]


def count_messages(app, room_id):
    with app.app_context():
        return db.session.scalar(select(func.count()).where(Message.room_id == room_id))


def test_the_matrix_covers_every_event_the_server_handles():
    from app.sockets import ChatNamespace

    handled = {
        name.removeprefix("on_")
        for name in vars(ChatNamespace)
        if name.startswith("on_") and name not in ("on_connect", "on_disconnect")
    }
    assert handled == set(SOCKET_MATRIX) - {"send_note"}


def test_anonymous_sockets_are_refused_so_no_event_reaches_a_handler(app, connect, world):
    # Anonymous clients never get a socket, so they cannot send any event at all.
    registry = app.extensions["chat_registry"]
    before = len(registry.local_connections())
    client = connect(auth=None)
    assert not client.is_connected("/chat")
    assert len(registry.local_connections()) == before


@pytest.mark.parametrize("event, actor, outcome", SOCKET_CASES)
def test_socket_event_authorisation(app, connect, world, event, actor, outcome):
    victim_tab, admin_tab = connect(world["victim"]), connect(world["admin"])
    actor_tab = {"victim": victim_tab, "admin": admin_tab}.get(actor) or connect(world[actor])
    drain(victim_tab, admin_tab, actor_tab)
    staff = actor in ("agent", "admin")
    before = count_messages(app, world["room"])

    wire_event = "send_message" if event == "send_note" else event
    ack = emit(actor_tab, wire_event, payload_for(event, world))

    if outcome == "ok":
        assert ack["ok"] is True, ack
    else:
        assert ack == {"ok": False, "error": {"code": outcome, "message": ack["error"]["message"]}}
    if actor == "intruder":
        assert victim_tab.get_received("/chat") == []
        assert admin_tab.get_received("/chat") == []
        assert actor_tab.get_received("/chat") == []
        assert count_messages(app, world["room"]) == before
        if event == "list_rooms":
            assert [r["id"] for r in ack["rooms"]] == [world["intruder_room"]]
    if event == "list_rooms" and actor == "victim":
        assert [r["id"] for r in ack["rooms"]] == [world["room"]]
    if event == "list_rooms" and staff:
        assert {r["id"] for r in ack["rooms"]} == {world["room"], world["intruder_room"]}
    if event == "inbox_counts":  # each customer counts their own room only
        assert ack["counts"]["all"] == (2 if staff else 1)
    if event == "send_message" and staff:
        assert heard(victim_tab, "new_message") == [ack["message"]]
    if event == "send_message" and actor == "victim":
        assert heard(admin_tab, "new_message") == [ack["message"]]
    if event == "send_note":
        assert victim_tab.get_received("/chat") == []  # the customer never hears a note
        assert count_messages(app, world["room"]) == before + (1 if staff else 0)
        if staff:
            assert heard(admin_tab, "new_message") == [ack["message"]]
    if event == "assign" and staff:  # the team hears it; the customer never does
        assert ack["room"]["assignee"] == {"id": world["agent"].id, "name": "Aggie Agent"}
        assert victim_tab.get_received("/chat") == []


def test_intruder_hears_nothing_of_the_victims_room(connect, world):
    """The other direction: everything that happens in the victim's room, by the victim
    and by an admin, never reaches the intruder's sockets."""
    intruder_tab = connect(world["intruder"])
    victim_tab, admin_tab = connect(world["victim"]), connect(world["admin"])
    drain(intruder_tab)
    room = world["room"]
    reply = emit(admin_tab, "send_message", {"room_id": room, "body": "answer"})["message"]
    for tab, event, payload in [
        (victim_tab, "send_message", {"body": "more"}),
        (victim_tab, "typing", {"room_id": room, "is_typing": True}),
        (admin_tab, "typing", {"room_id": room, "is_typing": True}),
        (victim_tab, "mark_read", {"room_id": room, "message_id": reply["id"]}),
        (admin_tab, "mark_read", {"room_id": room, "message_id": reply["id"]}),
        (admin_tab, "set_status", {"room_id": room, "status": "resolved"}),
    ]:
        assert emit(tab, event, payload)["ok"] is True
    victim_tab.disconnect(namespace="/chat")  # presence of the victim is for admins only
    assert intruder_tab.get_received("/chat") == []


# HTTP: (method, path template, who) -> expected status; "{room}" is the victim's room,
# "{agent}" the agent's id
EVERYONE = {"anonymous": 401, "victim": 200, "intruder": 200, "agent": 200, "admin": 200}
ADMINS_ONLY = {"anonymous": 401, "victim": 403, "intruder": 403, "agent": 403}
HTTP_MATRIX = [
    ("GET", "/api/me", EVERYONE),
    ("GET", "/api/rooms", EVERYONE),
    (
        "GET",
        "/api/rooms/{room}/messages",
        {"anonymous": 401, "victim": 200, "intruder": 404, "agent": 200, "admin": 200},
    ),
    (
        "POST",
        "/api/auth/logout",
        {**EVERYONE, "victim": 204, "intruder": 204, "agent": 204, "admin": 204},
    ),
    ("POST", "/api/auth/refresh", EVERYONE),
    ("GET", "/healthz", {**EVERYONE, "anonymous": 200}),
    # the team: admins alone list it, invite to it and change its members
    ("GET", "/api/staff", {**ADMINS_ONLY, "admin": 200}),
    ("POST", "/api/staff/invitations", {**ADMINS_ONLY, "admin": 201}),
    ("PATCH", "/api/staff/{agent}", {**ADMINS_ONLY, "admin": 200}),
]
HTTP_BODIES = {
    "/api/staff/invitations": {"email": "invited@example.com", "role": "agent"},
    "/api/staff/{agent}": {"capacity": 3},
}
HTTP_CASES = [(m, p, who, status) for m, p, row in HTTP_MATRIX for who, status in row.items()]


@pytest.mark.parametrize("method, path, who, status", HTTP_CASES)
def test_http_endpoint_authorisation(http, users, world, method, path, who, status):
    headers = {}
    if who != "anonymous":
        kind = "refresh" if path == "/api/auth/refresh" else "access"
        headers["Authorization"] = f"Bearer {users.token(world[who], kind)}"
    url = path.format(room=world["room"], agent=world["agent"].id)
    response = http.open(url, method=method, headers=headers, json=HTTP_BODIES.get(path))
    assert response.status_code == status, response.get_data(True)
    if status >= 400:
        codes = {401: "unauthorized", 403: "forbidden", 404: "not_found"}
        assert response.get_json()["error"]["code"] == codes[status]
    if path == "/api/rooms" and status == 200:
        ids = {r["id"] for r in response.get_json()["rooms"]}
        expected = {
            "victim": {world["room"]},
            "intruder": {world["intruder_room"]},
            "agent": {world["room"], world["intruder_room"]},
            "admin": {world["room"], world["intruder_room"]},
        }[who]
        assert ids == expected
    if path == "/api/me" and status == 200:
        assert response.get_json()["user"]["id"] == world[who].id


@pytest.mark.parametrize("path", ["/api/auth/register", "/api/auth/login"])
def test_public_endpoints_need_no_token(http, world, path):
    body = {"email": "fresh@example.com", "password": "long enough", "name": "Fresh"}
    if path.endswith("login"):
        body = {"email": world["victim"].email, "password": world["victim"].password}
    assert http.post(path, json=body).status_code in (200, 201)


def test_a_deactivated_agents_socket_hears_nothing(app, http, users, connect, world):
    """Deactivated mid-conversation: the change itself closes the agent's open socket
    and drops it from the registry, so nothing the room or the team does afterwards
    has a way to it; the same token cannot open a new one."""
    registry = app.extensions["chat_registry"]
    agent_tab, admin_tab = connect(world["agent"]), connect(world["admin"])
    victim_tab = connect(world["victim"])
    drain(agent_tab, admin_tab, victim_tab)
    assert registry.online([world["agent"].id]) == {world["agent"].id}
    agent_token = users.token(world["agent"])
    admin_token = users.token(world["admin"])
    changed = http.patch(
        f"/api/staff/{world['agent'].id}",
        json={"active": False},
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert changed.status_code == 200, changed.get_json()
    assert not agent_tab.is_connected("/chat")
    assert registry.online([world["agent"].id]) == set()
    assert registry.sids_of(world["agent"].id) == set()

    room = world["room"]
    assert emit(victim_tab, "send_message", {"body": "anyone there?"})["ok"]
    for event, payload in [
        ("send_message", {"room_id": room, "body": "yes, Ada here"}),
        ("assign", {"room_id": room, "agent_id": world["agent"].id}),
    ]:
        ack = emit(admin_tab, event, payload)
        assert ack["ok"] is (event != "assign"), ack  # nobody assigns to a deactivated agent
    late = connect(auth={"token": agent_token})
    assert not late.is_connected("/chat")
