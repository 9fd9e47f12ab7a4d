"""Who on the team has which conversation open ("Ana is viewing"), so two members do
not answer one customer without knowing it.

Each staff socket says which room it shows (`view_room`, again every 20 s while it
does); every staff socket hears `viewing`. Nothing is stored: this process remembers
its own sockets' rooms only to say "stopped viewing" when one closes or moves on. A
process that dies says nothing, so clients forget a viewer not heard from for a
minute (docs/PROTOCOL.md, `viewing`). Customers never hear any of it.
"""

from __future__ import annotations

import threading

from ..extensions import db
from . import events
from .access import access_room
from .payloads import assignee_view
from .schemas import Id, Payload, parse
from .team import only_staff

_rooms: dict[str, tuple[int, dict]] = {}  # sid -> (room id, the viewer's {id, name})
_lock = threading.Lock()


class ViewRoom(Payload):
    room_id: Id | None  # null: no conversation open


def view_room(user, data: object, sid: str) -> None:
    """The socket `sid` now shows `room_id` (or none)."""
    only_staff(user)
    form = parse(ViewRoom, data)
    if form.room_id is not None:
        access_room(user, form.room_id)  # not_found for a room that is not there
        db.session.rollback()
    viewer = assignee_view(user.id, user.name)
    with _lock:
        before = _rooms.pop(sid, None)
        if form.room_id is not None:
            _rooms[sid] = (form.room_id, viewer)
    if before is not None and before[0] != form.room_id:
        events.viewing(before[0], before[1], False)
    if form.room_id is not None:
        events.viewing(form.room_id, viewer, True)


def forget(sid: str) -> None:
    """A socket closed: if it showed a conversation, the team hears it stopped."""
    with _lock:
        before = _rooms.pop(sid, None)
    if before is not None:
        events.viewing(before[0], before[1], False)
