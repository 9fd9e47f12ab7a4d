"""Attachments when things break, against `python wsgi.py`: the server killed (kill -9)
while a file streams in, and again while a picture is being re-encoded. No message ever
names a file that is not there, and what the dead process left half-done is swept."""

from __future__ import annotations

import io
import os
import signal
import socket
import threading
import time

import pytest
from PIL import Image
from sqlalchemy import create_engine, text

from tests.live import LiveServer, wait_for


def raw_upload(server: LiveServer, token: str, body: bytes, boundary: str, send: int):
    """Open a connection, announce `body`, and send only its first `send` bytes."""
    conn = socket.create_connection(("127.0.0.1", server.port))
    head = (
        "POST /api/attachments HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{server.port}\r\n"
        f"Authorization: Bearer {token}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    conn.sendall(head + body[:send])
    return conn


def multipart(name: str, data: bytes, boundary: str) -> bytes:
    return (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )


def test_a_server_killed_mid_upload_leaves_no_message_without_its_file(database_url, tmp_path):
    from app.services.attachments import sweep_incoming

    files = tmp_path / "files"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    incoming = scratch / "chat-uploads"
    env = {"ATTACHMENT_DIR": str(files), "UPLOAD_SCRATCH_DIR": str(incoming)}
    server = LiveServer(database_url, "eventlet", **env).start()
    try:
        token = server.register_and_login("killed@example.com", "Kim Killed")["access_token"]
        sio = server.client(token)
        # One file that made it, sent in a message: it must survive the kills.
        kept = multipart("kept.txt", b"kept\n", "b0")
        done = raw_upload(server, token, kept, "b0", len(kept))
        assert b"201" in done.recv(4096).split(b"\r\n")[0]
        done.close()
        stored = text("SELECT id FROM attachments")
        engine = create_engine(database_url)
        with engine.connect() as db:
            [kept_id] = db.execute(stored).scalars().all()
        sent = sio.call("send_message", {"body": "", "attachments": [kept_id]}, namespace="/chat")
        assert sent["ok"]

        # 1. Killed while the body streams in: half of 6 MB sent.
        body = multipart("big.bin", os.urandom(6 * 1024 * 1024), "b1")
        conn = raw_upload(server, token, body, "b1", 3 * 1024 * 1024)
        time.sleep(0.5)  # the server reads what arrived; there is no state to wait on here
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=10)
        conn.close()
        server.start()

        # 2. Killed while a picture is being re-encoded (the whole body has arrived).
        picture = io.BytesIO()
        Image.effect_noise((2000, 2000), 64).convert("RGB").save(picture, "PNG")
        body = multipart("noise.png", picture.getvalue(), "b2")
        conn = raw_upload(server, token, body, "b2", len(body))
        whole = len(picture.getvalue())

        def received_whole() -> bool:  # the body is in; Pillow has it now (about a second)
            try:
                return any(p.stat().st_size == whole for p in incoming.rglob("part-*"))
            except FileNotFoundError:  # a folder going as it is looked at
                return False

        assert wait_for(received_whole, timeout=20, interval=0.005)
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=10)
        conn.close()
        left = list(incoming.iterdir())
        assert left, "the dead process's scratch folder is there to sweep"

        # Whatever the kills left: every file a message names is in the store.
        with engine.connect() as db:
            named = (
                db.execute(text("SELECT key FROM attachments WHERE message_id IS NOT NULL"))
                .scalars()
                .all()
            )
            unsent = db.execute(
                text("SELECT count(*) FROM attachments WHERE message_id IS NULL")
            ).scalar()
        assert len(named) == 1 and unsent == 0
        assert all((files / key[:2] / key).exists() for key in named)
        assert not any(p.name.startswith(".part-") for p in files.rglob("*"))

        # The sweep (each process's housekeeping, for folders over an hour old; here as
        # if that hour had passed) removes it.
        assert sweep_incoming(time.time() + 1, str(incoming)) == len(left)
        assert list(incoming.iterdir()) == []
        server.start()
        again = server.client(token)
        history = again.call("history", {"room_id": sent["message"]["room_id"]}, namespace="/chat")
        assert [a["name"] for a in history["messages"][-1]["attachments"]] == ["kept.txt"]
    finally:
        server.close()


@pytest.mark.parametrize("mode", ["eventlet", "gevent"])
def test_a_sender_that_stops_halfway_holds_up_no_other_upload(database_url, tmp_path, mode):
    """Uploads take turns a chunk at a time, and a chunk is read before its turn is
    asked for: a sender that stops in the middle of its file keeps no other upload, and
    no message, waiting. When it goes on, its file is taken whole."""
    scratch = tmp_path / "tmp"
    env = {"ATTACHMENT_DIR": str(tmp_path / "files"), "UPLOAD_SCRATCH_DIR": str(scratch)}
    server = LiveServer(database_url, mode, **env).start()
    try:
        token = server.register_and_login(f"stall-{mode}@example.com", "Sam Stall")["access_token"]
        data = b"".join(b"line %07d of a long log\n" % n for n in range(80_000))  # 2 MB of text
        body = multipart("slow.txt", data, "s1")
        half = len(body) // 2
        slow = raw_upload(server, token, body, "s1", half)

        def written() -> int:
            return sum(p.stat().st_size for p in scratch.rglob("part-*")) if scratch.exists() else 0

        assert wait_for(lambda: written() >= 512 * 1024, timeout=20), "the first half arrives"

        quick = multipart("quick.txt", b"quick\n", "q1")
        other = raw_upload(server, token, quick, "q1", len(quick))
        other.settimeout(10)  # its turn would otherwise wait 30 s for the stalled upload
        assert b" 201 " in other.recv(4096).split(b"\r\n")[0]
        other.close()
        sio = server.client(token)
        assert sio.call("send_message", {"body": "still here"}, namespace="/chat")["ok"]

        slow.sendall(body[half:])
        slow.settimeout(20)
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += slow.recv(4096)
        slow.close()
        assert b" 201 " in answer.split(b"\r\n")[0]
        engine = create_engine(database_url)
        with engine.connect() as db:
            sizes = db.execute(text("SELECT name, size FROM attachments ORDER BY id")).all()
        assert [tuple(row) for row in sizes] == [("quick.txt", 6), ("slow.txt", len(data))]
    finally:
        server.close()


