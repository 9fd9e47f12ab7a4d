"""The WebSocket under Engine.IO for eventlet and gevent: RFC 6455 framing, done on the
connection's own task.

Engine.IO hands a WebSocket connection to a WSGI class of its async driver, and that
class's object is what the socket's reading task waits on and its writer sends through.
The drivers' classes cost more than the chat's work on a busy socket
(docs/BENCHMARKS.md, "A WebSocket of our own"):

- gevent's is simple-websocket, which parks a second task per connection that reads the
  socket, parses every frame with wsproto in pure Python (the payload unmasked byte by
  byte), and hands each message over through an Event: two task switches per packet;
- eventlet's parses frames in Python as well, a read per header and payload.

Here one `recv` takes whatever has arrived, every complete frame in it is parsed on the
reading task, the payload unmasked in one integer XOR, and a writer sends any number of
messages in one socket write. Only what Socket.IO needs of RFC 6455 is spoken: text and
binary messages (fragmented or not), ping, pong and close; no extension is agreed
(app/wire.py already hides the compression offer) and no subprotocol. Client frames must
be masked; a message over the server's `max_http_buffer_size` is refused from its header,
before its payload is read, with close code 1009.

tests/test_websocket.py pins the framing against a raw TCP client; every live test,
browser test and proxy test runs over it.
"""

from __future__ import annotations

import _socket
import base64
import binascii
import contextlib
import hashlib
import socket
import struct
import threading

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455, section 1.3
RECV_BYTES = 65536

TEXT, BINARY, CONTINUATION = 0x1, 0x2, 0x0
CLOSE, PING, PONG = 0x8, 0x9, 0xA

NORMAL, PROTOCOL_ERROR, UNSUPPORTED, BAD_DATA, TOO_BIG = 1000, 1002, 1003, 1007, 1009


class ProtocolError(Exception):
    """The peer broke RFC 6455: the connection is closed with `code`."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code


def accept_key(key: str) -> bytes:
    """Sec-WebSocket-Accept for a client's Sec-WebSocket-Key."""
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest())


def frame(message: str | bytes, opcode: int | None = None) -> bytes:
    """One unmasked, final frame (a server's): text for str, binary for bytes."""
    if isinstance(message, str):
        payload, first = message.encode(), 0x80 | (TEXT if opcode is None else opcode)
    else:
        payload, first = bytes(message), 0x80 | (BINARY if opcode is None else opcode)
    size = len(payload)
    if size < 126:
        return bytes((first, size)) + payload
    if size < 65536:
        return struct.pack("!BBH", first, 126, size) + payload
    return struct.pack("!BBQ", first, 127, size) + payload


