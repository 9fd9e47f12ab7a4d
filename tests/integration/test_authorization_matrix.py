"""Promise 1: nobody sees a room that is not theirs.

Every socket event and every HTTP endpoint, tried by an anonymous client, the room's
customer, another customer (the intruder) and an admin. For each socket case we listen
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
    }[event]


# event -> what the room's customer, an intruder and an admin get
SOCKET_MATRIX = {
    "send_message": {"victim": "ok", "intruder": "not_found", "admin": "ok"},
    # an internal note (send_message with internal: true) is for the support team alone
    "send_note": {"victim": "forbidden", "intruder": "forbidden", "admin": "ok"},
    "history": {"victim": "ok", "intruder": "not_found", "admin": "ok"},
    "mark_read": {"victim": "ok", "intruder": "not_found", "admin": "ok"},
    "typing": {"victim": "ok", "intruder": "not_found", "admin": "ok"},
    "set_status": {"victim": "forbidden", "intruder": "not_found", "admin": "ok"},
    "list_rooms": {"victim": "ok", "intruder": "ok", "admin": "ok"},
    "inbox_counts": {"victim": "ok", "intruder": "ok", "admin": "ok"},
    "customer_profile": {"victim": "forbidden", "intruder": "not_found", "admin": "ok"},
    # the team's saved replies: admins only
    "list_canned": {"victim": "forbidden", "intruder": "forbidden", "admin": "ok"},
    "save_canned": {"victim": "forbidden", "intruder": "forbidden", "admin": "ok"},
    "delete_canned": {"victim": "forbidden", "intruder": "forbidden", "admin": "ok"},
    # the businesses' sites (the widget): admins only
    "list_sites": {"victim": "forbidden", "intruder": "forbidden", "admin": "ok"},
    "add_site": {"victim": "forbidden", "intruder": "forbidden", "admin": "ok"},
    "rotate_site_secret": {"victim": "forbidden", "intruder": "forbidden", "admin": "ok"},
    "remove_site": {"victim": "forbidden", "intruder": "forbidden", "admin": "ok"},
    # an agent's own waiting-customer emails
    "set_alert_emails": {"victim": "forbidden", "intruder": "forbidden", "admin": "ok"},
    # whether the team is in: anyone; the team's hours and away text: admins only
    "availability": {"victim": "ok", "intruder": "ok", "admin": "ok"},
    "team_settings": {"victim": "forbidden", "intruder": "forbidden", "admin": "ok"},
    "save_team_settings": {"victim": "forbidden", "intruder": "forbidden", "admin": "ok"},
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
    if event == "list_rooms" and actor == "admin":
        assert {r["id"] for r in ack["rooms"]} == {world["room"], world["intruder_room"]}
    if event == "inbox_counts":  # each customer counts their own room only
        assert ack["counts"]["all"] == (2 if actor == "admin" else 1)
    if event == "send_message" and actor == "admin":
        assert heard(victim_tab, "new_message") == [ack["message"]]
    if event == "send_message" and actor == "victim":
        assert heard(admin_tab, "new_message") == [ack["message"]]
    if event == "send_note":
        assert victim_tab.get_received("/chat") == []  # the customer never hears a note
        assert count_messages(app, world["room"]) == before + (1 if actor == "admin" else 0)
        if actor == "admin":
            assert heard(admin_tab, "new_message") == [ack["message"]]


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


# HTTP: (method, path template, who) -> expected status; "{room}" is the victim's room
HTTP_MATRIX = [
    ("GET", "/api/me", {"anonymous": 401, "victim": 200, "intruder": 200, "admin": 200}),
    ("GET", "/api/rooms", {"anonymous": 401, "victim": 200, "intruder": 200, "admin": 200}),
    (
        "GET",
        "/api/rooms/{room}/messages",
        {"anonymous": 401, "victim": 200, "intruder": 404, "admin": 200},
    ),
    ("POST", "/api/auth/logout", {"anonymous": 401, "victim": 204, "intruder": 204, "admin": 204}),
    ("POST", "/api/auth/refresh", {"anonymous": 401, "victim": 200, "intruder": 200, "admin": 200}),
    ("GET", "/healthz", {"anonymous": 200, "victim": 200, "intruder": 200, "admin": 200}),
]
HTTP_CASES = [(m, p, who, status) for m, p, row in HTTP_MATRIX for who, status in row.items()]


@pytest.mark.parametrize("method, path, who, status", HTTP_CASES)
def test_http_endpoint_authorisation(http, users, world, method, path, who, status):
    headers = {}
    if who != "anonymous":
        kind = "refresh" if path == "/api/auth/refresh" else "access"
        headers["Authorization"] = f"Bearer {users.token(world[who], kind)}"
    response = http.open(path.format(room=world["room"]), method=method, headers=headers)
    assert response.status_code == status, response.get_data(True)
    if status >= 400:
        assert (
            response.get_json()["error"]["code"] == {401: "unauthorized", 404: "not_found"}[status]
        )
    if path == "/api/rooms" and status == 200:
        ids = {r["id"] for r in response.get_json()["rooms"]}
        expected = {
            "victim": {world["room"]},
            "intruder": {world["intruder_room"]},
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
