"""Customers answer by email (issue 22): real SMTP sessions (smtplib) into the
project's own listener, `flask --app wsgi mail-inbound`, run as a process of its own
on the tests' database. A reply lands in the room without its quoted history; a forged
From, a wrong token, another domain, a robot's mail, too large a mail and too many
mails are each refused or dropped, logged, and never posted."""

from __future__ import annotations

import io
import os
import smtplib
import subprocess
import sys
import time
from email.message import EmailMessage

import pytest
from PIL import Image
from sqlalchemy import select

from tests.conftest import ROOT, emit
from tests.smtp import free_port

DOMAIN = "in.example.com"


@pytest.fixture(scope="module")
def listener(app, tmp_path_factory):
    yield from start_listener(tmp_path_factory.mktemp("inbound"))


@pytest.fixture
def own_listener(app, tmp_path):
    """A listener of the test's own: its rate windows start empty (room ids come back
    after the tables are emptied)."""
    yield from start_listener(tmp_path)


def start_listener(folder):
    port = free_port()
    log = folder / "listener.log"
    env = {**os.environ, "APP_CONFIG": "testing", "MAIL_INBOUND_DOMAIN": DOMAIN}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "mail-inbound", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while True:
        try:
            smtplib.SMTP("127.0.0.1", port, timeout=2).quit()
            break
        except OSError:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the listener did not start"
            time.sleep(0.1)
    process.port, process.log = port, log
    yield process
    process.terminate()
    process.wait(10)


def address(room_id: int) -> str:
    from app.mail.inbound import token_of

    secret = "testing-secret_key-not-secret-0123456789abcdef"  # TestingConfig's
    return f"reply+{room_id}-{token_of(room_id, secret)}@{DOMAIN}"


def mail(sender, to, text, **headers) -> EmailMessage:
    email = EmailMessage()
    email["From"], email["To"], email["Subject"] = sender, to, "Re: your conversation"
    email["Message-ID"] = headers.pop("message_id", f"<{time.monotonic_ns()}@mail.example>")
    for name, value in headers.items():
        email[name.replace("_", "-")] = value
    email.set_content(text)
    return email


def send(listener, email, envelope_from=None):
    with smtplib.SMTP("127.0.0.1", listener.port, timeout=30) as client:
        client.send_message(email, from_addr=envelope_from)


def room_with_reply(connect, customer, admin) -> int:
    first = emit(connect(customer), "send_message", {"body": "My teapot lid cracked."})
    room_id = first["message"]["room_id"]
    emit(connect(admin), "send_message", {"room_id": room_id, "body": "Sorry! A photo?"})
    return room_id


def bodies(app, room_id, author_id):
    from app.extensions import db
    from app.models import Message

    with app.app_context():
        rows = db.session.scalars(
            select(Message).where(Message.room_id == room_id, Message.author_id == author_id)
        ).all()
        return [(m.body, m.attachment_count) for m in rows]


QUOTED_EN = """Thanks, that works for me!

Carl

On Mon, Dec 7, 2026 at 10:00 AM Ana Agent <support@localhost> wrote:
> Sorry! A photo?
> Thanks
"""


def test_a_reply_lands_in_the_room_without_its_quoted_history_once(
    app, listener, connect, customer, admin
):
    room_id = room_with_reply(connect, customer, admin)
    support = connect(admin)
    support.get_received("/chat")
    email = mail(customer.email, address(room_id), QUOTED_EN, message_id="<once@mail.example>")
    send(listener, email)
    send(listener, email)  # delivered twice by the sender's server: stored once
    assert bodies(app, room_id, customer.id)[1:] == [("Thanks, that works for me!\n\nCarl", 0)]


KOREAN_REPLIES = {
    "gmail": "2026년 12월 7일 (월) 오전 10:00, Ana Agent <support@localhost>님이 작성:\n"
    "> Sorry! A photo?\n>\n> Ana\n",
    "outlook": "보낸 사람: Ana Agent <support@localhost>\n보낸 날짜: 2026년 12월 7일 월요일 "
    "오전 10:00\n받는 사람: carl@example.com\n제목: RE: 문의\n\nSorry! A photo?\n",
    "quote-only": "> Sorry! A photo?\n> Ana\n",
}


@pytest.mark.parametrize("client", sorted(KOREAN_REPLIES))
def test_a_korean_reply_loses_what_it_quotes(app, listener, connect, customer, admin, client):
    room_id = room_with_reply(connect, customer, admin)
    text = "네, 확인했습니다. 감사합니다!\n\n" + KOREAN_REPLIES[client]
    send(listener, mail(customer.email, address(room_id), text))
    assert bodies(app, room_id, customer.id)[1:] == [("네, 확인했습니다. 감사합니다!", 0)]


