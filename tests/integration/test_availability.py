"""Honest availability (issue 22): the team's hours and away text (admins), what a
customer is told (in, away, back when, typical reply time), and the automatic reply,
once per away period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from tests.conftest import emit

ALWAYS_CLOSED = {"timezone": "Asia/Seoul", "week": {}}


def run_jobs(app):
    from app.jobs import run_pending

    run_pending(app.extensions["chat_jobs"])


def messages(app, room_id):
    from app.extensions import db
    from app.models import Message, User

    with app.app_context():
        rows = db.session.execute(
            select(Message.body, User.email)
            .join(User, User.id == Message.author_id)
            .where(Message.room_id == room_id)
            .order_by(Message.id)
        ).all()
        return [(body, email) for body, email in rows]


def test_an_admin_saves_hours_and_away_text_and_bad_ones_name_their_field(connect, admin):
    support = connect(admin)
    assert emit(support, "team_settings", {}) == {
        "ok": True,
        "hours": None,
        "away_message": None,
        "auto_assign": True,  # on by default (issue 23)
    }
    hours = {
        "timezone": "Asia/Seoul",
        "week": {"mon": [["09:00", "18:00"]], "fri": [["22:00", "02:00"]]},
        "closed": ["2026-12-25"],
    }
    saved = emit(support, "save_team_settings", {"hours": hours, "away_message": "  Back soon! "})
    assert saved == {"ok": True, "hours": hours, "away_message": "Back soon!", "auto_assign": True}
    assert emit(support, "team_settings", {})["hours"] == hours
    for bad, field in [
        ({"hours": {"timezone": "Nowhere/City"}}, "timezone"),
        ({"hours": {"timezone": "UTC", "week": {"mon": [["18:00", "18:00"]]}}}, "week.mon.0"),
        ({"hours": None, "away_message": "x" * 1001}, "away_message"),
    ]:
        answer = emit(support, "save_team_settings", bad)
        assert answer["error"]["code"] == "validation_error"
        assert answer["error"]["field"] == field
    assert emit(support, "team_settings", {})["hours"] == hours  # nothing half-saved


def test_a_customer_is_told_the_team_is_away_and_when_it_is_back(connect, customer, admin):
    support = connect(admin)
    week = {d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    emit(support, "save_team_settings", {"hours": {"timezone": "UTC", "week": week}})
    cust = connect(customer)
    state = emit(cust, "availability", {})["availability"]
    now = datetime.now(UTC)
    if 9 <= now.hour < 18:
        assert state["open"] and state["agents_online"] and not state["away"]
        assert state["closes_at"] == now.replace(
            hour=18, minute=0, second=0, microsecond=0
        ).isoformat().replace("+00:00", "Z")
    else:
        assert state["away"] and not state["open"]
        back = now.replace(hour=9, minute=0, second=0, microsecond=0)
        if now.hour >= 18:
            back += timedelta(days=1)
        assert state["back_at"] == back.isoformat().replace("+00:00", "Z")
    assert state["email"] is True
    support.disconnect(namespace="/chat")
    gone = emit(cust, "availability", {})["availability"]
    assert gone["away"] and not gone["agents_online"]


def test_writing_while_away_gets_one_automatic_reply_per_away_period(app, connect, customer, admin):
    support = connect(admin)
    emit(support, "save_team_settings", {"hours": ALWAYS_CLOSED, "away_message": "We are out."})
    support.disconnect(namespace="/chat")
    from app.services import availability

    with app.app_context():
        availability.load()  # what the server's runner does every few seconds
    cust = connect(customer)
    first = emit(cust, "send_message", {"body": "Hello?"})["message"]
    assert emit(cust, "send_message", {"body": "Anyone?"})["ok"]
    run_jobs(app)
    room_id = first["room_id"]
    assert messages(app, room_id) == [
        ("Hello?", customer.email),
        ("Anyone?", customer.email),
        ("We are out.", "auto-reply@team.invalid"),
    ]
    heard = [e for e in cust.get_received("/chat") if e["name"] == "new_message"]
    assert heard[-1]["args"][0]["body"] == "We are out."  # live, like any message
    # An agent answers: the away period is over; the next one gets its own reply.
    support = connect(admin)
    emit(support, "send_message", {"room_id": room_id, "body": "Back now, sorry!"})
    support.disconnect(namespace="/chat")
    assert emit(cust, "send_message", {"body": "Thanks, one more thing"})["ok"]
    run_jobs(app)
    bodies = [b for b, _ in messages(app, room_id)]
    assert bodies.count("We are out.") == 2 and bodies[-1] == "We are out."


def test_no_automatic_reply_while_the_team_is_in(app, connect, customer, admin):
    support = connect(admin)  # no hours: always open, and an agent is online
    emit(support, "save_team_settings", {"hours": None, "away_message": "We are out."})
    cust = connect(customer)
    sent = emit(cust, "send_message", {"body": "Hi"})["message"]
    run_jobs(app)
    assert messages(app, sent["room_id"]) == [("Hi", customer.email)]


def test_without_an_away_message_there_is_no_automatic_reply(app, connect, customer, admin):
    support = connect(admin)
    emit(support, "save_team_settings", {"hours": ALWAYS_CLOSED, "away_message": None})
    support.disconnect(namespace="/chat")
    from app.services import availability

    with app.app_context():
        availability.load()
    cust = connect(customer)
    sent = emit(cust, "send_message", {"body": "Hello?"})["message"]  # away, and nobody in
    assert emit(cust, "availability", {})["availability"]["away"]
    run_jobs(app)
    assert messages(app, sent["room_id"]) == [("Hello?", customer.email)]


def test_typical_reply_time_is_the_median_first_response_in_business_minutes(
    app, users, connect, admin
):
    from app.extensions import db
    from app.models import Message
    from app.services import availability

    support = connect(admin)
    waits = [2, 5, 40]  # minutes: the median is 5
    for minutes in waits:
        account = users.make()
        first = emit(connect(account), "send_message", {"body": "Q"})["message"]
        answer = emit(support, "send_message", {"room_id": first["room_id"], "body": "A"})
        with app.app_context():
            asked = db.session.get(Message, first["id"])
            db.session.get(Message, answer["message"]["id"]).created_at = (
                asked.created_at + timedelta(minutes=minutes)
            )
            db.session.commit()
    with app.app_context():
        app.extensions["chat_team_settings"]["reply"] = (None, -1e9)
        assert availability.reply_minutes() == 5
