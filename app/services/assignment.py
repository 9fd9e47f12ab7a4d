"""Who on the team has which conversation: assigning by hand, and automatic assignment
from the queue of waiting conversations.

The queue is `chat_rooms.queued_at`: set when a conversation gets its first message,
or a customer's message reopens it while nobody has it, or it is given back; cleared
when someone gets it, when it is resolved, and when someone unassigns it by hand (it
then stays with the team, unassigned, until reopened).

Automatic assignment (`assign_waiting`) gives the oldest waiting conversation to the
available, online member with the fewest open conversations under their capacity;
ties go to whoever was given one longest ago (round-robin). It runs in PostgreSQL
under row locks, so several processes on several machines never give one
conversation twice, nor one member more than their capacity:

1. the candidates' rows are locked, in id order (`FOR UPDATE`): assigners that could
   pick the same member take turns;
2. their loads are counted by a new statement, which sees every assignment committed
   before the locks were granted;
3. the oldest waiting conversation is locked with `FOR UPDATE SKIP LOCKED`: one that a
   send or a hand assignment holds is left for the next round, never waited on.

SQLite has no row locks; there a process-wide lock makes assigners take turns (the
quick start is one process).
"""

from __future__ import annotations

import threading

from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.orm import aliased

from ..database import transaction
from ..errors import ValidationError
from ..extensions import db
from ..models import STAFF_ROLES, ChatRoom, RoomEvent, User, utcnow
from ..registry import current_registry
from . import events
from .access import access_room
from .inbox import admin_view_of_room, room_summary
from .payloads import assignee_view, author_view, room_event_view
from .schemas import Id, Payload, parse
from .team import only_staff

# One assigner at a time in this process: SQLite has no row locks, and on PostgreSQL
# assigners of one process would only wait on each other's row locks.
_turns = threading.Lock()
MAX_ROUNDS = 1000  # the most conversations one call gives out


class Assign(Payload):
    room_id: Id
    agent_id: Id | None


def auto_assign_on() -> bool:
    """From the process's copy of the team's settings (never a read on the send path;
    another process's change arrives with the copy's refresh, within seconds)."""
    from .availability import cached

    return cached().auto_assign


def _capacity():
    return func.coalesce(User.capacity, current_app.config["CHAT_AGENT_CAPACITY"])


def candidates() -> list[int]:
    """The members automatic assignment may choose: active, available and online."""
    from .availability import BOT_EMAIL

    if not current_registry().any_online("admin"):  # no staff socket anywhere: no read
        return []
    ids = db.session.scalars(
        select(User.id).where(
            User.role.in_(STAFF_ROLES),
            User.deactivated_at.is_(None),
            User.available.is_(True),
            User.email != BOT_EMAIL,
        )
    ).all()
    return sorted(current_registry().online(list(ids))) if ids else []


def assign_waiting(rounds: int = MAX_ROUNDS, *, wait: bool = True) -> int:
    """Give waiting conversations to members with room, oldest first, until one or the
    other runs out (or `rounds` are given: a send that queued its room asks for one, as
    a send makes no member's place free). The number given. Never raises: what it
    misses, the sweep finds.

    `wait=False` (a send): when this process is already assigning, leave the room to
    the sweep (within a second) rather than queue behind it, so that a burst of new
    conversations never holds up the sends' acknowledgements."""
    try:
        if not auto_assign_on():
            return 0
        if not _turns.acquire(blocking=wait):
            return 0
        try:
            return _rounds(rounds)
        finally:
            _turns.release()
    except Exception:
        db.session.rollback()
        current_app.logger.exception("automatic assignment failed; the sweep tries again")
        return 0


def _rounds(rounds: int) -> int:
    # Who is online is asked once per call; each round's row locks check again that
    # they are active and available.
    members = candidates()
    db.session.rollback()
    given = 0
    while given < rounds and members:
        done = _assign_one(members)
        if done is None:
            break
        _announce(*done)
        given += 1
    return given


