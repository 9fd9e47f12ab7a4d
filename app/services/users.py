"""Accounts: sign-up, credentials, admins.

Hashing a password (scrypt, ~100 ms of CPU) runs on a real OS thread, never on the
thread that serves every socket (app/concurrency.py, `off_the_loop`).
"""

from __future__ import annotations

import secrets
from functools import cache

from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from ..concurrency import off_the_loop
from ..database import transaction
from ..errors import Conflict, Deactivated, Unauthorized
from ..extensions import db
from ..models import Attachment, ChatRoom, Message, RoomEvent, TokenFamily, User
from .schemas import Login, Register, parse


def hash_password(password: str) -> str:
    return off_the_loop(generate_password_hash, password)


def password_matches(password_hash: str, password: str) -> bool:
    return off_the_loop(check_password_hash, password_hash, password)


@cache
def _dummy_hash() -> str:
    # Checked against when the email is unknown, so both failures take the same time.
    return generate_password_hash(secrets.token_hex(16))


def get_user_by_email(email: str) -> User | None:
    """The account of ours (one with a password) with this email; a site's customers
    are not found by email (services/sites.py)."""
    return db.session.scalar(
        select(User).where(User.email == User.normalise_email(email), User.site_id.is_(None))
    )


def register_user(data: object, role: str = "customer") -> User:
    """Create an account from `{"email", "password", "name"}`; `conflict` if the email is taken."""
    form = parse(Register, data)
    user = User(email=form.email, name=form.name, role=role)
    user.password_hash = hash_password(form.password)
    try:
        with transaction() as session:
            if get_user_by_email(form.email) is not None:
                raise Conflict("That email is already registered.")
            session.add(user)
            session.flush()
    except IntegrityError:
        # Two sign-ups raced for the same email: the unique constraint decided.
        raise Conflict("That email is already registered.") from None
    return user


def delete_user(user_id: int) -> None:
    """Delete an account: every login session of it ends and its sockets close first
    (a socket keeps the identity it connected with, so it must not outlive the user)."""
    from .attachments import forget_keys
    from .tokens import end_all_sessions

    end_all_sessions(user_id)
    keys: list[str] = []
    with transaction() as session:
        user = session.get(User, user_id)
        if user is not None:
            # PostgreSQL's foreign keys would cascade; SQLite enforces none unless asked
            # (and asking would make its table-copying migrations delete rows), so each
            # table's rows go by name, children first. Their files, and every file in
            # their conversation (the team's too), are found by the statement that
            # deletes them: a file sent meanwhile is not left behind.
            rooms = select(ChatRoom.id).where(ChatRoom.customer_id == user_id)
            in_rooms = select(Message.id).where(Message.room_id.in_(rooms))
            files = session.execute(
                delete(Attachment)
                .where(or_(Attachment.uploader_id == user_id, Attachment.message_id.in_(in_rooms)))
                .returning(Attachment.key, Attachment.thumbnail_key)
            ).all()
            keys = [key for row in files for key in row if key is not None]
            session.execute(delete(RoomEvent).where(RoomEvent.room_id.in_(rooms)))
            session.execute(
                delete(Message).where(or_(Message.room_id.in_(rooms), Message.author_id == user_id))
            )
            session.execute(delete(ChatRoom).where(ChatRoom.customer_id == user_id))
            session.execute(delete(TokenFamily).where(TokenFamily.user_id == user_id))
            session.delete(user)
    forget_keys(keys)


def authenticate(data: object) -> User:
    """The user whose email and password these are, else `unauthorized`."""
    form = parse(Login, data)
    user = get_user_by_email(form.email)
    if user is not None:
        db.session.expunge(user)  # keeps its loaded fields through the rollback below
    stored = user.password_hash if user is not None else off_the_loop(_dummy_hash)
    db.session.rollback()  # no pooled connection is held while the hash is checked
    if not password_matches(stored, form.password) or user is None:
        raise Unauthorized("Wrong email or password.")
    if user.deactivated_at is not None:  # told only to whoever knows the password
        raise Deactivated()
    return user
