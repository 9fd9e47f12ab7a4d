"""What an idle socket costs the server: Engine.IO's per-socket tasks, made on demand.

python-engineio 4 gives every WebSocket two tasks besides the one reading it: a writer
blocked on the socket's packet queue, and a pinger that sleeps `ping_interval` between
pings. A parked task keeps its stack and frames, about 10 KB each, so an idle socket held
about 72 KB of the server (docs/BENCHMARKS.md). Here, under eventlet and gevent:

- one `Pinger` per process pings every socket when its interval is up. Every socket waits
  the same interval, so the pings fall due in the order they were scheduled and a FIFO is
  the whole schedule;
- a socket's writer runs only while packets come (`LeanSocket`): the queue starts a
  writer on the first packet, and the writer ends once no packet came for a second.

Nothing else changes: the reading task, the packets, the upgrade from polling, and
Engine.IO's service task, which closes a socket whose pong is overdue
(`check_ping_timeout`). tests/test_heartbeat.py pins the heartbeat from outside.

`install()` swaps the class Engine.IO makes its sockets from (`engineio.socket.Socket`,
looked up at each connect); it relies on python-engineio 4.x internals, pinned in
requirements.txt. The threaded mode (`flask run`, the tests' in-process server) keeps
Engine.IO's own sockets: its tasks are real threads, where the check-then-start of a
writer would need a lock.
"""

from __future__ import annotations

import collections
import contextlib
import sys
import time

import engineio.socket
import simple_websocket.ws
from engineio import exceptions, packet
from wsproto.events import Message, TextMessage

_StockSocket = engineio.socket.Socket
# A writer waits this long for the next packet before it ends: a busy socket keeps one
# writer instead of starting one per packet, an idle one holds none for long.
WRITER_LINGER = 1.0
# At most this many queued packets go out in one socket write.
WRITE_BATCH = 64


class Pinger:
    """Pings each scheduled socket `ping_interval` seconds after it was scheduled, from
    one background task that runs while any ping is due and ends when none is."""

    def __init__(self, server) -> None:
        self.server = server
        self.due: collections.deque = collections.deque()  # (monotonic time, socket)
        self.running = False

    def schedule(self, sock) -> None:
        self.due.append((time.monotonic() + self.server.ping_interval, sock))
        if not self.running:
            self.running = True
            self.server.start_background_task(self._run)

    def _run(self) -> None:
        try:
            while self.due:
                when, sock = self.due[0]
                wait = when - time.monotonic()
                if wait > 0:
                    self.server.sleep(wait)
                    continue
                self.due.popleft()
                try:
                    sock.ping_now()
                except Exception:  # one socket's failure must not stop the others' pings
                    self.server.logger.exception("%s: ping failed", sock.sid)
        finally:
            # No switch to another task between the empty check and this line, so a
            # socket scheduled meanwhile has started a new run or found this one running.
            self.running = False


class _StartsWriter:
    """The socket's packet queue; a put starts the socket's writer if none is running."""

    def __init__(self, queue, sock) -> None:
        self._queue = queue
        self._sock = sock

    def put(self, item, *args, **kwargs) -> None:
        self._queue.put(item, *args, **kwargs)
        self._sock.start_writer()

    def __getattr__(self, name):  # get, task_done, join, empty: the queue's own
        return getattr(self._queue, name)


