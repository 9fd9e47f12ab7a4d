"""Assignment (issue 23): by hand, live for the whole team; automatically to the
available, online member with the fewest open conversations under their capacity,
ties round-robin, the oldest waiting conversation first; given back on deactivation
and (when configured) after a grace period away."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from tests.conftest import drain, emit, heard


def bearer(users, account) -> dict:
    return {"Authorization": f"Bearer {users.token(account)}"}


def first_message(connect, customer, body="hello") -> int:
    return emit(connect(customer), "send_message", {"body": body})["message"]["room_id"]


def assignee_of(support, room_id):
    rooms = emit(support, "list_rooms", {"limit": 100})["rooms"]
    [room] = [r for r in rooms if r["id"] == room_id]
    return room["assignee"]["id"] if room["assignee"] else None


def lines(support, room_id):
    return [
        (e["kind"], e["by"]["name"] if e["by"] else None, (e.get("assignee") or {}).get("name"))
        for e in emit(support, "history", {"room_id": room_id})["events"]
    ]


def test_assigning_by_hand_is_seen_live_by_the_team_and_never_by_the_customer(
    connect, users, customer, admin, manual_assignment
):
    ana = users.make("agent", name="Ana")
    ben = users.make("agent", name="Ben")
    cust = connect(customer)
    room_id = emit(cust, "send_message", {"body": "my lid"})["message"]["room_id"]
    ana_tab, ben_tab, admin_tab = connect(ana), connect(ben), connect(admin)
    drain(cust, ana_tab, ben_tab, admin_tab)

    ack = emit(ana_tab, "assign", {"room_id": room_id, "agent_id": ben.id})
    assert ack["ok"] and ack["room"]["assignee"] == {"id": ben.id, "name": "Ben"}
    for tab in (ben_tab, admin_tab, ana_tab):  # every staff socket, the actor's included
        received = tab.get_received("/chat")
        [room] = [e["args"][0] for e in received if e["name"] == "room_updated"]
        assert room["assignee"] == {"id": ben.id, "name": "Ben"}
        [line] = [e["args"][0] for e in received if e["name"] == "room_event"]
        assert (line["kind"], line["by"]["name"], line["assignee"]) == (
            "assigned",
            "Ana",
            {"id": ben.id, "name": "Ben"},
        )
    assert cust.get_received("/chat") == []

    # the same again changes nothing and tells nobody
    assert emit(ana_tab, "assign", {"room_id": room_id, "agent_id": ben.id})["ok"]
    assert ben_tab.get_received("/chat") == []

    unassigned = emit(ben_tab, "assign", {"room_id": room_id, "agent_id": None})
    assert unassigned["room"]["assignee"] is None
    [line] = heard(admin_tab, "room_event")
    assert (line["by"]["name"], line["assignee"]) == ("Ben", None)
    assert lines(admin_tab, room_id) == [("assigned", "Ana", "Ben"), ("assigned", "Ben", None)]
    assert "events" not in emit(cust, "history", {"room_id": room_id})
    assert "assignee" not in emit(cust, "list_rooms", {})["rooms"][0]


@pytest.mark.parametrize(
    "agent, field",
    [
        ("customer", "agent_id"),
        ("nobody", "agent_id"),
        ("deactivated", "agent_id"),
        ("text", "agent_id"),
    ],
)
def test_assigning_to_someone_not_on_the_team_is_refused_and_changes_nothing(
    http, connect, users, customer, admin, manual_assignment, agent, field
):
    gone = users.make("agent", name="Gone")
    http.patch(f"/api/staff/{gone.id}", json={"active": False}, headers=bearer(users, admin))
    room_id = first_message(connect, customer)
    support = connect(admin)
    drain(support)
    agent_id = {"customer": customer.id, "nobody": 99999, "deactivated": gone.id, "text": "1"}[
        agent
    ]
    ack = emit(support, "assign", {"room_id": room_id, "agent_id": agent_id})
    assert ack["ok"] is False
    assert (ack["error"]["code"], ack["error"]["field"]) == ("validation_error", field)
    assert assignee_of(support, room_id) is None
    assert heard(support, "room_event") == []


def test_assigning_an_unknown_room_is_not_found(connect, admin):
    ack = emit(connect(admin), "assign", {"room_id": 424242, "agent_id": None})
    assert ack["error"]["code"] == "not_found"


def test_a_new_conversation_goes_to_the_member_with_the_fewest_open(connect, users):
    ana = users.make("agent", name="Ana")
    ben = users.make("agent", name="Ben")
    ana_tab = connect(ana)
    for n in range(2):  # Ana alone online: she gets both
        first_message(connect, users.make("customer"), f"early {n}")
    ben_tab = connect(ben)
    rooms = [first_message(connect, users.make("customer"), f"later {n}") for n in range(3)]
    # Ben had none: he gets two of the next three, then they are level and Ana's turn
    # comes by round-robin (Ben was given one last)
    assert [assignee_of(ana_tab, r) for r in rooms] == [ben.id, ben.id, ana.id]
    counts = emit(ben_tab, "inbox_counts", {})["counts"]["views"]
    assert counts == {"mine": 2, "unassigned": 0, "all": 5}


def test_ties_go_round_robin(connect, users):
    members = [users.make("agent", name=n) for n in ("Ana", "Ben", "Cho")]
    tabs = [connect(m) for m in members]
    rooms = [first_message(connect, users.make("customer"), f"n{n}") for n in range(6)]
    given = [assignee_of(tabs[0], r) for r in rooms]
    ids = [m.id for m in members]
    assert given == ids + ids


def test_away_and_offline_members_get_nothing_and_the_queue_waits(connect, users):
    ana = users.make("agent", name="Ana")
    ana_tab = connect(ana)
    assert emit(ana_tab, "set_availability", {"available": False}) == {
        "ok": True,
        "available": False,
    }
    offline = users.make("agent", name="Off")  # never connects
    room_id = first_message(connect, customer := users.make("customer"))
    assert assignee_of(ana_tab, room_id) is None
    assert emit(ana_tab, "inbox_counts", {})["counts"]["views"]["unassigned"] == 1
    drain(ana_tab)
    # back: the waiting conversation is hers at once
    assert emit(ana_tab, "set_availability", {"available": True})["ok"]
    assert assignee_of(ana_tab, room_id) == ana.id
    [line] = heard(ana_tab, "room_event")
    assert (line["kind"], line["by"], line["assignee"]["id"]) == ("assigned", None, ana.id)
    assert offline.id not in {assignee_of(ana_tab, room_id)}
    del customer


def test_the_oldest_waiting_conversation_is_given_first_when_a_place_frees(
    http, connect, users, admin
):
    """Chatwoot #10583: a freed place went to the newest conversation."""
    ana = users.make("agent", name="Ana")
    http.patch(f"/api/staff/{ana.id}", json={"capacity": 1}, headers=bearer(users, admin))
    ana_tab = connect(ana)
    held = first_message(connect, users.make("customer"), "held")
    older = first_message(connect, users.make("customer"), "older")
    newer = first_message(connect, users.make("customer"), "newer")
    assert [assignee_of(ana_tab, r) for r in (held, older, newer)] == [ana.id, None, None]

    emit(ana_tab, "set_status", {"room_id": held, "status": "resolved"})
    assert [assignee_of(ana_tab, r) for r in (older, newer)] == [ana.id, None]
    # a capacity raised by an admin gives the next one
    http.patch(f"/api/staff/{ana.id}", json={"capacity": 2}, headers=bearer(users, admin))
    emit(ana_tab, "set_availability", {"available": True})
    assert assignee_of(ana_tab, newer) == ana.id


