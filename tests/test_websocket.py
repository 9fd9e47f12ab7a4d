"""The WebSocket framing of app/sockets/websocket.py, against `python wsgi.py` over a raw
TCP connection: what RFC 6455 asks of a server, byte by byte, under eventlet and gevent.

Every other live, proxy and browser test runs over the same code; these pin the edges
that real clients rarely reach: fragments, frames split across reads, control frames,
and a peer that breaks the protocol.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct

import pytest

from app.sockets.websocket import accept_key, frame, unmask
from tests.live import LiveServer

MODES = ["eventlet", "gevent"]
MAX_MESSAGE = 64 * 1024  # SOCKETIO_MAX_HTTP_BUFFER_SIZE


# --- the pure parts -----------------------------------------------------------------


def test_accept_key_is_the_one_rfc_6455_gives():
    # RFC 6455, section 1.3: the sample key and its answer.
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536])
def test_a_server_frame_carries_its_length_in_the_shortest_form(size):
    data = frame("x" * size)
    assert data[0] == 0x81  # final, text
    if size < 126:
        assert data[1] == size and len(data) == 2 + size
    elif size < 65536:
        assert data[1] == 126 and struct.unpack("!H", data[2:4])[0] == size
    else:
        assert data[1] == 127 and struct.unpack("!Q", data[2:10])[0] == size
    assert data.endswith(b"x" * size)
    assert frame(b"\x00\x01")[:2] == b"\x82\x02"  # bytes go out as a binary frame


@pytest.mark.parametrize("size", [0, 1, 3, 4, 5, 1000, 70_001])
def test_unmask_is_the_bytewise_xor_of_the_repeated_key(size):
    payload, mask = os.urandom(size), os.urandom(4)
    expected = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    assert unmask(payload, mask) == expected
    assert unmask(expected, mask) == payload


# --- a raw client -------------------------------------------------------------------


def client_frame(payload: bytes, opcode: int = 0x1, fin: bool = True, mask: bool = True) -> bytes:
    """A frame as a client writes it (masked unless told otherwise)."""
    first = (0x80 if fin else 0) | opcode
    size = len(payload)
    if size < 126:
        header = bytes((first, (0x80 if mask else 0) | size))
    elif size < 65536:
        header = struct.pack("!BBH", first, (0x80 if mask else 0) | 126, size)
    else:
        header = struct.pack("!BBQ", first, (0x80 if mask else 0) | 127, size)
    if not mask:
        return header + payload
    key = os.urandom(4)
    return header + key + unmask(payload, key)


class Raw:
    """One TCP connection, upgraded by hand; reads the server's frames."""

    def __init__(self, url: str, headers: dict | None = None):
        host, port = url.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=5)
        self.key = base64.b64encode(os.urandom(16)).decode()
        fields = {
            "Host": f"{host}:{port}",
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": self.key,
            "Sec-WebSocket-Version": "13",
            **(headers or {}),
        }
        request = "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
        request += "".join(f"{k}: {v}\r\n" for k, v in fields.items() if v is not None)
        self.sock.sendall((request + "\r\n").encode())
        self.buffer = b""
        head = self._until(b"\r\n\r\n")
        self.status_line, _, rest = head.partition("\r\n")
        self.headers = {
            k.strip().lower(): v.strip()
            for k, _, v in (line.partition(":") for line in rest.split("\r\n") if line)
        }

    def _until(self, marker: bytes) -> str:
        while marker not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self.buffer += chunk
        head, _, self.buffer = self.buffer.partition(marker)
        return head.decode()

    def _exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def read_frame(self) -> tuple[int, bytes]:
        """(opcode, payload) of the server's next frame."""
        first, second = self._exactly(2)
        assert first & 0x80, "the server sends whole frames"
        assert not second & 0x80, "a server's frames are never masked"
        size = second & 0x7F
        if size == 126:
            size = struct.unpack("!H", self._exactly(2))[0]
        elif size == 127:
            size = struct.unpack("!Q", self._exactly(8))[0]
        return first & 0x0F, self._exactly(size)

    def read_text(self, skip_pings: bool = True) -> str:
        while True:
            opcode, payload = self.read_frame()
            assert opcode == 0x1, (opcode, payload)
            text = payload.decode()
            if not (skip_pings and text == "2"):
                return text

    def read_until(self, prefix: str) -> str:
        """The first text message that starts with `prefix`; events on the way (such
        as the `presence` a connect announces before its answer) are passed over."""
        for _ in range(100):
            text = self.read_text()
            if text.startswith(prefix):
                return text
        raise AssertionError(f"no message starting {prefix!r}")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def closed_by_server(self, within: float = 3.0) -> bool:
        """Whether the server ends the connection (after any close frame) in time."""
        self.sock.settimeout(within)
        try:
            while self.sock.recv(65536):
                pass
            return True
        except TimeoutError:
            return False
        except ConnectionError:
            return True

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module", params=MODES)
def server(request, database_url, app):
    live = LiveServer(database_url, request.param, JWT_SECRET_KEY=app.config["JWT_SECRET_KEY"])
    try:
        yield live.start()
    finally:
        live.close()