def _assign_one(members: list[int]) -> tuple[int, dict] | None:
    """One round in one transaction: the room given and its thread line, else None."""
    with transaction() as session:
        locked = session.scalars(
            select(User.id)
            .where(
                User.id.in_(members),
                User.deactivated_at.is_(None),
                User.available.is_(True),
            )
            .order_by(User.id)
            .with_for_update()
        ).all()
        if not locked:
            return None
        rooms = aliased(ChatRoom)
        load = func.count(rooms.id)
        member = session.execute(
            select(User.id, User.name)
            .outerjoin(rooms, (rooms.assignee_id == User.id) & (rooms.status == "open"))
            .where(User.id.in_(locked))
            .group_by(User.id, User.capacity, User.last_assigned_at)
            .having(load < _capacity())
            .order_by(load, User.last_assigned_at.asc().nulls_first(), User.id)
            .limit(1)
        ).one_or_none()
        if member is None:
            return None
        member_id = member.id
        waiting = (
            ChatRoom.queued_at.is_not(None),
            ChatRoom.assignee_id.is_(None),
            ChatRoom.status == "open",
        )
        oldest = (
            select(ChatRoom.id)
            .where(*waiting)
            .order_by(ChatRoom.queued_at, ChatRoom.id)
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        # The oldest waiting room, locked and given in one statement; the conditions
        # again outside, so a room changed while we waited for it is left alone.
        room = session.execute(
            update(ChatRoom)
            .where(ChatRoom.id == oldest, *waiting)
            .values(assignee_id=member_id, queued_at=None)
            .returning(ChatRoom.id, ChatRoom.status, ChatRoom.last_message_id)
            .execution_options(synchronize_session=False)
        ).one_or_none()
        if room is None:
            return None
        now = utcnow()
        session.execute(
            update(User)
            .where(User.id == member_id)
            .values(last_assigned_at=now)
            .execution_options(synchronize_session=False)
        )
        line = record_line(
            session,
            room.id,
            None,
            member_id,
            room.status,
            room.last_message_id,
            now,
            assignee=assignee_view(member_id, member.name),
        )
    return room.id, line


def record_line(
    session,
    room_id,
    actor,
    assignee_id,
    status,
    after_message_id,
    now,
    kind="assigned",
    assignee=False,
):
    event = RoomEvent(
        room_id=room_id,
        actor_id=actor.id if actor is not None else None,
        assignee_id=assignee_id,
        status=status,
        after_message_id=after_message_id,
        created_at=now,
        kind=kind,
    )
    session.add(event)
    session.flush()
    if assignee is False and assignee_id is None:
        assignee = None
    by = author_view(actor) if actor is not None else None
    return room_event_view(event, by=by, assignee=assignee)


def _announce(room_id: int, line: dict) -> None:
    view = admin_view_of_room(room_id)  # one statement, built once
    db.session.rollback()
    if view is not None:
        events.assigned(view, line)


def assign(user, data: object) -> dict:
    """Someone on the team assigns a conversation to a member (themselves included) or
    to nobody. The Room as the team sees it."""
    only_staff(user)
    form = parse(Assign, data)
    now = utcnow()
    with transaction() as session:
        room = access_room(user, form.room_id, lock=True)
        member = None
        if form.agent_id is not None:
            member = session.scalar(
                select(User)
                .where(
                    User.id == form.agent_id,
                    User.role.in_(STAFF_ROLES),
                    User.deactivated_at.is_(None),
                )
                # shared: a deactivation (or an assigner counting their load) waits
                .with_for_update(read=True)
            )
            if member is None:
                raise ValidationError(
                    "agent_id: not an active member of the team", {"agent_id": "unknown"}
                )
        before = room.assignee_id
        if before == form.agent_id:
            return room_summary("admin", room)  # nothing changes; nobody is told
        room.assignee = member  # the relationship, so the Room below names them
        room.queued_at = None
        line = record_line(
            session,
            room.id,
            user,
            form.agent_id,
            room.status,
            room.last_message_id,
            now,
            assignee=assignee_view(member.id, member.name) if member is not None else None,
        )
        session.flush()
        view = room_summary("admin", room)
    events.assigned(view, line)
    if before is not None:  # a place freed
        assign_waiting()
    return view


def release_rooms(member_id: int, reason: str) -> int:
    """Give a member's open conversations back to the queue (they were deactivated, or
    away or offline past the grace period). Each keeps its place by the time it goes
    back. The number given back."""
    now = utcnow()
    with transaction() as session:
        rooms = session.execute(
            select(ChatRoom.id, ChatRoom.status, ChatRoom.last_message_id)
            .where(ChatRoom.assignee_id == member_id, ChatRoom.status == "open")
            .order_by(ChatRoom.id)
            # waits for a send holding one (never skips it: a skipped room would stay
            # with someone deactivated); nothing here holds a user row, so no cycle
            .with_for_update()
        ).all()
        if reason == "deactivated":  # their resolved rooms, if reopened, wait for someone
            session.execute(
                update(ChatRoom)
                .where(ChatRoom.assignee_id == member_id, ChatRoom.status == "resolved")
                .values(assignee_id=None)
                .execution_options(synchronize_session=False)
            )
        lines = []
        for room in rooms:
            session.execute(
                update(ChatRoom)
                .where(ChatRoom.id == room.id)
                .values(assignee_id=None, queued_at=now)
                .execution_options(synchronize_session=False)
            )
            lines.append(
                (
                    room.id,
                    record_line(
                        session, room.id, None, None, room.status, room.last_message_id, now
                    ),
                )
            )
    for room_id, line in lines:
        _announce(room_id, line)
    if lines:
        current_app.logger.info(
            "%d conversations of member %s given back (%s)", len(lines), member_id, reason
        )
        assign_waiting()
    return len(lines)


# --- going away ----------------------------------------------------------------------


def schedule_release(member_id: int) -> None:
    """A member went away or offline: with CHAT_RELEASE_AFTER set, a job looks again
    after that many seconds and gives their conversations back if they still are."""
    delay = current_app.config["CHAT_RELEASE_AFTER"]
    jobs = current_app.extensions.get("chat_jobs")
    if not delay or jobs is None:
        return
    try:
        jobs.release_if_gone.schedule(args=(member_id,), delay=delay)
    except Exception:
        current_app.logger.exception("no release check queued for member %s", member_id)


def release_if_gone(member_id: int) -> str:
    """The job, when the grace period has passed: a member who is still away or still
    offline gives their conversations back. (One who came back and left again in
    between is judged by how they are now.)"""
    member = db.session.get(User, member_id)
    if member is None:
        return "gone"
    online = bool(current_registry().online([member_id]))
    db.session.rollback()
    if member.available and online:
        return "back"
    return f"released {release_rooms(member_id, reason='away')}"


def anyone_waiting() -> bool:
    """Whether a conversation waits for automatic assignment (one indexed look)."""
    waiting = db.session.scalar(
        select(
            select(ChatRoom.id)
            .where(
                ChatRoom.queued_at.is_not(None),
                ChatRoom.assignee_id.is_(None),
                ChatRoom.status == "open",
            )
            .exists()
        )
    )
    db.session.rollback()
    return bool(waiting)


def assign_if_waiting() -> int:
    """`assign_waiting` when a conversation waits: a member's socket opening, and the
    sweep's part (conversations left waiting because a process died between a send and
    its assignment, or nobody had room then)."""
    if not auto_assign_on() or not anyone_waiting():
        return 0
    return assign_waiting()


sweep_queue = assign_if_waiting
