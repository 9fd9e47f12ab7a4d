"""The thread's quiet status lines (RoomEvent): resolved and reopened, by whom, for the
team only, live and in every page of history exactly once."""

from __future__ import annotations

import pytest

from tests.conftest import drain, emit, heard

# The status lines alone: automatic assignment's lines are tests/integration/test_assignment.py's.
pytestmark = pytest.mark.usefixtures("manual_assignment")


def send(client, body, room_id=None):
    payload = {"body": body} if room_id is None else {"body": body, "room_id": room_id}
    return emit(client, "send_message", payload)["message"]


def test_resolving_writes_a_line_the_team_hears_and_the_customer_never_sees(
    connect, customer, admin
):
    cust, support, other_tab = connect(customer), connect(admin), connect(admin)
    first = send(cust, "my lid is cracked")
    note = emit(
        support, "send_message", {"room_id": first["room_id"], "body": "stock?", "internal": True}
    )["message"]
    drain(cust, support, other_tab)

    emit(support, "set_status", {"room_id": first["room_id"], "status": "resolved"})

    [line] = heard(other_tab, "room_event")
    assert line == {
        "id": line["id"],
        "room_id": first["room_id"],
        "kind": "status",
        "status": "resolved",
        "by": {"id": admin.id, "name": admin.name, "role": "admin"},
        "after_message_id": note["id"],  # the newest of the room, notes included
        "created_at": line["created_at"],
    }
    assert heard(cust, "room_event") == []
    page = emit(support, "history", {"room_id": first["room_id"]})
    assert page["events"] == [line]
    assert "events" not in emit(cust, "history", {"room_id": first["room_id"]})


def test_the_same_status_again_writes_no_line(connect, customer, admin):
    cust, support = connect(customer), connect(admin)
    room_id = send(cust, "hello")["room_id"]
    drain(support)
    emit(support, "set_status", {"room_id": room_id, "status": "open"})  # it is open
    assert heard(support, "room_event") == []
    assert emit(support, "history", {"room_id": room_id})["events"] == []


def test_a_customer_writing_into_a_resolved_room_reopens_it_with_a_line_after_that_message(
    connect, customer, admin
):
    cust, support = connect(customer), connect(admin)
    room_id = send(cust, "hello")["room_id"]
    emit(support, "set_status", {"room_id": room_id, "status": "resolved"})
    drain(cust, support)

    again = send(cust, "one more thing")

    [line] = heard(support, "room_event")
    assert (line["status"], line["by"]["id"], line["after_message_id"]) == (
        "open",
        customer.id,
        again["id"],
    )
    statuses = [e["status"] for e in emit(support, "history", {"room_id": room_id})["events"]]
    assert statuses == ["resolved", "open"]


def test_every_line_lands_in_exactly_one_page_of_earlier_history(connect, customer, admin):
    cust, support = connect(customer), connect(admin)
    ids = [send(cust, "m1")["id"], send(cust, "m2")["id"]]
    room_id = emit(cust, "list_rooms")["rooms"][0]["id"]
    emit(support, "set_status", {"room_id": room_id, "status": "resolved"})  # after m2
    ids.append(send(support, "r0", room_id)["id"])  # the team's reply leaves it resolved
    emit(support, "set_status", {"room_id": room_id, "status": "open"})  # after r0
    ids += [send(support, f"r{n}", room_id)["id"] for n in (1, 2, 3)]  # m1 m2 r0 r1 r2 r3

    def placed(page):
        return [(e["status"], e["after_message_id"]) for e in page["events"]]

    newest = emit(support, "history", {"room_id": room_id, "limit": 2})
    middle = emit(support, "history", {"room_id": room_id, "limit": 2, "before_id": ids[4]})
    oldest = emit(support, "history", {"room_id": room_id, "limit": 2, "before_id": ids[2]})
    assert [[m["id"] for m in p["messages"]] for p in (oldest, middle, newest)] == [
        ids[0:2],
        ids[2:4],
        ids[4:6],
    ]
    assert (placed(oldest), placed(middle), placed(newest)) == (
        [("resolved", ids[1])],
        [("open", ids[2])],
        [],
    )
    assert not oldest["has_more"]


def test_catching_up_after_a_reconnect_brings_every_line_after_the_last_message_held(
    connect, customer, admin
):
    cust, support = connect(customer), connect(admin)
    ids = [send(cust, "m1")["id"]]
    room_id = ids and emit(cust, "list_rooms")["rooms"][0]["id"]
    # The tab held m1, then lost its connection: the room was resolved right after m1
    # (a line placed after the message it already has), and more was said.
    emit(support, "set_status", {"room_id": room_id, "status": "resolved"})
    ids += [send(support, f"r{n}", room_id)["id"] for n in (1, 2, 3)]
    emit(support, "set_status", {"room_id": room_id, "status": "open"})  # after r3

    first = emit(support, "history", {"room_id": room_id, "limit": 2, "after_id": ids[0]})
    second = emit(support, "history", {"room_id": room_id, "limit": 2, "after_id": ids[2]})
    assert [m["id"] for m in first["messages"] + second["messages"]] == ids[1:]
    assert first["has_more"] and not second["has_more"]
    assert [e["status"] for e in first["events"]] == ["resolved"]
    assert [e["status"] for e in second["events"]] == ["open"]


def test_the_http_history_carries_the_lines_for_staff_only(http, users, connect, customer, admin):
    cust, support = connect(customer), connect(admin)
    room_id = send(cust, "hello")["room_id"]
    emit(support, "set_status", {"room_id": room_id, "status": "resolved"})

    def get(account):
        headers = {"Authorization": f"Bearer {users.token(account)}"}
        return http.get(f"/api/rooms/{room_id}/messages", headers=headers).json

    assert [e["status"] for e in get(admin)["events"]] == ["resolved"]
    assert "events" not in get(customer)
