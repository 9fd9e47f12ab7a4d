"""Agents hear of waiting customers by email (issue 22): after the delay, while no
agent is online, one email for a burst of conversations, to every agent who has not
switched it off, and never twice. The SMTP server is aiosmtpd in its own process."""

from __future__ import annotations

import pytest

from tests.conftest import emit
from tests.integration.test_customer_email import DELAY
from tests.smtp import SMTPServer


@pytest.fixture
def smtp(app, tmp_path, monkeypatch):
    server = SMTPServer(tmp_path / "smtp").start()
    monkeypatch.setitem(app.config, "MAIL_URL", server.url)
    monkeypatch.setitem(app.config, "CHAT_EMAIL_DELAY", DELAY)
    yield server
    server.stop()


def sweep(app):
    from app.jobs import run_pending, sweep_now

    jobs = app.extensions["chat_jobs"]
    sweep_now(app, jobs)
    run_pending(jobs)


def settled(app, timeout=10):
    """Wait until every message has waited the delay (the state is the clock's)."""
    import time
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import func, select

    from app.extensions import db
    from app.models import Message

    deadline = time.monotonic() + timeout
    while True:
        with app.app_context():
            newest = db.session.scalar(select(func.max(Message.created_at)))
        newest = newest if newest.tzinfo else newest.replace(tzinfo=UTC)
        if datetime.now(UTC) - newest > timedelta(seconds=DELAY):
            return
        assert time.monotonic() < deadline, "the messages never aged"
        time.sleep(0.05)


def write(connect, account, *bodies):
    client = connect(account)
    for body in bodies:
        assert emit(client, "send_message", {"body": body})["ok"]
    client.disconnect(namespace="/chat")


def recipients(email) -> list[str]:
    return sorted(a.strip() for a in email["X-RcptTo"].split(",")) if email["X-RcptTo"] else []


def test_customers_waiting_while_no_agent_is_online_make_one_email_to_each_agent_once(
    app, smtp, users, connect
):
    agents = [users.make("admin", name=n) for n in ("Ana", "Ben")]
    quiet = users.make("admin", name="Quiet")
    switch = connect(quiet)
    assert emit(switch, "set_alert_emails", {"on": False}) == {"ok": True, "on": False}
    switch.disconnect(namespace="/chat")
    carl, cleo = users.make(name="Carl"), users.make(name="Cleo")
    write(connect, carl, "My lid cracked", "Hello?")
    write(connect, cleo, "Where is my order?")
    settled(app)  # both have waited the delay: one burst, not two
    [email] = smtp.wait_for(1, timeout=20, each=lambda: sweep(app))
    assert email["Subject"] == "2 customers are waiting for an answer"
    text = email.get_body(preferencelist=("plain",)).get_content()
    for words in ("Carl", "My lid cracked", "Hello?", "Cleo", "Where is my order?"):
        assert words in text
    delivered = recipients(email)
    assert delivered == sorted(a.email for a in agents)  # not the one who switched off
    assert sorted(a.addr_spec for a in email["To"].addresses) == delivered
    sweep(app)
    assert len(smtp.messages()) == 1  # that burst is told once


def test_no_email_while_an_agent_is_online_or_after_they_read(app, smtp, users, connect):
    agent = users.make("admin", name="Ana")
    online = connect(agent)
    customer = users.make(name="Carl")
    write(connect, customer, "Anyone there?")
    from app.extensions import db
    from app.jobs import run_pending
    from app.services import alerts

    with app.app_context():
        due = alerts.due_rooms()
    assert len(due) == 1
    jobs = app.extensions["chat_jobs"]
    jobs.alert_agents(due)
    run_pending(jobs)
    assert smtp.messages() == []  # an agent is online: the inbox tells them
    with app.app_context():
        from sqlalchemy import select

        from app.models import ChatRoom, Message

        room = db.session.get(ChatRoom, due[0])
        last = db.session.scalar(select(Message.id).where(Message.room_id == room.id))
    assert emit(online, "mark_read", {"room_id": due[0], "message_id": last})["ok"]
    online.disconnect(namespace="/chat")
    sweep(app)
    assert smtp.messages() == []  # read: nobody waits


def test_set_alert_emails_takes_a_boolean_only(app, connect, users):
    agent = connect(users.make("admin"))
    answer = emit(agent, "set_alert_emails", {"on": "yes"})
    assert answer["error"]["code"] == "validation_error"
