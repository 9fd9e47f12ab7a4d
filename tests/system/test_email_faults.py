"""Emails when things break, against real processes: `python wsgi.py` killed (kill -9)
in the middle of an SMTP session, then started again; and several processes (a server
running jobs itself and a `flask --app wsgi worker`) sharing one queue in Redis. Every
due email arrives, once. The SMTP server is aiosmtpd in a process of its own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import REDIS_URL, ROOT, needs_postgres
from tests.live import LiveServer, heard, wait_for
from tests.smtp import SMTPServer


def reply_to_customers(server: LiveServer, users, count: int) -> list[str]:
    """`count` customers each write, an agent answers each, and the customers leave.
    Their email addresses."""
    admin = users.make("admin", name="Ana Agent")
    support = server.client(server.login(admin.email, admin.password)["access_token"])
    emails = []
    for n in range(count):
        email = f"leaver{n}-{server.port}@example.com"
        token = server.register_and_login(email, f"Leaver {n}")["access_token"]
        sio = server.client(token)
        sent = sio.call("send_message", {"body": f"Question {n}"}, namespace="/chat")
        answer = support.call(
            "send_message",
            {"room_id": sent["message"]["room_id"], "body": f"Answer {n}"},
            namespace="/chat",
        )
        assert answer["ok"], answer
        sio.disconnect()
        emails.append(email)
    return emails


def emailed_everything(database_url: str, count: int) -> bool:
    """The database records an email for `count` rooms, and no claim is left."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as db:
            done = db.execute(
                text(
                    "SELECT count(*) FROM chat_rooms WHERE emailed_through_id = last_message_id"
                    " AND email_claimed_until IS NULL"
                )
            ).scalar()
    finally:
        engine.dispose()
    return done == count


@needs_postgres  # the test and the server share the database
@pytest.mark.timeout(400)  # a dead job's claim runs out after two minutes, by design
def test_a_server_killed_in_the_middle_of_an_smtp_session_sends_the_email_after_restart(
    database_url, users, tmp_path
):
    smtp = SMTPServer(tmp_path / "smtp", holding=True)
    smtp.folder.mkdir(parents=True)
    smtp.hold_file.touch()  # the first session stops at RCPT TO, mid-send
    smtp.start()
    server = LiveServer(database_url, "eventlet", MAIL_URL=smtp.url, CHAT_EMAIL_DELAY="1")
    try:
        server.start()
        [address] = reply_to_customers(server, users, 1)
        seen = smtp.hold_file.with_name(smtp.hold_file.name + ".seen")
        assert wait_for(seen.exists, timeout=30), server.output()[-2000:]
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=10)
        smtp.hold_file.unlink()  # the SMTP server takes mail again
        assert smtp.messages() == []  # the killed session handed nothing over
        server.start()  # the same queue and database

        # The dead job's claim runs out (two minutes), then a sweep sends the email. (The
        # agents get an alert too: their socket died with the server.)
        def to_customer():
            return [e for e in smtp.messages() if e["To"].addresses[0].addr_spec == address]

        assert wait_for(to_customer, timeout=200, interval=0.2)
        assert wait_for(lambda: emailed_everything(database_url, 1), timeout=20)
        assert len(to_customer()) == 1
    finally:
        server.close()
        smtp.stop()


@needs_postgres
@pytest.mark.skipif(not REDIS_URL, reason="needs Redis: set REDIS_URL (the shared queue)")
def test_a_server_and_a_worker_sharing_the_queue_send_each_email_once(
    database_url, users, tmp_path
):
    smtp = SMTPServer(tmp_path / "smtp").start()
    shared = {
        "REDIS_URL": REDIS_URL,
        "MAIL_URL": smtp.url,
        "CHAT_EMAIL_DELAY": "1",
        "CHAT_JOBS_NAME": f"shared-{os.getpid()}-{tmp_path.name}",
    }
    server = LiveServer(database_url, "gevent", **shared)
    worker = None
    try:
        server.start()
        worker = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--threads", "3"],
            cwd=ROOT,
            env=server.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        addresses = reply_to_customers(server, users, 10)
        emails = smtp.wait_for(10, timeout=90)
        assert wait_for(lambda: emailed_everything(database_url, 10), timeout=30)
        emails = smtp.messages()
        assert sorted(e["To"].addresses[0].addr_spec for e in emails) == sorted(addresses)
        assert worker.poll() is None  # the worker ran beside the server throughout
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=20)
        server.close()
        smtp.stop()


