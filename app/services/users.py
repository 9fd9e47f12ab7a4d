"""Accounts: sign-up, credentials, admins."""

from __future__ import annotations

import secrets
from functools import cache

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from ..errors import Conflict, Unauthorized
from ..extensions import db
from ..models import User
from .schemas import Login, Register, parse
from .transaction import transaction


@cache
def _dummy_hash() -> str:
    # Checked against when the email is unknown, so both failures take the same time.
    return generate_password_hash(secrets.token_hex(16))


def get_user_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == User.normalise_email(email)))


def register_user(data: object, role: str = "customer") -> User:
    """Create an account from `{"email", "password", "name"}`; `conflict` if the email is taken."""
    form = parse(Register, data)
    user = User(email=form.email, name=form.name, role=role)
    user.set_password(form.password)
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


def authenticate(data: object) -> User:
    """The user whose email and password these are, else `unauthorized`."""
    form = parse(Login, data)
    user = get_user_by_email(form.email)
    if user is None:
        check_password_hash(_dummy_hash(), form.password)
        raise Unauthorized("Wrong email or password.")
    if not user.check_password(form.password):
        raise Unauthorized("Wrong email or password.")
    return user