@pytest.fixture
def token(users):
    return users.token(users.make("customer", name="Frame Tester"))


def opened(server) -> Raw:
    """A WebSocket past Engine.IO's open packet."""
    raw = Raw(server.url)
    assert raw.status_line.startswith("HTTP/1.1 101"), raw.status_line
    assert raw.read_text().startswith("0{")  # Engine.IO's open packet
    return raw


def connect_packet(token: str) -> bytes:
    return ("40/chat," + json.dumps({"token": token})).encode()


# --- the upgrade --------------------------------------------------------------------


def test_the_upgrade_answers_with_the_accept_key(server):
    raw = opened(server)
    try:
        assert raw.headers["sec-websocket-accept"] == accept_key(raw.key).decode()
        assert raw.headers["upgrade"].lower() == "websocket"
        assert "sec-websocket-extensions" not in raw.headers  # nothing agreed
    finally:
        raw.close()


@pytest.mark.parametrize(
    "headers, status",
    [
        ({"Sec-WebSocket-Key": "too-short"}, "400"),
        ({"Sec-WebSocket-Key": None}, "400"),
        ({"Sec-WebSocket-Version": "8"}, "426"),
    ],
    ids=["short-key", "no-key", "old-version"],
)
def test_a_bad_upgrade_gets_an_http_error_not_a_websocket(server, headers, status):
    raw = Raw(server.url, headers)
    try:
        assert raw.status_line.split()[1] == status, raw.status_line
        if status == "426":
            assert raw.headers["sec-websocket-version"] == "13"
    finally:
        raw.close()


# --- messages -----------------------------------------------------------------------


def test_a_message_in_fragments_split_across_reads_is_one_message(server, token):
    raw = opened(server)
    try:
        packet = connect_packet(token)
        third = len(packet) // 3
        data = (
            client_frame(packet[:third], fin=False)
            + client_frame(b"", opcode=0x9)  # a ping between fragments is allowed
            + client_frame(packet[third : 2 * third], opcode=0x0, fin=False)
            + client_frame(packet[2 * third :], opcode=0x0)
        )
        for i in range(0, len(data), 7):  # seven bytes per write: headers split too
            raw.send(data[i : i + 7])
        opcode, payload = raw.read_frame()
        assert (opcode, payload) == (0xA, b"")  # the pong, before the answer
        assert raw.read_until("40/chat,").startswith("40/chat,{")
    finally:
        raw.close()


def test_several_frames_in_one_write_are_each_handled(server, token):
    raw = opened(server)
    try:
        events = [
            f'42/chat,{n}["send_message",{{"body":"one write {n}","client_id":"w{n}"}}]'
            for n in (1, 2, 3)
        ]
        raw.send(
            client_frame(connect_packet(token)) + b"".join(client_frame(e.encode()) for e in events)
        )
        assert raw.read_until("40/chat,").startswith("40/chat,{")
        acks = {}
        while len(acks) < 3:
            ack_id, _, body = raw.read_until("43/chat,")[len("43/chat,") :].partition("[")
            acks[int(ack_id)] = json.loads("[" + body)[0]
        assert [acks[n]["message"]["body"] for n in (1, 2, 3)] == [
            "one write 1",
            "one write 2",
            "one write 3",
        ]
    finally:
        raw.close()


def test_a_ping_is_answered_with_its_payload(server):
    raw = opened(server)
    try:
        raw.send(client_frame(b"are you there", opcode=0x9))
        assert raw.read_frame() == (0xA, b"are you there")
    finally:
        raw.close()


def test_a_close_is_answered_with_its_code_and_ends_the_connection(server):
    raw = opened(server)
    try:
        raw.send(client_frame(struct.pack("!H", 1001) + b"going away", opcode=0x8))
        assert raw.read_frame() == (0x8, struct.pack("!H", 1001))
        assert raw.closed_by_server()
    finally:
        raw.close()


# --- a peer that breaks the protocol ------------------------------------------------


@pytest.mark.parametrize(
    "data, code",
    [
        (client_frame(b"40/chat,{}", mask=False), 1002),
        (client_frame(b"\xff\xfe not utf-8"), 1007),
        (client_frame(b"x", opcode=0x3), 1002),  # a reserved opcode
        (client_frame(b"x", opcode=0x0), 1002),  # a continuation of nothing
        (client_frame(b"x" * 126, opcode=0x9), 1002),  # a control frame over 125 bytes
        (bytes((0xC1, 0x81)) + os.urandom(5), 1002),  # RSV1: no extension was agreed
    ],
    ids=["unmasked", "bad-utf8", "reserved-opcode", "stray-continuation", "long-ping", "rsv1"],
)
def test_a_protocol_error_closes_with_its_code(server, data, code):
    raw = opened(server)
    try:
        raw.send(data)
        assert raw.read_frame() == (0x8, struct.pack("!H", code))
        assert raw.closed_by_server()
    finally:
        raw.close()