class LeanSocket(_StockSocket):
    """An Engine.IO socket with no parked writer and no pinger task of its own."""

    def __init__(self, server, sid) -> None:
        super().__init__(server, sid)
        self.queue = _StartsWriter(self.queue, self)
        self._ws = None  # the WebSocket, once this socket speaks over one
        self._writing = False

    # --- the heartbeat --------------------------------------------------------------

    def schedule_ping(self) -> None:
        if self.last_ping:  # as Engine.IO's: only after the previous ping was answered
            self.last_ping = None
            pinger(self.server).schedule(self)

    def ping_now(self) -> None:
        if not self.closing and not self.closed:
            self.last_ping = time.time()
            self.send(packet.Packet(packet.PING))

    # --- writing --------------------------------------------------------------------

    def start_writer(self) -> None:
        if self._ws is not None and not self._writing:
            self._writing = True
            self.server.start_background_task(self._write_queued, self._ws)

    def _write_queued(self, ws) -> None:
        """Write what is queued, and what comes within WRITER_LINGER seconds after it,
        then end. What is queued together goes out in one socket write (an ack and the
        sender's own `new_message`, a burst of answers). None means the socket closed."""
        empty = self.server.get_queue_empty_exception()
        try:
            while True:
                try:
                    pkt = self.queue.get(timeout=WRITER_LINGER)
                except empty:
                    try:  # a packet put while the wait was ending, before this resumed
                        pkt = self.queue.get(block=False)
                    except empty:
                        return
                self.queue.task_done()
                closed = pkt is None
                messages = [] if closed else [pkt.encode()]
                while not closed and len(messages) < WRITE_BATCH:
                    try:
                        pkt = self.queue.get(block=False)
                    except empty:
                        break
                    self.queue.task_done()
                    if pkt is None:
                        closed = True
                    else:
                        messages.append(pkt.encode())
                if messages:
                    _send_together(ws, messages)
                if closed:
                    _close_quietly(ws)  # the reading task then sees the connection end
                    return
        except Exception:  # a broken connection: close it, the reading task finishes up
            _close_quietly(ws)
        finally:
            self._writing = False

    # --- the WebSocket transport ----------------------------------------------------

    def _websocket_handler(self, ws):
        """Runs for the WebSocket's whole life, on the task that reads it."""

        def read():
            data = ws.wait()
            if data and len(data) > self.server.max_http_buffer_size:
                raise ValueError("packet is too large")
            return data

        # A read times out when the client has been silent past its pong.
        for attr in ("_sock", "socket"):
            if hasattr(ws, attr) and hasattr(getattr(ws, attr), "settimeout"):
                getattr(ws, attr).settimeout(self.server.ping_interval + self.server.ping_timeout)

        if self.connected:  # an upgrade from long-polling: the probe, then UPGRADE
            self.upgrading = True  # the polling transport hands out no more packets
            probe = packet.Packet(encoded_packet=read())
            if probe.packet_type != packet.PING or probe.data != "probe":
                self.server.logger.info("%s: Failed websocket upgrade, no PING packet", self.sid)
                self.upgrading = False
                return []
            ws.send(packet.Packet(packet.PONG, data="probe").encode())
            self.queue.put(packet.Packet(packet.NOOP))  # ends the poll waiting on the queue
            upgrade = packet.Packet(encoded_packet=read())
            if upgrade.packet_type != packet.UPGRADE:
                self.server.logger.info(
                    "%s: Failed websocket upgrade, expected UPGRADE packet", self.sid
                )
                self.upgraded = False
                self.upgrading = False
                return []
            self.upgraded = True
            self.upgrading = False
        else:
            self.connected = True
            self.upgraded = True

        self._ws = ws
        self.start_writer()  # whatever was queued before the WebSocket took over
        self.server.logger.info("%s: Upgrade to websocket successful", self.sid)
        while True:
            try:
                data = read()
            except Exception as exc:
                if not self.closed:
                    self.server.logger.info(
                        '%s: Unexpected error "%s", closing connection', self.sid, exc
                    )
                break
            if data is None:  # the client closed the connection
                break
            try:
                self.receive(packet.Packet(encoded_packet=data))
            except exceptions.UnknownPacketError:
                pass
            except exceptions.SocketIsClosedError:
                self.server.logger.info("Receive error -- socket is closed")
                break
            except Exception:
                self.server.logger.exception("Unknown receive error")
                break
        self._ws = None
        _close_quietly(ws)
        self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_CLOSE)
        return []


def _send_together(ws, messages: list) -> None:
    """Send WebSocket messages in one socket write, through the two WebSockets the
    servers here hand Engine.IO: simple-websocket's (gevent; Engine.IO wraps it) and
    eventlet's own. Each frames the messages as its `send` would; anything else gets
    one `send` per message."""
    if len(messages) == 1:
        ws.send(messages[0])
        return
    inner = getattr(ws, "ws", None)
    if isinstance(inner, simple_websocket.ws.Base):
        if not inner.connected:
            raise OSError("the WebSocket is closed")
        frames = (
            inner.ws.send(TextMessage(data=m) if isinstance(m, str) else Message(data=m))
            for m in messages
        )
        inner.sock.sendall(b"".join(frames))
        return
    eventlet_websocket = sys.modules.get("eventlet.websocket")
    if eventlet_websocket is not None and isinstance(ws, eventlet_websocket.RFC6455WebSocket):
        ws._send(b"".join(ws._pack_message(m, masked=ws.client) for m in messages))
        return
    for message in messages:
        ws.send(message)


def _close_quietly(ws) -> None:
    with contextlib.suppress(Exception):  # closed already, by either side
        ws.close()


def pinger(server) -> Pinger:
    """The process's one pinger for this Engine.IO server."""
    existing = getattr(server, "_chat_pinger", None)
    if existing is None:
        existing = server._chat_pinger = Pinger(server)
    return existing


def install(async_mode: str) -> None:
    """Make Engine.IO's sockets lean, under the cooperative servers only."""
    if async_mode in ("eventlet", "gevent"):
        engineio.socket.Socket = LeanSocket
