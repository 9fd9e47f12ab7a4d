"""A lean Socket.IO client for the fault and overload tests: Engine.IO v4 over a plain
WebSocket (websocket-client), packets written and read by hand.

python-socketio's client spends more CPU per message than the server does, so it
cannot offer a server several times its capacity from the same machine. This one
writes pre-formatted packets and parses only what it keeps. It speaks exactly the
wire format of PROTOCOL.md ("Socket.IO"): `40/chat,{auth}` to connect, events as
`42/chat,<id>[name, payload]`, acknowledgements as `43/chat,<id>[answer]`.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import selectors
import threading
import time
from collections.abc import Callable

import websocket


class Refused(Exception):
    """The server refused the namespace (connect_error), or the socket never opened."""


class RawClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        on_event: Callable | None = None,
        cookie: str | None = None,
        answer_pings: bool = True,
        readers: Readers | None = None,
    ):
        self.on_event = on_event  # on_event(name, payload), on the reader thread
        self.answer_pings = answer_pings  # False: a client that went silent
        self.pings = 0  # Engine.IO pings heard since the namespace opened
        self.closed_at: float | None = None  # monotonic time the socket was seen gone
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._waiting: dict[int, Callable] = {}  # ack id -> callback(answer)
        self.connected = False
        url = base_url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        try:
            self.ws = websocket.create_connection(
                url, timeout=5, enable_multithread=True, cookie=cookie
            )
            # Behind deploy/nginx.conf: which process answered (its sticky cookie).
            set_cookie = (self.ws.getheaders() or {}).get("set-cookie", "")
            self.node = set_cookie.partition("chat_node=")[2].partition(";")[0] or None
            opened = self.ws.recv()
            if not opened.startswith("0"):
                raise Refused(f"no Engine.IO open packet: {opened[:80]!r}")
            self.ws.send("40/chat," + json.dumps({"token": token}))
            early = []  # events the server sent before its answer, kept as clients do
            while True:  # the namespace's answer (a ping or events may come first)
                answer = self.ws.recv()
                if answer == "2":
                    self.ws.send("3")
                elif answer.startswith("42/chat,"):
                    early.append(answer)
                else:
                    break
        except (OSError, websocket.WebSocketException) as exc:
            self._close_quietly()
            raise Refused(str(exc)) from exc
        if answer.startswith("44/chat,"):
            self._close_quietly()
            raise Refused(answer[len("44/chat,") :])
        if not answer.startswith("40/chat,"):
            self._close_quietly()
            raise Refused(f"unexpected answer {answer[:80]!r}")
        self.ws.settimeout(None)
        self.connected = True
        for packet in early:
            self._event(packet)
        if readers is not None:  # one thread reads many sockets
            readers.add(self)
        else:
            threading.Thread(target=self._read, daemon=True).start()

    # --- sending ----------------------------------------------------------------

    def emit(self, event: str, payload: dict, callback: Callable | None = None) -> bool:
        """Send an event; `callback(answer)` runs when its acknowledgement arrives.
        False when the socket is gone (the callback then never runs)."""
        ack_id = next(self._ids)
        if callback is not None:
            with self._lock:
                self._waiting[ack_id] = callback
        packet = f"42/chat,{ack_id}" + json.dumps([event, payload], separators=(",", ":"))
        try:
            self.ws.send(packet)
            return True
        except (OSError, websocket.WebSocketException):
            with self._lock:
                self._waiting.pop(ack_id, None)
            self.connected = False
            return False

    def call(self, event: str, payload: dict, timeout: float = 10) -> dict:
        """Send and wait for the acknowledgement: TimeoutError if none comes in time on a
        socket that stays up, ConnectionError if the socket drops first."""
        done = threading.Event()
        box: list = []

        def got(answer):
            box.append(answer)
            done.set()

        if not self.emit(event, payload, got):
            raise ConnectionError("the socket is gone")
        deadline = time.monotonic() + timeout
        while not done.wait(0.02):
            if not self.connected:
                raise ConnectionError("the socket dropped before the acknowledgement")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no acknowledgement for {event} in {timeout} s")
        return box[0]

    def waiting(self) -> int:
        """Acknowledgements asked for and not yet come."""
        with self._lock:
            return len(self._waiting)

    # --- receiving --------------------------------------------------------------

    def _read(self) -> None:
        try:
            while self.read_one():
                pass
        finally:
            self.gone()

    def read_one(self) -> bool:
        """Read and handle one packet; False when the socket is done with."""
        try:
            packet = self.ws.recv()
            if not packet:
                return False
            if packet == "2":  # Engine.IO ping
                self.pings += 1
                if self.answer_pings:
                    self.ws.send("3")
            elif packet.startswith("43/chat,"):
                self._acknowledged(packet)
            elif packet.startswith("42/chat,"):
                self._event(packet)
            elif packet.startswith("41/chat") or packet.startswith("1"):
                return False  # the server closed the namespace or the transport
            return True
        except (OSError, websocket.WebSocketException, ValueError):
            return False

    def gone(self) -> None:
        self.connected = False
        self.closed_at = time.monotonic()
        with self._lock:
            self._waiting.clear()  # those acks will never come
        self._close_quietly()

    def _event(self, packet: str) -> None:
        if self.on_event is not None:
            name, payload = json.loads(packet[len("42/chat,") :])
            self.on_event(name, payload)

    def _acknowledged(self, packet: str) -> None:
        body = packet[len("43/chat,") :]
        bracket = body.index("[")
        ack_id = int(body[:bracket])
        with self._lock:
            callback = self._waiting.pop(ack_id, None)
        if callback is not None:
            callback(json.loads(body[bracket:])[0])

    def close(self) -> None:
        self.connected = False
        self._close_quietly()

    def _close_quietly(self) -> None:
        with contextlib.suppress(Exception):
            self.ws.close()


class Readers:
    """One thread that reads many RawClients' sockets (`RawClient(..., readers=...)`).

    A load of a thousand clients with a reading thread each spends the clients' core
    on waking threads and handing the GIL around, and then offers less than it should.
    websocket-client reads a frame with exactly the bytes the frame needs, so what is
    left of the next frame stays in the kernel's buffer, where the selector sees it.
    """

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def add(self, client: RawClient) -> None:
        self._selector.register(client.ws.sock, selectors.EVENT_READ, client)

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._selector.get_map():
                self._stop.wait(0.01)  # nothing to read yet
                continue
            for key, _ in self._selector.select(timeout=0.05):
                client = key.data
                if not client.read_one():
                    with contextlib.suppress(KeyError, ValueError):
                        self._selector.unregister(key.fileobj)
                    client.gone()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._selector.close()


def now() -> float:
    return time.monotonic()
