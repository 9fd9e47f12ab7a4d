"""What a socket costs the server: Engine.IO's per-socket tasks, made on demand or not
at all.

python-engineio 4 gives every WebSocket two tasks besides the one reading it: a writer
blocked on the socket's packet queue, and a pinger that sleeps `ping_interval` between
pings. A parked task keeps its stack and frames, about 10 KB each, so an idle socket held
about 72 KB of the server, and every packet written cost a task switch and a timer
(docs/BENCHMARKS.md). Here, under eventlet and gevent:

- one `Pinger` per process pings every socket when its interval is up. Every socket waits
  the same interval, so the pings fall due in the order they were scheduled and a FIFO is
  the whole schedule;
- a socket's packets are written from the event loop itself (`LeanSocket._flush`), once
  the task that queued them pauses: all of them in one write that never waits. Only what
  the client does not take at once goes to a writer task, which ends when the queue is
  empty;
- the reading task hands a Socket.IO packet to the server without decoding it twice,
  and under overload it pauses a moment between reads so that the packets a flood
  sends are read, and refused, many at a time (app/sockets/admission.py);
- the WebSocket itself is framed here (app/sockets/websocket.py).

Nothing else changes: the packets, the upgrade from polling, and Engine.IO's service
task, which closes a socket whose pong is overdue (`check_ping_timeout`), and with it
the WebSocket. tests/test_heartbeat.py pins the heartbeat from outside.

`install()` swaps the class Engine.IO makes its sockets from (`engineio.socket.Socket`,
looked up at each connect); it relies on python-engineio 4.x internals, pinned in
requirements.txt. The threaded mode (`flask run`, the tests' in-process server) keeps
Engine.IO's own sockets: its tasks are real threads, where the check-then-start of a
writer would need a lock.
"""

from __future__ import annotations

import collections
import contextlib
import time

import engineio.socket
from engineio import exceptions, packet

from .websocket import LeanWebSocket

_StockSocket = engineio.socket.Socket
MESSAGE = str(packet.MESSAGE)  # an Engine.IO message packet's first character
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
        self._writing = False  # a writer task is running
        self._flush_due = False  # a flush is scheduled in the event loop
        self._run_soon = run_soon(server.async_mode)
        self._read_pause = getattr(server, "chat_read_pause", None)

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
        """A packet was queued: write it once the task that queued it pauses, together
        with whatever else it queued (an ack and the sender's own `new_message`)."""
        if self._ws is not None and not self._writing and not self._flush_due:
            self._flush_due = True
            self._run_soon(self._flush)

    def _flush(self) -> None:
        """Runs in the event loop itself, between tasks: no task switch and no timer.
        What the socket takes at once is written; the rest, and a close, go to a
        writer task, which writes whatever is queued meanwhile and ends."""
        self._flush_due = False
        ws = self._ws
        if ws is None or self._writing:
            return
        rest, closed = b"", False
        try:
            while not (rest or closed):  # every packet queued, WRITE_BATCH at a time
                messages, closed = self._take_queued()
                if not messages:
                    break
                rest = ws.write_now(messages)
        except Exception:  # a broken connection: the writer task closes it
            rest, closed = b"", True
        if rest or closed:
            self._writing = True
            self.server.start_background_task(self._write_queued, ws, rest, closed)

    def _take_queued(self) -> tuple[list, bool]:
        """The encoded packets queued now (at most WRITE_BATCH), and whether the socket
        was closed after them (a None in the queue)."""
        empty = self.server.get_queue_empty_exception()
        messages: list = []
        while len(messages) < WRITE_BATCH:
            try:
                pkt = self.queue.get(block=False)
            except empty:
                break
            self.queue.task_done()
            if pkt is None:
                return messages, True
            messages.append(pkt.encode())
        return messages, False

    def _write_queued(self, ws, rest: bytes = b"", closed: bool = False) -> None:
        """Write `rest` (waiting for the client to take it), then what is queued, until
        nothing is; then end, and later packets are flushed from the loop again."""
        try:
            if rest:
                ws.write(rest)
            while not closed:
                messages, closed = self._take_queued()
                if not messages:
                    break
                _send_together(ws, messages)
            if closed:
                _close_quietly(ws)  # the reading task then sees the connection end
        except Exception:  # a broken connection: close it, the reading task finishes up
            _close_quietly(ws)
        finally:
            self._writing = False

    def close(self, *args, **kwargs) -> None:
        """Engine.IO's close, which queues the goodbye; and if a writer task is stuck
        writing to a client that reads nothing, the WebSocket is ended after the ping
        timeout anyway, which fails that write and ends the reading task."""
        super().close(*args, **kwargs)
        ws = self._ws
        if ws is not None and self._writing:
            self.server.start_background_task(self._end_later, ws)

    def _end_later(self, ws) -> None:
        self.server.sleep(self.server.ping_timeout)
        _close_quietly(ws)  # nothing happens if it has ended meanwhile

    # --- the WebSocket transport ----------------------------------------------------

    def _websocket_handler(self, ws):
        """Runs for the WebSocket's whole life, on the task that reads it."""

        def read():
            data = ws.wait()
            if data and len(data) > self.server.max_http_buffer_size:
                raise ValueError("packet is too large")
            return data

        # While upgrading, a read times out when the client has been silent past its
        # pong: Engine.IO's heartbeat does not reach a WebSocket that is not yet this
        # socket's transport.
        ws.settimeout(self.server.ping_interval + self.server.ping_timeout)

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

        # From here the heartbeat closes a silent client's socket (check_ping_timeout),
        # which ends the WebSocket and this task's read; a read waits without a timer.
        ws.settimeout(None)
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
                if isinstance(data, str) and data[:1] == MESSAGE and data[1:2].isdigit():
                    # A Socket.IO packet, which is all but every one: what receive()
                    # does with it, without Packet's decoding (a failed JSON parse).
                    self.server._trigger_event(
                        "message", self.sid, data[1:], run_async=self.server.async_handlers
                    )
                else:
                    self.receive(packet.Packet(encoded_packet=data))
            except exceptions.UnknownPacketError:
                pass
            except exceptions.SocketIsClosedError:
                self.server.logger.info("Receive error -- socket is closed")
                break
            except Exception:
                self.server.logger.exception("Unknown receive error")
                break
            if not ws.has_unread() and self._read_pause is not None:
                pause = self._read_pause()  # overloaded: read the next packets together
                if pause:
                    self.server.sleep(pause)
        self._ws = None
        _close_quietly(ws)
        self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_CLOSE)
        return []


def _send_together(ws, messages: list) -> None:
    """Send the messages in one socket write (app/sockets/websocket.py)."""
    if len(messages) == 1:
        ws.send(messages[0])
    else:
        ws.send_many(messages)


def _close_quietly(ws) -> None:
    with contextlib.suppress(Exception):  # closed already, by either side
        ws.close()


def run_soon(async_mode: str):
    """`run_soon(function)`: call `function` in the event loop once the running task
    pauses, ahead of any I/O wait (gevent's callbacks, eventlet's zero timers)."""
    if async_mode == "gevent":
        import gevent

        return lambda function: gevent.get_hub().loop.run_callback(function)
    import eventlet.hubs

    return lambda function: eventlet.hubs.get_hub().schedule_call_global(0, function)


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


def install_websocket(eio_server) -> None:
    """Engine.IO's WebSockets framed here (app/sockets/websocket.py), under the
    cooperative servers only; the threading mode keeps simple-websocket."""
    if eio_server.async_mode in ("eventlet", "gevent"):
        eio_server._async = {**eio_server._async, "websocket": LeanWebSocket}
