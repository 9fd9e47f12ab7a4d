"""Canned replies: the support team's shared, saved answers (admins only).

An agent types `/` and a shortcut in the composer to insert one. The list is small and
shared by the whole team, so every change is announced to every admin socket with the
whole list (`canned_replies`), and each page keeps it current without asking.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ..database import transaction
from ..errors import Conflict, Forbidden, NotFound, ValidationError
from ..extensions import db
from ..models import CannedReply, User, utcnow
from . import events
from .schemas import CannedRef, SaveCanned, parse

MAX_REPLIES = 500  # a team's list, not a knowledge base


def _only_staff(user: User) -> None:
    if not user.is_staff:
        raise Forbidden("Saved replies are for the support team.")


def _only_admins(user: User) -> None:
    if not user.is_admin:
        raise Forbidden("Only the team's admins change saved replies.")


def canned_view(reply: CannedReply) -> dict:
    return {"id": reply.id, "shortcut": reply.shortcut, "body": reply.body}


def all_replies() -> list[dict]:
    query = select(CannedReply).order_by(CannedReply.shortcut)
    return [canned_view(r) for r in db.session.scalars(query)]


def list_canned(user: User, data: object) -> list[dict]:
    _only_staff(user)
    return all_replies()


def save_canned(user: User, data: object) -> dict:
    """Add a reply, or change one (`id`); a shortcut another reply has is a `conflict`."""
    _only_admins(user)
    form = parse(SaveCanned, data)
    try:
        with transaction() as session:
            if form.id is None:
                if session.scalar(select(func.count()).select_from(CannedReply)) >= MAX_REPLIES:
                    raise ValidationError(
                        f"A team keeps at most {MAX_REPLIES} saved replies.",
                        {"replies": f"at most {MAX_REPLIES}"},
                    )
                reply = CannedReply(created_by=user.id)
                session.add(reply)
            else:
                reply = session.get(CannedReply, form.id, with_for_update=True)
                if reply is None:
                    raise NotFound("No such saved reply.")
            reply.shortcut, reply.body, reply.updated_at = form.shortcut, form.body, utcnow()
            session.flush()
            saved = canned_view(reply)
    except IntegrityError:
        raise Conflict(
            f"shortcut: /{form.shortcut} is taken; choose another.", field="shortcut"
        ) from None
    events.canned_replies(all_replies())
    return saved


def delete_canned(user: User, data: object) -> None:
    _only_admins(user)
    form = parse(CannedRef, data)
    with transaction() as session:
        reply = session.get(CannedReply, form.id)
        if reply is None:
            raise NotFound("No such saved reply.")
        session.delete(reply)
    events.canned_replies(all_replies())