def test_a_member_coming_online_takes_waiting_conversations_up_to_capacity(
    http, connect, users, admin
):
    ana = users.make("agent", name="Ana")
    http.patch(f"/api/staff/{ana.id}", json={"capacity": 2}, headers=bearer(users, admin))
    rooms = [first_message(connect, users.make("customer"), f"n{n}") for n in range(3)]
    ana_tab = connect(ana)
    assert [assignee_of(ana_tab, r) for r in rooms] == [ana.id, ana.id, None]


def test_a_reopened_conversation_is_assigned_again(connect, users, admin):
    ana = users.make("agent", name="Ana")
    customer = users.make("customer")
    cust = connect(customer)
    room_id = emit(cust, "send_message", {"body": "one"})["message"]["room_id"]
    support = connect(admin)  # the admin takes it on arrival
    assert assignee_of(support, room_id) == admin.id
    emit(support, "assign", {"room_id": room_id, "agent_id": None})
    emit(support, "set_status", {"room_id": room_id, "status": "resolved"})
    emit(support, "set_availability", {"available": False})
    ana_tab = connect(ana)
    assert emit(cust, "send_message", {"body": "it broke again"})["ok"]
    assert assignee_of(ana_tab, room_id) == ana.id
    kinds = [k for k, _, _ in lines(support, room_id)]
    assert kinds == ["assigned", "assigned", "status", "status", "assigned"]


def test_unassigned_by_hand_stays_with_the_team_until_it_reopens(connect, users, admin):
    support = connect(admin)
    room_id = first_message(connect, users.make("customer"))
    assert assignee_of(support, room_id) == admin.id
    emit(support, "assign", {"room_id": room_id, "agent_id": None})
    # a place is free and the admin is available, yet it is not given straight back
    assert assignee_of(support, room_id) is None