def test_the_worker_refuses_to_start_without_redis(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path}/chat.db", JOBS_SQLITE_PATH=str(tmp_path / "jobs")
    )
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "worker"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "needs REDIS_URL" in done.stderr


@needs_postgres
@pytest.mark.skipif(not REDIS_URL, reason="needs Redis: set REDIS_URL (events across processes)")
def test_an_emailed_reply_answered_by_email_reaches_the_agent_live(database_url, users, tmp_path):
    """The whole round: an agent's reply is emailed to the customer who left; the
    customer answers that email; the answer appears live in the agent's inbox."""
    import smtplib
    from email.message import EmailMessage

    from tests.smtp import free_port

    smtp = SMTPServer(tmp_path / "smtp").start()
    inbound_port = free_port()
    shared = {
        "REDIS_URL": REDIS_URL,
        "MAIL_URL": smtp.url,
        "CHAT_EMAIL_DELAY": "1",
        "MAIL_INBOUND_DOMAIN": "in.example.com",
    }
    server = LiveServer(database_url, "eventlet", **shared)
    listener = None
    try:
        server.start()
        listener = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "mail-inbound"]
            + ["--port", str(inbound_port)],
            cwd=ROOT,
            env=server.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        admin = users.make("admin", name="Ana Agent")
        support = server.client(server.login(admin.email, admin.password)["access_token"])
        [address] = reply_to_customers(server, users, 1)
        [email] = smtp.wait_for(1, timeout=60)
        answer = EmailMessage()
        answer["From"], answer["To"] = address, email["Reply-To"]
        answer["Subject"] = "Re: " + email["Subject"]
        answer["In-Reply-To"] = email["Message-ID"]
        answer.set_content("Got it, thank you!\n\nOn Mon, Ana Agent wrote:\n> Answer 0\n")

        def delivered():
            try:
                with smtplib.SMTP("127.0.0.1", inbound_port, timeout=10) as client:
                    client.send_message(answer)
                return True
            except OSError:
                return False  # the listener is still starting

        assert wait_for(delivered, timeout=30)

        def heard_it():
            return any(m["body"] == "Got it, thank you!" for m in heard(support, "new_message"))

        assert wait_for(heard_it, timeout=10)
    finally:
        if listener is not None:
            listener.terminate()
            listener.wait(timeout=20)
        server.close()
        smtp.stop()


@needs_postgres
@pytest.mark.skipif(not REDIS_URL, reason="needs Redis: set REDIS_URL (the worker's queue)")
@pytest.mark.timeout(400)  # the claim's two minutes, then the worker's sweep (a minute)
def test_a_worker_killed_in_the_middle_of_an_smtp_session_sends_the_email_after_restart(
    database_url, users, tmp_path
):
    """The same with the jobs in `flask --app wsgi worker` (CHAT_JOBS_IN_PROCESS=0)."""
    smtp = SMTPServer(tmp_path / "smtp", holding=True)
    smtp.folder.mkdir(parents=True)
    smtp.hold_file.touch()
    smtp.start()
    env = {
        "REDIS_URL": REDIS_URL,
        "MAIL_URL": smtp.url,
        "CHAT_EMAIL_DELAY": "1",
        "CHAT_JOBS_IN_PROCESS": "0",
        "CHAT_JOBS_NAME": f"killed-{os.getpid()}-{tmp_path.name}",
    }
    server = LiveServer(database_url, "gevent", **env)
    worker = None

    def start_worker():
        return subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--threads", "2"],
            cwd=ROOT,
            env=server.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )

    try:
        server.start()
        worker = start_worker()
        [address] = reply_to_customers(server, users, 1)
        seen = smtp.hold_file.with_name(smtp.hold_file.name + ".seen")
        assert wait_for(seen.exists, timeout=60)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        smtp.hold_file.unlink()
        assert smtp.messages() == []
        worker = start_worker()

        def to_customer():
            return [e for e in smtp.messages() if e["To"].addresses[0].addr_spec == address]

        # The claim runs out (two minutes); the worker's sweep (every minute) sends it.
        assert wait_for(to_customer, timeout=260, interval=0.5)
        assert wait_for(lambda: emailed_everything(database_url, 1), timeout=20)
        assert len(to_customer()) == 1
    finally:
        if worker is not None:
            worker.kill()
            worker.wait(timeout=20)
        server.close()
        smtp.stop()