def streamed_until_answered(server: LiveServer, token: str, total: int) -> tuple[bytes, int]:
    """Send a chunked body (no Content-Length) of up to `total` bytes of text, 64 KB a
    chunk, while reading the answer: (the answer, the file bytes sent before it came or
    the server stopped reading)."""
    conn = socket.create_connection(("127.0.0.1", server.port))
    conn.settimeout(10)
    conn.sendall(
        (
            "POST /api/attachments HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{server.port}\r\n"
            f"Authorization: Bearer {token}\r\n"
            "Content-Type: multipart/form-data; boundary=xx\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
        ).encode()
    )

    def chunk(data: bytes) -> bytes:
        return b"%x\r\n%s\r\n" % (len(data), data)

    conn.sendall(
        chunk(b'--xx\r\nContent-Disposition: form-data; name="file"; filename="s.txt"\r\n\r\n')
    )
    answer = {"bytes": b""}

    def read() -> None:
        try:
            while b"too_large" not in answer["bytes"] and (more := conn.recv(65536)):
                answer["bytes"] += more
        except OSError:
            pass

    reader = threading.Thread(target=read)
    reader.start()
    sent = 0
    frame = chunk(b"y" * 65536)
    try:
        while sent < total and reader.is_alive():
            conn.sendall(frame)
            sent += 65536
    except OSError:  # the server answered and closed, or stopped reading
        pass
    reader.join(15)
    conn.close()
    return answer["bytes"], sent


def test_a_streamed_body_is_refused_as_soon_as_it_passes_the_limit(database_url, tmp_path):
    """No Content-Length (chunked): the server counts what arrives and answers 413 once
    it passes the limit (1 MB here), in both modes, while the client is still sending a
    body of 100 MB, and stores nothing; a small streamed file is taken."""
    import requests

    def stream(chunks):
        yield b'--xx\r\nContent-Disposition: form-data; name="file"; filename="s.txt"\r\n\r\n'
        for _ in range(chunks):
            yield b"y" * 65536
        yield b"\r\n--xx--\r\n"

    for mode in ("eventlet", "gevent"):
        server = LiveServer(
            database_url,
            mode,
            ATTACHMENT_DIR=str(tmp_path / mode),
            CHAT_ATTACHMENT_MAX_BYTES="1048576",
        ).start()
        try:
            token = server.register_and_login(f"stream-{mode}@example.com", "S")["access_token"]
            headers = {
                "Authorization": f"Bearer {token}",
                "Content-Type": "multipart/form-data; boundary=xx",
            }
            answer, sent = streamed_until_answered(server, token, 100 * 1024 * 1024)
            assert answer.split(b"\r\n")[0].startswith(b"HTTP/1.1 413"), answer[:200]
            assert b"too_large" in answer
            # Refused near the limit: what was sent past it sits in the two sockets'
            # buffers, not in a body the server read to its end.
            assert sent < 16 * 1024 * 1024, f"{sent} bytes sent before the answer"
            small = requests.post(
                server.url + "/api/attachments", data=stream(4), headers=headers, timeout=30
            )
            assert small.status_code == 201, small.text
            assert not list((tmp_path / mode).rglob(".part-*"))
        finally:
            server.close()


def test_a_customer_deleted_by_the_command_loses_the_socket_they_have_open(database_url, tmp_path):
    """`flask delete-customer` is another process: without Redis it cannot reach the
    server's sockets, so it ends the sessions and waits until every server has looked
    (once a second) and closed theirs. The socket is gone before the rows are; the
    token opens nothing after; nothing of the customer is left."""
    import subprocess
    import sys

    import socketio

    from tests.live import ROOT

    server = LiveServer(database_url, "eventlet", ATTACHMENT_DIR=str(tmp_path / "files"))
    server.start()
    try:
        token = server.register_and_login("forget@example.com", "Fay Forget")["access_token"]
        sio = server.client(token)
        assert sio.call("send_message", {"body": "please forget me"}, namespace="/chat")["ok"]
        done = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", "delete-customer"]
            + ["--email", "forget@example.com", "--yes"],
            cwd=ROOT,
            env=server.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert "Deleted Fay Forget" in done.stdout
        assert not sio.connected, "closed by the server before the rows went"
        again = socketio.Client(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            again.connect(server.url, auth={"token": token}, namespaces=["/chat"], wait_timeout=5)
        engine = create_engine(database_url)
        with engine.connect() as db:
            users = db.execute(
                text("SELECT count(*) FROM users WHERE email = :e"), {"e": "forget@example.com"}
            )
            bodies = db.execute(text("SELECT count(*) FROM messages WHERE body LIKE '%forget me'"))
            assert (users.scalar(), bodies.scalar()) == (0, 0)
    finally:
        server.close()
