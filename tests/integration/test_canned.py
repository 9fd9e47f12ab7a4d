"""Canned replies: a team list in the database, managed from the inbox (admins only),
and every admin socket hears the whole list whenever it changes."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import CannedReply
from tests.conftest import drain, emit, heard


@pytest.fixture
def agents(connect, admin, users):
    tab, colleague = connect(admin), connect(users.make("admin", name="Cole League"))
    drain(tab, colleague)
    return tab, colleague


def stored(app):
    with app.app_context():
        return [(r.shortcut, r.body) for r in db.session.scalars(select(CannedReply))]


def test_an_admin_saves_a_reply_and_every_admin_hears_the_new_list(app, agents, connect, customer):
    tab, colleague = agents
    customer_tab = connect(customer)
    drain(customer_tab)

    ack = emit(
        tab, "save_canned", {"shortcut": "/Refund", "body": "  Your refund is on its way.  "}
    )

    assert ack["ok"] is True, ack
    reply = ack["reply"]
    assert reply["shortcut"] == "refund" and reply["body"] == "Your refund is on its way."
    assert stored(app) == [("refund", "Your refund is on its way.")]
    assert heard(colleague, "canned_replies") == [{"replies": [reply]}]
    assert emit(colleague, "list_canned", {}) == {"ok": True, "replies": [reply]}
    assert heard(customer_tab, "canned_replies") == []  # the team's wording stays the team's


def test_replies_are_listed_by_shortcut_and_can_be_changed_and_deleted(app, agents):
    tab, colleague = agents
    later = emit(tab, "save_canned", {"shortcut": "thanks", "body": "Thanks!"})["reply"]
    first = emit(tab, "save_canned", {"shortcut": "hello", "body": "Hi there"})["reply"]
    assert [r["shortcut"] for r in emit(tab, "list_canned")["replies"]] == ["hello", "thanks"]

    changed = emit(tab, "save_canned", {"id": first["id"], "shortcut": "hi", "body": "Hello!"})
    assert changed["reply"] == {"id": first["id"], "shortcut": "hi", "body": "Hello!"}
    assert emit(tab, "delete_canned", {"id": later["id"]}) == {"ok": True}

    assert stored(app) == [("hi", "Hello!")]
    assert heard(colleague, "canned_replies")[-1] == {"replies": [changed["reply"]]}


def test_a_shortcut_in_use_is_a_conflict_and_changes_nothing(app, agents):
    tab, _ = agents
    emit(tab, "save_canned", {"shortcut": "hello", "body": "Hi there"})
    other = emit(tab, "save_canned", {"shortcut": "bye", "body": "Bye"})["reply"]

    taken = emit(tab, "save_canned", {"shortcut": "HELLO", "body": "Another"})
    renamed = emit(tab, "save_canned", {"id": other["id"], "shortcut": "hello", "body": "Bye"})

    for ack in (taken, renamed):
        assert ack["ok"] is False and ack["error"]["code"] == "conflict", ack
        assert "/hello is taken" in ack["error"]["message"]
    assert sorted(stored(app)) == [("bye", "Bye"), ("hello", "Hi there")]


@pytest.mark.parametrize(
    "event, payload, code",
    [
        ("save_canned", {"shortcut": "has space", "body": "x"}, "validation_error"),
        ("save_canned", {"shortcut": "", "body": "x"}, "validation_error"),
        ("save_canned", {"shortcut": "x" * 33, "body": "x"}, "validation_error"),
        ("save_canned", {"shortcut": "ok", "body": "   "}, "validation_error"),
        ("save_canned", {"shortcut": "ok", "body": "x" * 4001}, "validation_error"),
        ("save_canned", {"shortcut": "ok"}, "validation_error"),
        ("save_canned", {"id": 999, "shortcut": "ok", "body": "x"}, "not_found"),
        ("delete_canned", {"id": 999}, "not_found"),
        ("delete_canned", {"id": "1"}, "validation_error"),
    ],
)
def test_bad_requests_get_a_clear_error(app, agents, event, payload, code):
    ack = emit(agents[0], event, payload)

    assert ack["ok"] is False and ack["error"]["code"] == code, ack
    assert stored(app) == []
    assert heard(agents[1], "canned_replies") == []


@pytest.mark.parametrize(
    "event, payload",
    [
        ("list_canned", {}),
        ("save_canned", {"shortcut": "mine", "body": "sneaky"}),
        ("delete_canned", {"id": 1}),
    ],
)
def test_customers_may_not_read_or_change_the_teams_replies(
    app, agents, connect, customer, event, payload
):
    emit(agents[0], "save_canned", {"shortcut": "secret", "body": "internal wording"})
    drain(*agents)

    ack = emit(connect(customer), event, payload)

    assert ack["ok"] is False and ack["error"]["code"] == "forbidden", ack
    assert stored(app) == [("secret", "internal wording")]
    assert heard(agents[1], "canned_replies") == []


def test_errors_name_the_field_so_the_dialog_can_mark_it(app, agents):
    """The dialog says what is wrong in the agent's language and marks the field: the
    server names it (PROTOCOL, Error `field`)."""
    tab, _ = agents
    emit(tab, "save_canned", {"shortcut": "hello", "body": "Hi there"})
    taken = emit(tab, "save_canned", {"shortcut": "hello", "body": "Again"})
    bad_shortcut = emit(tab, "save_canned", {"shortcut": "no spaces", "body": "x"})
    empty_body = emit(tab, "save_canned", {"shortcut": "fine", "body": "   "})
    assert (taken["error"]["code"], taken["error"]["field"]) == ("conflict", "shortcut")
    assert (bad_shortcut["error"]["code"], bad_shortcut["error"]["field"]) == (
        "validation_error",
        "shortcut",
    )
    assert (empty_body["error"]["code"], empty_body["error"]["field"]) == (
        "validation_error",
        "body",
    )