def test_deactivating_gives_the_members_conversations_back_to_the_queue(
    app, http, connect, users, admin
):
    ana = users.make("agent", name="Ana")
    ben = users.make("agent", name="Ben")
    ana_tab = connect(ana)
    rooms = [first_message(connect, users.make("customer"), f"n{n}") for n in range(2)]
    ben_tab = connect(ben)
    drain(ben_tab)
    http.patch(f"/api/staff/{ana.id}", json={"active": False}, headers=bearer(users, admin))
    assert not ana_tab.is_connected("/chat")
    assert [assignee_of(ben_tab, r) for r in rooms] == [ben.id, ben.id]
    given = [line for line in heard(ben_tab, "room_event") if line["assignee"]]
    assert sorted(line["room_id"] for line in given) == rooms


def test_away_past_the_grace_period_gives_conversations_back(app, connect, users):
    from app.services import assignment

    ana = users.make("agent", name="Ana")
    ben = users.make("agent", name="Ben")
    ana_tab = connect(ana)
    room_id = first_message(connect, users.make("customer"))
    assert assignee_of(ana_tab, room_id) == ana.id
    huey = app.extensions["chat_jobs"].huey
    huey.flush()

    # off by default: going away schedules nothing and keeps the conversation
    assert app.config["CHAT_RELEASE_AFTER"] == 0
    emit(ana_tab, "set_availability", {"available": False})
    assert huey.scheduled_count() == 0 and huey.pending_count() == 0
    emit(ana_tab, "set_availability", {"available": True})

    app.config["CHAT_RELEASE_AFTER"] = 60
    emit(ana_tab, "set_availability", {"available": False})
    assert huey.pending_count() == 1  # the check, due in a minute (queued with its eta)
    ben_tab = connect(ben)
    with app.app_context():  # the job, when due: Ana came back in time
        emit(ana_tab, "set_availability", {"available": True})
        assert assignment.release_if_gone(ana.id) == "back"
    assert assignee_of(ben_tab, room_id) == ana.id

    emit(ana_tab, "set_availability", {"available": False})
    with app.app_context():  # ... and this time she did not
        assert assignment.release_if_gone(ana.id) == "released 1"
    assert assignee_of(ben_tab, room_id) == ben.id


def test_offline_past_the_grace_period_gives_conversations_back(app, connect, users):
    from app.services import assignment

    app.config["CHAT_RELEASE_AFTER"] = 60
    ana = users.make("agent", name="Ana")
    ana_tab = connect(ana)
    room_id = first_message(connect, users.make("customer"))
    huey = app.extensions["chat_jobs"].huey
    huey.flush()
    ana_tab.disconnect(namespace="/chat")
    assert huey.pending_count() == 1  # the check, queued with its eta
    with app.app_context():
        assert assignment.release_if_gone(ana.id) == "released 1"
    ben_tab = connect(users.make("agent", name="Ben"))
    assert assignee_of(ben_tab, room_id) is not None  # Ben takes it on arrival


def test_with_automatic_assignment_off_conversations_wait_until_it_is_on(connect, users, admin):
    support = connect(admin)
    off = emit(
        support, "save_team_settings", {"hours": None, "away_message": None, "auto_assign": False}
    )
    assert off["auto_assign"] is False
    rooms = [first_message(connect, users.make("customer"), f"n{n}") for n in range(2)]
    assert [assignee_of(support, r) for r in rooms] == [None, None]
    on = emit(
        support, "save_team_settings", {"hours": None, "away_message": None, "auto_assign": True}
    )
    assert on["auto_assign"] is True
    assert [assignee_of(support, r) for r in rooms] == [admin.id, admin.id]
    bad = emit(support, "save_team_settings", {"hours": None, "auto_assign": "yes"})
    assert bad["error"]["field"] == "auto_assign"


def test_the_views_combine_with_the_filters_and_are_counted(connect, users, admin):
    ana = users.make("agent", name="Ana")
    ana_tab = connect(ana)
    mine = [first_message(connect, users.make("customer"), f"m{n}") for n in range(2)]
    support = connect(admin)
    emit(support, "set_availability", {"available": False})
    emit(ana_tab, "set_availability", {"available": False})
    waiting = first_message(connect, users.make("customer"), "waiting")
    emit(ana_tab, "set_status", {"room_id": mine[1], "status": "resolved"})

    def ids(tab, **query):
        return sorted(r["id"] for r in emit(tab, "list_rooms", query)["rooms"])

    assert ids(ana_tab, view="mine") == sorted(mine)
    assert ids(ana_tab, view="mine", status="open") == [mine[0]]
    assert ids(ana_tab, view="unassigned") == [waiting]
    assert ids(support, view="mine") == []
    assert ids(support, view="all") == sorted(mine + [waiting])
    counts = emit(ana_tab, "inbox_counts", {"view": "mine"})["counts"]
    assert counts == {
        "all": 2,
        "open": 1,
        "resolved": 1,
        "unread": 2,
        "views": {"mine": 1, "unassigned": 1, "all": 2},
    }
    bad = emit(ana_tab, "list_rooms", {"view": "theirs"})
    assert (bad["error"]["code"], bad["error"]["field"]) == ("validation_error", "view")