def test_a_message_over_the_limit_is_refused_from_its_header(server):
    """Only the header is sent: the server must not wait for 64 KiB it will refuse."""
    raw = opened(server)
    try:
        header = struct.pack("!BBQ", 0x81, 0x80 | 127, MAX_MESSAGE + 1) + os.urandom(4)
        raw.send(header)
        assert raw.read_frame() == (0x8, struct.pack("!H", 1009))
        assert raw.closed_by_server()
    finally:
        raw.close()


def test_fragments_that_add_up_past_the_limit_are_refused(server):
    raw = opened(server)
    try:
        half = b"x" * (MAX_MESSAGE // 2 + 1)
        raw.send(client_frame(half, fin=False) + client_frame(half, opcode=0x0))
        assert raw.read_frame() == (0x8, struct.pack("!H", 1009))
        assert raw.closed_by_server()
    finally:
        raw.close()


def test_a_message_at_the_limit_is_taken(server, token):
    raw = opened(server)
    try:
        raw.send(client_frame(connect_packet(token)))
        assert raw.read_until("40/chat,").startswith("40/chat,{")
        prefix = '42/chat,1["send_message",{"body":"'
        body = "y" * (MAX_MESSAGE - len(prefix) - len('"}]'))
        raw.send(client_frame((prefix + body + '"}]').encode()))
        text = raw.read_until("43/chat,1")
        assert json.loads(text[len("43/chat,1") :])[0]["error"]["code"] == "validation_error"
    finally:
        raw.close()


@pytest.mark.parametrize("mode", MODES)
def test_writes_that_never_wait_find_the_os_socket_under_each_servers_green_one(mode):
    """The event loop writes a socket's packets without a task switch only through the
    OS socket under the green one; if a release of eventlet or gevent moved it, every
    write would fall back to a writer task (slower, still correct). Checked in a process
    patched as `python wsgi.py` patches."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    patch = (
        "import eventlet; eventlet.monkey_patch()"
        if mode == "eventlet"
        else "from gevent import monkey; monkey.patch_all()"
    )
    script = (
        f"{patch}\n"
        "import socket\n"
        "from app.sockets.websocket import _nonblocking\n"
        "listener = socket.socket()\n"
        "listener.bind(('127.0.0.1', 0))\n"
        "listener.listen()\n"
        "client = socket.create_connection(listener.getsockname())\n"
        "accepted, _ = listener.accept()  # as the servers accept connections\n"
        "raw = _nonblocking(accepted)\n"
        "assert raw is not None and raw is not accepted, raw\n"
        "assert raw.send(b'ping') == 4 and client.recv(4) == b'ping'\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.strip() == "ok", done.stderr[-2000:]


def test_a_pong_waits_for_the_rest_of_a_write_cut_short():
    """The event loop's write that the socket took only part of keeps the write lock
    until its rest is sent: a pong (or goodbye) from the reading task must not land in
    the middle of that frame. Real sockets, real threads; the green socket's waiting
    `sendall` is played by a select loop."""
    import contextlib
    import select
    import threading
    from types import SimpleNamespace

    from app.sockets.websocket import PING, LeanWebSocket

    class Waiting:
        def __init__(self, raw):
            self.raw = raw

        def sendall(self, data):
            view = memoryview(data)
            while view:
                select.select([], [self.raw], [], 5)
                with contextlib.suppress(BlockingIOError):
                    view = view[self.raw.send(view) :]

    ws = LeanWebSocket(None, SimpleNamespace(max_http_buffer_size=MAX_MESSAGE))
    ours, peer = socket.socketpair()
    ours.setblocking(False)
    ws.sock, ws._raw = Waiting(ours), ours
    big = "x" * 3_000_000
    rest = ws.write_now([big])
    assert 0 < len(rest) < len(frame(big)), "the socket took part of the frame"
    pong = threading.Thread(target=ws._control, args=(PING, b"hi"))
    pong.start()
    writer = threading.Thread(target=ws.write, args=(rest,))
    writer.start()
    received = bytearray()
    expected = len(frame(big)) + len(frame(b"hi", 0xA))
    peer.settimeout(5)
    while len(received) < expected:
        received += peer.recv(1 << 20)
    writer.join(5)
    pong.join(5)
    assert bytes(received) == frame(big) + frame(b"hi", 0xA)
    ours.close()
    peer.close()