def unmask(payload: bytes | bytearray, mask: bytes | bytearray) -> bytes:
    """XOR `payload` with the repeated 4-byte `mask`, in one big-integer operation."""
    size = len(payload)
    if not size:
        return b""
    key = (bytes(mask) * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(
        size, "little"
    )


class LeanWebSocket:
    """Engine.IO's `websocket` class under eventlet and gevent (installed by
    app/sockets/transport.py): a WSGI app that answers the upgrade on the raw socket,
    then runs Engine.IO's handler with itself as the WebSocket (`wait`, `send`,
    `send_many`, `close`)."""

    def __init__(self, handler, server) -> None:
        self.handler = handler
        self.max_message = int(server.max_http_buffer_size)
        self.sock = None
        self._raw = None  # the operating system's socket, for writes that never wait
        self._buffer = bytearray()
        self._at = 0  # where the unparsed bytes of _buffer begin
        self._parts: list[bytes] | None = None  # a fragmented message's payloads so far
        self._parts_opcode = TEXT
        self._parts_size = 0
        self._write_lock = threading.Lock()  # cooperative under both servers' patching
        self._rest_pending = False  # write_now was cut short and holds the lock
        self._ended = False  # the connection is over for reading
        self._close_sent = False

    # --- the upgrade ---------------------------------------------------------------

    def __call__(self, environ, start_response):
        refused = _refusal(environ)
        if refused is not None:
            status, body = refused
            headers = [("Content-Type", "text/plain"), ("Connection", "close")]
            if status.startswith("426"):
                headers.append(("Sec-WebSocket-Version", "13"))
            start_response(status, headers)
            return [body.encode()]
        self.sock = _raw_socket(environ)
        self._raw = _nonblocking(self.sock)
        self.sock.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
            + accept_key(environ["HTTP_SEC_WEBSOCKET_KEY"])
            + b"\r\n\r\n"
        )
        if "eventlet.set_idle" in environ:  # a graceful stop need not wait for it
            environ["eventlet.set_idle"]()
        try:
            self.handler(self)
        finally:
            self.close()
        return _handled(environ)

    def settimeout(self, seconds: float | None) -> None:
        """A read waits at most this long (Engine.IO's ping interval plus timeout)."""
        self.sock.settimeout(seconds)

    # --- reading ---------------------------------------------------------------------

    def wait(self) -> str | bytes | None:
        """The next message, or None once the connection is over (closed by the peer,
        or closed here after a protocol error). A read that times out raises."""
        while True:
            try:
                message = self._parse()
            except ProtocolError as exc:
                self._ended = True
                self.close(exc.code)
                return None
            if message is not None:
                return message
            if self._ended:
                return None
            try:
                data = self.sock.recv(RECV_BYTES)
            except TimeoutError:  # silent past the heartbeat while upgrading
                raise
            except OSError:
                data = b""
            if not data:
                self._ended = True
                return None
            if self._at:  # drop what was parsed before adding to the end
                del self._buffer[: self._at]
                self._at = 0
            self._buffer += data

    def has_unread(self) -> bool:
        """Whether bytes already received are waiting to be parsed."""
        return len(self._buffer) > self._at

    def _parse(self) -> str | bytes | None:
        """Parse frames from the buffer until a whole message is in (returned), or the
        rest of a frame has not arrived yet (None)."""
        buf = self._buffer
        while not self._ended:
            at, size = self._at, len(self._buffer) - self._at
            if size < 2:
                return None
            first, second = buf[at], buf[at + 1]
            fin, opcode, length = first & 0x80, first & 0x0F, second & 0x7F
            start = at + 2
            if length == 126:
                if size < 4:
                    return None
                length, start = int.from_bytes(buf[at + 2 : at + 4], "big"), at + 4
            elif length == 127:
                if size < 10:
                    return None
                length, start = int.from_bytes(buf[at + 2 : at + 10], "big"), at + 10
            if first & 0x70:
                raise ProtocolError(PROTOCOL_ERROR, "no extension was agreed")
            if not second & 0x80:
                raise ProtocolError(PROTOCOL_ERROR, "a client's frames must be masked")
            if opcode >= CLOSE:
                if opcode not in (CLOSE, PING, PONG):
                    raise ProtocolError(PROTOCOL_ERROR, "unknown control frame")
                if length > 125 or not fin:
                    raise ProtocolError(PROTOCOL_ERROR, "control frames are short and whole")
            elif opcode not in (TEXT, BINARY, CONTINUATION):
                raise ProtocolError(PROTOCOL_ERROR, "unknown data frame")
            elif self._parts_size + length > self.max_message:
                raise ProtocolError(TOO_BIG, "message too large")
            end = start + 4 + length
            if at + size < end:
                return None
            payload = unmask(buf[start + 4 : end], buf[start : start + 4])
            self._at = end
            if opcode >= CLOSE:
                self._control(opcode, payload)
                continue
            message = self._message(fin, opcode, payload)
            if message is not None:
                return message
        return None

    def _control(self, opcode: int, payload: bytes) -> None:
        if opcode == PING:
            self._write(frame(payload, PONG))
        elif opcode == CLOSE:  # answer it, then the connection is over
            self._ended = True
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else NORMAL
            self.close(code if 1000 <= code < 5000 and code not in (1005, 1006) else NORMAL)

    def _message(self, fin: int, opcode: int, payload: bytes) -> str | bytes | None:
        if opcode == CONTINUATION:
            if self._parts is None:
                raise ProtocolError(PROTOCOL_ERROR, "a continuation with nothing to continue")
            self._parts.append(payload)
            self._parts_size += len(payload)
            if not fin:
                return None
            opcode, payload = self._parts_opcode, b"".join(self._parts)
            self._parts, self._parts_size = None, 0
        elif self._parts is not None:
            raise ProtocolError(PROTOCOL_ERROR, "a new message before the last one ended")
        elif not fin:
            self._parts, self._parts_opcode, self._parts_size = [payload], opcode, len(payload)
            return None
        if opcode == BINARY:
            return payload
        try:
            return payload.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError(BAD_DATA, "text that is not UTF-8") from None

    # --- writing ---------------------------------------------------------------------

    def send(self, message: str | bytes) -> None:
        self.send_many((message,))

    def send_many(self, messages) -> None:
        """Send each message as a frame of its own, all in one socket write."""
        if self._close_sent:
            raise OSError("the WebSocket is closed")
        self._write(b"".join(map(frame, messages)))

    def write_now(self, messages) -> bytes:
        """Frame the messages and write what the socket takes without waiting (the
        event loop calls this between tasks); return the bytes it did not take.

        A write cut short keeps the write lock: `write` must send the rest before any
        other frame (a pong, a goodbye) may go, or it would land inside a frame."""
        if self._close_sent:
            raise OSError("the WebSocket is closed")
        data = b"".join(map(frame, messages))
        if self._raw is None or not self._write_lock.acquire(False):
            return data  # another write is under way: the writer task sends these after
        try:
            sent = self._raw.send(data)
        except BlockingIOError:
            sent = 0
        except BaseException:
            self._write_lock.release()
            raise
        if sent == 0 or sent == len(data):
            self._write_lock.release()
            return data[sent:]
        self._rest_pending = True  # the lock stays held until `write` sends the rest
        return data[sent:]

    def write(self, data: bytes) -> None:
        """Write bytes already framed (the rest of a `write_now` first of all), waiting
        cooperatively until all are taken."""
        if self._rest_pending:  # under the lock write_now kept
            try:
                self.sock.sendall(data)
            finally:
                self._rest_pending = False
                self._write_lock.release()
            return
        if self._close_sent:
            raise OSError("the WebSocket is closed")
        self._write(data)

    def _write(self, data: bytes) -> None:
        with self._write_lock:  # a pong from the reader never splits the writer's frames
            self.sock.sendall(data)

    def close(self, code: int = NORMAL) -> None:
        """Say goodbye (once) and end the connection: a read waiting on it, or the
        next one, finds it over, and a write waiting on it fails."""
        if self.sock is None or self._close_sent:
            return
        self._close_sent = True
        goodbye = frame(code.to_bytes(2, "big"), CLOSE)
        try:  # never waits: a client that takes nothing more is not waited for
            if self._raw is None:
                self._write(goodbye)
            elif not self._write_lock.locked():
                self._raw.send(goodbye)
        except OSError:
            pass
        with contextlib.suppress(OSError):  # the peer may have gone already
            self.sock.shutdown(socket.SHUT_RDWR)


