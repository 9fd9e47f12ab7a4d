"""Replies reach customers who left, by email (issue 22): after the delay, once, never
to a customer still online or who saw the reply, never for a note; unsubscribing works;
an SMTP server that refuses for a while gets every due email once it is back. The SMTP
server is a real one (aiosmtpd) in a process of its own."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from tests.conftest import emit
from tests.smtp import SMTPServer, free_port

DELAY = 1  # CHAT_EMAIL_DELAY's lowest setting


@pytest.fixture
def smtp(app, tmp_path, monkeypatch):
    server = SMTPServer(tmp_path / "smtp").start()
    monkeypatch.setitem(app.config, "MAIL_URL", server.url)
    monkeypatch.setitem(app.config, "CHAT_EMAIL_DELAY", DELAY)
    monkeypatch.setitem(app.config, "MAIL_INBOUND_DOMAIN", "in.example.com")
    app.extensions["chat_jobs"].huey.flush()
    yield server
    server.stop()


@pytest.fixture
def work(app):
    """Run the jobs that are due, here (what the server's runner does)."""
    from app.jobs import run_pending

    return lambda: run_pending(app.extensions["chat_jobs"])


def sweep(app):
    from app.jobs import run_pending, sweep_now

    jobs = app.extensions["chat_jobs"]
    sweep_now(app, jobs)
    run_pending(jobs)


def check(app, room_id):
    """One check of the room, once the delay has surely passed for what it holds."""
    from app.services import notify

    deadline = time.monotonic() + 10
    while True:
        with app.app_context():
            outcome = notify.check_room(room_id)
        if outcome.result != "early" or time.monotonic() > deadline:
            return outcome
        time.sleep(0.1)


def conversation(connect, customer, admin, *replies, internal=False, leave=True):
    cust = connect(customer)
    first = emit(cust, "send_message", {"body": "The lid of my teapot arrived cracked."})
    room_id = first["message"]["room_id"]
    support = connect(admin)
    for body in replies:
        payload = {"room_id": room_id, "body": body, "internal": internal}
        ack = emit(support, "send_message", payload)
        assert ack["ok"], ack
    if leave:
        cust.disconnect(namespace="/chat")
    return room_id, cust, support


def test_replies_the_customer_did_not_see_come_in_one_email_after_the_delay(
    app, smtp, work, connect, customer, admin
):
    room_id, _, _ = conversation(
        connect, customer, admin, "Sorry about that!", "A new lid is on its way today."
    )
    [email] = smtp.wait_for(1, timeout=20, each=work)
    assert email["To"].addresses[0].addr_spec == customer.email
    assert admin.name in str(email["From"])
    assert email["Subject"] == f"{admin.name} replied to your message"
    text = email.get_body(preferencelist=("plain",)).get_content()
    html = email.get_body(preferencelist=("html",)).get_content()
    for body in ("Sorry about that!", "A new lid is on its way today."):
        assert body in text and body in html
    assert "The lid of my teapot" not in text  # the customer's own words are not sent back
    assert "http://127.0.0.1:5000/chat" in text
    assert email["Message-ID"].startswith(f"<chat-{room_id}-")
    assert email["Reply-To"].startswith(f"reply+{room_id}-")
    assert email["Reply-To"].endswith("@in.example.com")
    assert email["List-Unsubscribe"].strip().startswith("<http://127.0.0.1:5000/email/unsubscribe/")
    assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert email["Auto-Submitted"] == "auto-generated"
    sweep(app)  # the jobs of each reply, and the sweep, all ran: still one email
    assert len(smtp.messages()) == 1
    # A later reply is a new email, with only what is new.
    support = connect(admin)
    emit(support, "send_message", {"room_id": room_id, "body": "Tracking: KR123"})
    emails = smtp.wait_for(2, timeout=20, each=work)
    later = emails[1].get_body(preferencelist=("plain",)).get_content()
    assert "Tracking: KR123" in later and "Sorry about that!" not in later
    assert emails[1]["Message-ID"] != emails[0]["Message-ID"]


def test_nothing_is_sent_for_a_reply_the_customer_saw(app, smtp, connect, customer, admin):
    room_id, cust, support = conversation(connect, customer, admin, "Seen?", leave=False)
    last = emit(support, "send_message", {"room_id": room_id, "body": "Seen now?"})["message"]
    assert emit(cust, "mark_read", {"room_id": room_id, "message_id": last["id"]})["ok"]
    cust.disconnect(namespace="/chat")
    assert check(app, room_id).result == "nothing"
    sweep(app)
    assert smtp.messages() == []


def test_a_customer_online_in_another_tab_is_not_emailed_until_they_leave(
    app, smtp, work, connect, customer, admin
):
    other_tab = connect(customer)
    room_id, _, _ = conversation(connect, customer, admin, "Are you there?")
    assert check(app, room_id).result == "online"
    sweep(app)
    assert smtp.messages() == []
    other_tab.disconnect(namespace="/chat")  # their last socket: a check is due after the delay
    [email] = smtp.wait_for(1, timeout=20, each=work)
    assert "Are you there?" in email.get_body(preferencelist=("plain",)).get_content()


def test_a_note_is_never_emailed(app, smtp, connect, customer, admin):
    room_id, _, _ = conversation(connect, customer, admin, "Customer seems upset", internal=True)
    assert check(app, room_id).result == "nothing"
    sweep(app)
    assert smtp.messages() == []


def test_one_click_unsubscribe_stops_the_emails(app, smtp, work, http, connect, customer, admin):
    from app.extensions import db
    from app.models import User

    room_id, _, _ = conversation(connect, customer, admin, "First reply")
    [email] = smtp.wait_for(1, timeout=20, each=work)
    link = email["List-Unsubscribe"].strip().strip("<>").replace("http://127.0.0.1:5000", "")
    assert http.get(link).status_code == 200  # a page asks first (a link scanner only GETs)
    assert http.get(link + "x").status_code == 404
    # RFC 8058: the mail client posts this body, without our page or its CSRF token.
    answer = http.post(link, data={"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200
    with app.app_context():
        assert db.session.scalar(select(User.emails_off_at).where(User.id == customer.id))
    support = connect(admin)
    emit(support, "send_message", {"room_id": room_id, "body": "Second reply"})
    assert check(app, room_id).result == "off"
    sweep(app)
    assert len(smtp.messages()) == 1


def test_the_email_is_in_the_customers_language(app, smtp, work, http, users, connect, admin):
    account = users.make(name="김민지")
    login = http.post(
        "/api/auth/login",
        json={"email": account.email, "password": account.password},
        headers={"Accept-Language": "ko-KR,ko;q=0.9"},
    )
    assert login.status_code == 200
    room_id, _, _ = conversation(connect, account, admin, "새 뚜껑을 보내드릴게요.")
    [email] = smtp.wait_for(1, timeout=20, each=work)
    assert email["Content-Language"] == "ko"
    assert email["Subject"] == f"{admin.name} 님이 답장을 보냈습니다"
    text = email.get_body(preferencelist=("plain",)).get_content()
    assert "새 뚜껑을 보내드릴게요." in text and "김민지 님, 안녕하세요." in text


def test_smtp_refusing_for_ten_seconds_then_back_delivers_each_due_email_once(
    app, tmp_path, monkeypatch, work, users, connect, admin
):
    port = free_port()  # nothing listens there yet: every connection is refused
    monkeypatch.setitem(app.config, "MAIL_URL", f"smtp://127.0.0.1:{port}")
    monkeypatch.setitem(app.config, "CHAT_EMAIL_DELAY", DELAY)
    app.extensions["chat_jobs"].huey.flush()
    customers = [users.make() for _ in range(3)]
    for account in customers:
        conversation(connect, account, admin, f"Reply for {account.name}")
    refused_until = time.monotonic() + 10
    while time.monotonic() < refused_until:  # the jobs run, fail and are retried later
        work()
        time.sleep(0.2)
    server = SMTPServer(tmp_path / "smtp", port=port).start()
    try:
        emails = server.wait_for(3, timeout=60, each=work)
        sweep(app)
        assert len(server.messages()) == 3
        assert sorted(e["To"].addresses[0].addr_spec for e in emails) == sorted(
            a.email for a in customers
        )
    finally:
        server.stop()


def test_without_mail_url_emails_go_to_the_outbox_shown_to_admins_only(
    app, tmp_path, monkeypatch, work, users, connect, customer, admin
):
    from tests.integration.test_pages import log_in

    outbox = tmp_path / "outbox"
    monkeypatch.setitem(app.config, "MAIL_URL", None)
    monkeypatch.setitem(app.config, "MAIL_OUTBOX_DIR", str(outbox))
    monkeypatch.setitem(app.config, "CHAT_EMAIL_DELAY", DELAY)
    conversation(connect, customer, admin, "<b>Not bold</b> & kept as text")
    deadline = time.monotonic() + 20
    while not list(outbox.glob("*.eml")) and time.monotonic() < deadline:
        work()
        time.sleep(0.1)
    [eml] = list(outbox.glob("*.eml"))
    name = eml.name
    as_admin, as_customer, anonymous = app.test_client(), app.test_client(), app.test_client()
    log_in(as_admin, admin)
    log_in(as_customer, customer)
    listing = as_admin.get("/dev/outbox")
    assert listing.status_code == 200 and name in listing.get_data(as_text=True)
    shown = as_admin.get(f"/dev/outbox/{name}").get_data(as_text=True)
    assert "&lt;b&gt;Not bold&lt;/b&gt;" in shown and "<b>Not bold</b>" not in shown
    assert "sandbox" in shown  # the HTML part is shown in a frame that runs nothing
    for client in (as_customer, anonymous):
        assert client.get("/dev/outbox").status_code == 404
        assert client.get(f"/dev/outbox/{name}").status_code == 404
    assert as_admin.get("/dev/outbox/..%2F..%2Fetc%2Fpasswd").status_code == 404
    monkeypatch.setitem(app.config, "MAIL_URL", "smtp://127.0.0.1:1")
    assert as_admin.get("/dev/outbox").status_code == 404  # real mail: no outbox page


def test_an_address_the_smtp_server_refuses_for_good_is_not_tried_again(
    app, tmp_path, monkeypatch, work, connect, customer, admin
):
    from app.extensions import db
    from app.models import ChatRoom

    server = SMTPServer(tmp_path / "refusing", refusing=True).start()
    try:
        monkeypatch.setitem(app.config, "MAIL_URL", server.url)
        monkeypatch.setitem(app.config, "CHAT_EMAIL_DELAY", DELAY)
        room_id, _, _ = conversation(connect, customer, admin, "A reply nobody can get")
        assert check(app, room_id).result == "refused"  # a 550: final, logged
        with app.app_context():
            room = db.session.get(ChatRoom, room_id)
            assert room.emailed_through_id == room.last_message_id  # done with
            assert room.email_claimed_until is None
        assert check(app, room_id).result == "nothing"  # and never tried again
        sweep(app)
        with app.app_context():
            from app.services import notify

            assert room_id not in notify.sweep()
    finally:
        server.stop()


def test_a_claim_is_its_owners_a_job_whose_claim_ran_out_cannot_clear_another(
    app, connect, customer, admin
):
    from datetime import timedelta

    from app.extensions import db
    from app.models import ChatRoom, utcnow
    from app.services import notify

    room_id, _, _ = conversation(connect, customer, admin, "Claimed")
    theirs = utcnow() + timedelta(seconds=100)
    with app.app_context():
        db.session.get(ChatRoom, room_id).email_claimed_until = theirs
        db.session.commit()
        notify._release(room_id, utcnow() - timedelta(seconds=5))  # an old job's claim
        assert db.session.get(ChatRoom, room_id, populate_existing=True).email_claimed_until
        notify._record(room_id, 1, utcnow())
        db.session.expire_all()
        room = db.session.get(ChatRoom, room_id)
        assert room.email_claimed_until is not None  # still the live job's
        notify._record(room_id, 0)
        db.session.expire_all()
        assert db.session.get(ChatRoom, room_id).emailed_through_id == 1  # never back