def test_a_customers_view_has_no_views(connect, customer):
    cust = connect(customer)
    emit(cust, "send_message", {"body": "hi"})
    counts = emit(cust, "inbox_counts", {"view": "mine"})["counts"]
    assert "views" not in counts


def test_the_sweep_gives_out_what_a_dead_process_left_waiting(app, connect, users):
    """A process died between a send and its assignment: the room waits with
    queued_at set; the once-a-second sweep gives it out."""
    from app.extensions import db
    from app.models import ChatRoom
    from app.services import assignment

    ana = users.make("agent", name="Ana")
    connect(ana)  # online: the sweep may give her the room
    room_id = first_message(connect, users.make("customer"))
    with app.app_context():  # as if the assignment never ran
        db.session.execute(
            update(ChatRoom)
            .where(ChatRoom.id == room_id)
            .values(assignee_id=None, queued_at=ChatRoom.created_at)
        )
        db.session.commit()
        assert assignment.sweep_queue() == 1
        assert (
            db.session.scalar(select(ChatRoom.assignee_id).where(ChatRoom.id == room_id)) == ana.id
        )
        assert assignment.sweep_queue() == 0


def test_the_team_sees_who_is_viewing_and_the_customer_never_does(connect, users, customer):
    ana = users.make("agent", name="Ana")
    ben = users.make("agent", name="Ben")
    cust = connect(customer)
    room_id = emit(cust, "send_message", {"body": "hi"})["message"]["room_id"]
    other = first_message(connect, users.make("customer"))
    ana_tab, ben_tab = connect(ana), connect(ben)
    drain(cust, ana_tab, ben_tab)

    assert emit(ana_tab, "view_room", {"room_id": room_id}) == {"ok": True}
    ana_as_viewer = {"id": ana.id, "name": "Ana"}
    assert heard(ben_tab, "viewing") == [
        {"room_id": room_id, "user": ana_as_viewer, "viewing": True}
    ]
    # moving to another conversation says she left the first
    emit(ana_tab, "view_room", {"room_id": other})
    assert heard(ben_tab, "viewing") == [
        {"room_id": room_id, "user": ana_as_viewer, "viewing": False},
        {"room_id": other, "user": ana_as_viewer, "viewing": True},
    ]
    # closing the tab says it too
    ana_tab.disconnect(namespace="/chat")
    assert heard(ben_tab, "viewing") == [
        {"room_id": other, "user": ana_as_viewer, "viewing": False}
    ]
    assert heard(cust, "viewing") == []
    refused = emit(ben_tab, "view_room", {"room_id": 424242})
    assert refused["error"]["code"] == "not_found"
    assert emit(ben_tab, "view_room", {"room_id": None}) == {"ok": True}


def test_a_reply_over_someone_elses_assignment_is_recorded_once_asked(connect, users, customer):
    ana = users.make("agent", name="Ana")
    ben = users.make("agent", name="Ben")
    ben_tab = connect(ben)
    cust = connect(customer)
    room_id = emit(cust, "send_message", {"body": "hi"})["message"]["room_id"]
    assert assignee_of(ben_tab, room_id) == ben.id
    ana_tab = connect(ana)
    drain(ben_tab, ana_tab, cust)

    sent = emit(
        ana_tab,
        "send_message",
        {"room_id": room_id, "body": "I know this one", "reply_anyway": True},
    )
    assert sent["ok"]
    [line] = heard(ben_tab, "room_event")
    assert (line["kind"], line["by"]["name"], line["assignee"]) == (
        "reply_anyway",
        "Ana",
        {"id": ben.id, "name": "Ben"},
    )
    assert line["after_message_id"] == sent["message"]["id"]
    assert [e["name"] for e in cust.get_received("/chat")] == ["new_message"]
    # the flag on a room that is one's own, or a note, records nothing
    emit(ben_tab, "send_message", {"room_id": room_id, "body": "mine", "reply_anyway": True})
    emit(
        ana_tab,
        "send_message",
        {"room_id": room_id, "body": "fyi", "internal": True, "reply_anyway": True},
    )
    assert heard(ben_tab, "room_event") == []
    assert [k for k, _, _ in lines(ben_tab, room_id)] == ["assigned", "reply_anyway"]
    assert assignee_of(ben_tab, room_id) == ben.id  # the assignment stays