def _refusal(environ) -> tuple[str, str] | None:
    """Why this request is not a WebSocket upgrade we can take, or None."""
    connection = {p.strip() for p in environ.get("HTTP_CONNECTION", "").lower().split(",")}
    if environ.get("HTTP_UPGRADE", "").lower() != "websocket" or "upgrade" not in connection:
        return "400 Bad Request", "Not a WebSocket upgrade."
    if environ.get("HTTP_SEC_WEBSOCKET_VERSION", "").strip() != "13":
        return "426 Upgrade Required", "Only WebSocket version 13 is spoken here."
    try:
        valid = len(base64.b64decode(environ.get("HTTP_SEC_WEBSOCKET_KEY", ""), validate=True))
    except (binascii.Error, ValueError):
        valid = 0
    if valid != 16:
        return "400 Bad Request", "Sec-WebSocket-Key must be 16 bytes in base64."
    return None


def _raw_socket(environ):
    """The connection's socket, under eventlet's or gevent's WSGI server."""
    if "eventlet.input" in environ:
        return environ["eventlet.input"].get_socket()
    wsgi_input = environ["wsgi.input"]  # gevent's pywsgi
    rfile = getattr(wsgi_input, "rfile", wsgi_input)
    return rfile.raw._sock


def _nonblocking(sock):
    """The non-blocking OS socket under a green one (gevent's `_sock`, eventlet's
    `fd`), or None when there is none to be had."""
    for name in ("_sock", "fd"):  # eventlet's `_sock` is the green socket itself
        raw = getattr(sock, name, None)
        if isinstance(raw, _socket.socket) and raw.gettimeout() == 0.0:
            return raw
    return None


def _handled(environ) -> list:
    """What the WSGI server must get back for a connection the app answered itself."""
    if "eventlet.input" in environ:
        import eventlet.wsgi

        eventlet.wsgi.WSGI_LOCAL.already_handled = True  # no response of its own
    # gevent: no start_response was called; app/lifecycle.py then closes the connection.
    return []
