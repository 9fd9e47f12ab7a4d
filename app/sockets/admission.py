"""Overload: a process answers at once what it cannot serve in time, and cheaply.

A process that takes every send queues without bound once it is past its capacity:
acks come back seconds late, clients time out and resend, and the resends add to the
queue. Instead, each process keeps two bounds (docs/DECISIONS.md, "Overload"):

- **Sends in flight.** A send is admitted while the sends already being handled would
  be done within `CHAT_SHED_AFTER` seconds at the rate this process has been finishing
  them (and always while fewer than `CHAT_SENDS_ALWAYS_ADMITTED` are in flight). Past
  that, the send is answered `rate_limited` ("busy") straight from its Engine.IO packet:
  a pre-encoded acknowledgement, with no JSON parsing and no Socket.IO dispatch, so a
  refusal costs a small fraction of a served send and the process keeps its throughput.
- **Database connections for sends.** Sends may hold all but `DATABASE_POOL_RESERVED`
  of the pool's connections, and wait at most `CHAT_SEND_WAIT` seconds for one. The
  reserved connections keep `history`, `list_rooms` and `/healthz` answering however
  many sends are waiting: a client resyncing after a restart is never starved by a
  flood of resends.

Only `send_message` is shed; every other event is cheap, or is the resync that gets a
client out of trouble.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable

from engineio.packet import MESSAGE
from engineio.packet import Packet as EngineIOPacket

from ..errors import Busy

# An EVENT packet of the /chat namespace asking for an acknowledgement, for
# send_message: `2/chat,<ack id>["send_message",…`. The packet Engine.IO hands over
# has its own type byte (message) stripped already.
SEND_PACKET = re.compile(r'2/chat,(\d+)\[\s*"send_message"')


# The answers, and their acknowledgements' payloads encoded once.
BUSY = {"ok": False, "error": Busy().to_dict()}
RESTARTING = {
    "ok": False,
    "error": Busy("The server is restarting; try again in a moment.").to_dict(),
}
# Overloaded, a socket's reading task pauses this long between reads
# (app/sockets/transport.py): a flood's packets then arrive, and are refused, many per
# read and per write instead of one each. A refusal cost the server about 100-130 us
# alone and costs 45-50 us so (docs/BENCHMARKS.md); nobody waits longer than this for
# an answer, and only while the process is past its capacity.
READ_PAUSE = 0.05
BUSY_ACK = json.dumps([BUSY], separators=(",", ":"))
RESTARTING_ACK = json.dumps([RESTARTING], separators=(",", ":"))


class Admission:
    """Counts the sends in flight and the rate at which they are served; says when to
    shed. `install` counts each admitted send from its packet to its answer (as
    `with admission:` would); the handler calls `served()` for each one stored."""

    def __init__(self, shed_after: float, always_admitted: int, clock=time.monotonic):
        self.shed_after = shed_after
        self.always_admitted = always_admitted
        self.clock = clock
        self._lock = threading.Lock()
        self.in_flight = 0
        self.shed = 0  # sends answered busy, since start
        self._rate = 0.0  # sends finished per second, over the last full second
        self._window_start = clock()
        self._finished_in_window = 0

    def overloaded(self) -> bool:
        return self.in_flight >= max(self.always_admitted, self._rate * self.shed_after)

    def __enter__(self) -> None:
        with self._lock:
            self.in_flight += 1

    def __exit__(self, *exc) -> None:
        with self._lock:
            self.in_flight -= 1

    def served(self) -> None:
        """One send stored and answered ok: the rate counts only these, not refusals."""
        with self._lock:
            self._finished_in_window += 1
            now = self.clock()
            elapsed = now - self._window_start
            if elapsed >= 1.0:
                self._rate = self._finished_in_window / elapsed
                self._window_start, self._finished_in_window = now, 0


def install(server, admission: Admission, tracker, namespace: str = "/chat") -> None:
    """Put the shedding check in front of python-socketio's handling of every Engine.IO
    message (for real transports and for Flask-SocketIO's test client alike), and count
    every admitted send as in flight from the moment its packet is read.

    Counting from the packet, not from when its handler starts, is what bounds a burst:
    python-socketio reads a client's packets one after another and starts a task for
    each, so a page (or twenty) resending a backlog after a restart used to put two
    thousand sends in flight before the first handler ran and raised the count, and
    acks came back more than 5 s late (tests/test_faults.py, restarts under load).

    While the process drains (`tracker.draining`, app/lifecycle.py) every send is
    answered "restarting" the same cheap way: clients that retry each refusal a few
    times a second must not keep a stopping process busy past its budget.
    """
    handle: Callable = server._handle_eio_message
    handle_event: Callable = server._handle_event
    handle_event_internal: Callable = server._handle_event_internal

    def handle_eio_message(eio_sid, data):
        if isinstance(data, str) and (tracker.draining or admission.overloaded()):
            match = SEND_PACKET.match(data)
            if match is not None:
                admission.shed += 1
                refusal = RESTARTING_ACK if tracker.draining else BUSY_ACK
                answer = f"3/chat,{match.group(1)}{refusal}"  # ACK, pre-encoded
                server._send_eio_packet(eio_sid, EngineIOPacket(MESSAGE, data=answer))
                return None
        return handle(eio_sid, data)

    def is_send(ns, data) -> bool:
        return (ns or "/") == namespace and bool(data) and data[0] == "send_message"

    def counted_handle_event(eio_sid, ns, id, data):
        # python-socketio hands the event to a task exactly when its socket is connected
        # to the namespace (the same check, made just before, with nothing in between
        # that could yield); the task below gives the count back whatever happens.
        if is_send(ns, data):
            sid = server.manager.sid_from_eio_sid(eio_sid, ns or "/")
            if sid is not None and server.manager.is_connected(sid, ns or "/"):
                admission.__enter__()
        return handle_event(eio_sid, ns, id, data)

    def counted_handle_event_internal(srv, sid, eio_sid, data, ns, id):
        try:
            return handle_event_internal(srv, sid, eio_sid, data, ns, id)
        finally:
            if is_send(ns, data):
                admission.__exit__()

    server.eio.chat_read_pause = lambda: READ_PAUSE if admission.overloaded() else 0.0
    server._handle_eio_message = handle_eio_message
    server._handle_event = counted_handle_event
    server._handle_event_internal = counted_handle_event_internal
    server.eio.on("message", handle_eio_message)