def test_an_html_only_reply_is_posted_as_text(app, listener, connect, customer, admin):
    room_id = room_with_reply(connect, customer, admin)
    email = EmailMessage()
    email["From"], email["To"], email["Subject"] = customer.email, address(room_id), "Re"
    email.set_content(
        "<html><head><style>p{}</style></head><body><p>Got it &amp; thanks</p>"
        "<script>alert(1)</script></body></html>",
        subtype="html",
    )
    send(listener, email)
    assert bodies(app, room_id, customer.id)[1:] == [("Got it & thanks", 0)]


def test_files_in_a_reply_become_attachments_and_a_refused_one_is_left_out(
    app, listener, connect, customer, admin
):
    room_id = room_with_reply(connect, customer, admin)
    email = mail(customer.email, address(room_id), "Here is the photo.")
    picture = io.BytesIO()
    Image.new("RGB", (30, 20), (200, 30, 30)).save(picture, "PNG")
    email.add_attachment(picture.getvalue(), maintype="image", subtype="png", filename="lid.png")
    program = b"MZ\x90\x00" + b"\x00" * 200
    email.add_attachment(program, maintype="application", subtype="octet-stream", filename="x.exe")
    send(listener, email)
    assert bodies(app, room_id, customer.id)[1:] == [("Here is the photo.", 1)]


@pytest.mark.parametrize(
    "case",
    ["forged-from", "wrong-token", "unknown-room", "a-second-sender"],
)
def test_a_reply_that_is_not_the_customers_is_refused_and_logged(
    app, listener, connect, customer, other_customer, admin, case
):
    room_id = room_with_reply(connect, customer, admin)
    sender, to = customer.email, address(room_id)
    if case == "forged-from":
        sender = other_customer.email
    elif case == "wrong-token":
        to = f"reply+{room_id}-{'0' * 20}@{DOMAIN}"
    elif case == "unknown-room":
        to = address(room_id + 1000)
    else:
        sender = f"{customer.email}, {other_customer.email}"
    if case == "wrong-token":  # refused at RCPT TO, before any byte of the mail is taken
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            send(listener, mail(sender, to, "Let me in"))
        assert [code for code, _ in refused.value.recipients.values()] == [550]
    else:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            send(listener, mail(sender, to, "Let me in"))
        assert refused.value.smtp_code == 550
    assert bodies(app, room_id, customer.id)[1:] == []
    assert "inbound mail refused" in listener.log.read_text()


def test_mail_for_another_domain_is_refused_at_rcpt(listener, customer):
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        send(listener, mail(customer.email, "someone@elsewhere.example", "relay me"))


@pytest.mark.parametrize(
    "headers, envelope_from",
    [
        ({"Auto_Submitted": "auto-replied"}, None),
        ({"Precedence": "bulk"}, None),
        ({"Precedence": "auto_reply"}, None),
        ({"X_Autoreply": "yes"}, None),
        ({}, ""),  # a bounce: the null sender
    ],
    ids=["auto-submitted", "bulk", "auto_reply", "x-autoreply", "null-sender"],
)
def test_a_robots_mail_is_taken_and_dropped(
    app, listener, connect, customer, admin, headers, envelope_from
):
    room_id = room_with_reply(connect, customer, admin)
    email = mail(customer.email, address(room_id), "I am out of the office.", **headers)
    send(listener, email, envelope_from=envelope_from)  # accepted: no bounce back, no loop
    assert bodies(app, room_id, customer.id)[1:] == []
    assert "inbound mail dropped" in listener.log.read_text()


def test_a_mail_over_the_size_limit_is_refused(app, listener, connect, customer, admin):
    room_id = room_with_reply(connect, customer, admin)
    email = mail(customer.email, address(room_id), "x" * (31 * 1024 * 1024))
    with pytest.raises((smtplib.SMTPSenderRefused, smtplib.SMTPDataError)) as refused:
        send(listener, email)
    assert refused.value.smtp_code == 552
    assert bodies(app, room_id, customer.id)[1:] == []


def test_past_the_rooms_rate_further_mail_is_deferred(app, own_listener, connect, users, admin):
    listener = own_listener
    account = users.make()
    room_id = room_with_reply(connect, account, admin)
    for n in range(30):  # CHAT_INBOUND_RATE_LIMIT's default: 30 an hour
        send(listener, mail(account.email, address(room_id), f"Reply {n}"))
    with pytest.raises(smtplib.SMTPDataError) as deferred:
        send(listener, mail(account.email, address(room_id), "one too many"))
    assert deferred.value.smtp_code == 450
    assert len(bodies(app, room_id, account.id)) == 31  # the first message and 30 replies
