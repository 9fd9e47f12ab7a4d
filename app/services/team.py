"""The support team: its members (admins and agents), invitations, deactivation and
each member's availability.

Admins manage the team (invite, change roles and capacity, deactivate); every member
sets their own availability. The last active admin can be neither demoted nor
deactivated: the check and the change run under a lock on every admin's row, so two
admins demoting each other at once cannot both succeed.

An invitation's token is shown once (in the link) and kept only as its SHA-256; the
first acceptance spends it, in the same transaction that makes the account.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Annotated, Literal

from flask import current_app, render_template
from flask_babel import force_locale, gettext
from pydantic import AfterValidator, Field, StrictBool, StrictInt
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from ..database import transaction
from ..errors import Conflict, Forbidden, NotFound, ValidationError
from ..extensions import db
from ..models import STAFF_ROLES, ChatRoom, StaffInvitation, User, utcnow
from ..registry import current_registry
from . import events
from .payloads import iso
from .schemas import Payload, Text, email_address, name_rule, parse, password_rule

INVITE_LIFETIME = timedelta(days=7)
MAX_CAPACITY = 1000


class Invite(Payload):
    email: Annotated[Text, Field(max_length=254), AfterValidator(email_address)]
    name: Annotated[Text, Field(max_length=100)] | None = None
    role: Literal["agent", "admin"]


class AcceptInvite(Payload):
    token: Annotated[Text, Field(min_length=1, max_length=200)]
    name: Annotated[Text, Field(max_length=100), AfterValidator(name_rule)]
    password: Annotated[Text, Field(max_length=1024), AfterValidator(password_rule)]


class ChangeMember(Payload):
    role: Literal["agent", "admin"] | None = None
    active: StrictBool | None = None
    # null: back to the team's default (CHAT_AGENT_CAPACITY)
    capacity: Annotated[StrictInt, Field(ge=0, le=MAX_CAPACITY)] | None = None


class SetAvailability(Payload):
    available: StrictBool


def only_admins(user) -> None:
    if not user.is_admin:
        raise Forbidden("Only the team's admins manage the team.")


def only_staff(user) -> None:
    if not user.is_staff:
        raise Forbidden("Only the support team does that.")


def members_query():
    """The team: every admin and agent, the automatic reply's bot left out."""
    from .availability import BOT_EMAIL

    return select(User).where(User.role.in_(STAFF_ROLES), User.email != BOT_EMAIL)


def default_capacity() -> int:
    return current_app.config["CHAT_AGENT_CAPACITY"]


def open_counts(user_ids: list[int]) -> dict[int, int]:
    """How many open conversations each member has assigned."""
    if not user_ids:
        return {}
    rows = db.session.execute(
        select(ChatRoom.assignee_id, func.count())
        .where(ChatRoom.assignee_id.in_(user_ids), ChatRoom.status == "open")
        .group_by(ChatRoom.assignee_id)
    ).all()
    return dict(rows)


def member_view(member: User, online: bool, open_count: int, *, with_email: bool) -> dict:
    """The contract's StaffMember. Emails only for admins' eyes."""
    view = {
        "id": member.id,
        "name": member.name,
        "role": member.role,
        "active": member.deactivated_at is None,
        "available": member.available,
        "online": online,
        "capacity": member.capacity,
        "effective_capacity": default_capacity() if member.capacity is None else member.capacity,
        "open_count": open_count,
    }
    if with_email:
        view["email"] = member.email
    return view


def views_of(members: list[User], *, with_email: bool) -> list[dict]:
    ids = [m.id for m in members]
    online = current_registry().online(ids)
    counts = open_counts(ids)
    return [
        member_view(m, m.id in online, counts.get(m.id, 0), with_email=with_email) for m in members
    ]


def list_staff(user) -> list[dict]:
    """Every member of the team, active first, then by name. Admins see emails."""
    only_staff(user)
    members = db.session.scalars(
        members_query().order_by(User.deactivated_at.is_not(None), User.name, User.id)
    ).all()
    return views_of(list(members), with_email=user.is_admin)


def announce(member_id: int) -> None:
    """Tell every staff socket how one member stands now (the Team page, the assign
    menus). Customers never hear it."""
    member = db.session.get(User, member_id, populate_existing=True)
    if member is not None and member.is_staff:
        events.staff_changed(views_of([member], with_email=False)[0])


# --- invitations ---------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invite(user, data: object) -> dict:
    """An admin invites someone: `{invite_url, expires_at}`. The link is also emailed."""
    only_admins(user)
    form = parse(Invite, data)
    email = form.email  # the same rule as sign-up: trimmed, lower-case
    taken = db.session.scalar(select(User.id).where(User.email == email, User.site_id.is_(None)))
    if taken is not None:
        raise Conflict("That email already has an account.", field="email")
    token = secrets.token_urlsafe(32)
    expires = utcnow() + INVITE_LIFETIME
    name = form.name.strip() if form.name and form.name.strip() else None
    with transaction() as session:
        invitation = StaffInvitation(
            token_hash=_token_hash(token),
            email=email,
            name=name,
            role=form.role,
            invited_by=user.id,
            expires_at=expires,
        )
        session.add(invitation)
        session.flush()
        invitation_id = invitation.id
    url = invite_url(token)
    jobs = current_app.extensions.get("chat_jobs")
    if jobs is not None:
        try:
            jobs.send_invite(invitation_id, url, getattr(user, "locale", None) or "en")
        except Exception:  # the admin still has the link to hand over
            current_app.logger.exception("invitation %s not queued for email", invitation_id)
    return {"invite_url": url, "expires_at": iso(expires), "emailed": jobs is not None}


def invite_url(token: str) -> str:
    return f"{current_app.config['PUBLIC_URL']}/invite/{token}"


def find_invitation(token: str) -> StaffInvitation | None:
    """The invitation a link's token names, if it can still be accepted."""
    return db.session.scalar(
        select(StaffInvitation).where(
            StaffInvitation.token_hash == _token_hash(token),
            StaffInvitation.accepted_at.is_(None),
            StaffInvitation.expires_at > utcnow(),
        )
    )


def accept_invite(data: object) -> User:
    """Spend an invitation's token for a new staff account with this name and password.
    `not_found` for a token that is unknown, spent or expired; `conflict` when its email
    got an account meanwhile."""
    from .users import hash_password

    form = parse(AcceptInvite, data)
    password_hash = hash_password(form.password)  # off the event loop
    now = utcnow()
    try:
        with transaction() as session:
            spent = session.execute(
                update(StaffInvitation)
                .where(
                    StaffInvitation.token_hash == _token_hash(form.token),
                    StaffInvitation.accepted_at.is_(None),
                    StaffInvitation.expires_at > now,
                )
                .values(accepted_at=now)
                .returning(StaffInvitation.email, StaffInvitation.role)
                .execution_options(synchronize_session=False)
            ).one_or_none()
            if spent is None:
                raise NotFound("This invitation has been used or has expired. Ask for a new one.")
            email, role = spent
            if session.scalar(select(User.id).where(User.email == email, User.site_id.is_(None))):
                raise Conflict("That email already has an account. Log in instead.", field="email")
            member = User(email=email, name=form.name, role=role, password_hash=password_hash)
            session.add(member)
            session.flush()
    except IntegrityError:  # an account for the email was made at the same moment
        raise Conflict(
            "That email already has an account. Log in instead.", field="email"
        ) from None
    announce(member.id)
    return member


def compose_invite(invitation: StaffInvitation, url: str, language: str) -> EmailMessage:
    config = current_app.config
    inviter = db.session.get(User, invitation.invited_by) if invitation.invited_by else None
    with force_locale(language):
        subject = gettext("You are invited to the support team")
        context = {
            "url": url,
            "name": invitation.name,
            "inviter": inviter.name if inviter else None,
            "role": invitation.role,
            "expires": invitation.expires_at,
            "lang": language,
            "subject": subject,
        }
        text = render_template("email/invite.txt", **context)
        html = render_template("email/invite.html", **context)
    email = EmailMessage()
    name, sender = parseaddr(config["MAIL_FROM"])
    email["From"] = str(Address(name, addr_spec=sender))
    email["To"] = str(Address(invitation.name or "", addr_spec=invitation.email))
    email["Subject"] = subject
    email["Date"] = format_datetime(utcnow())
    domain = sender.rpartition("@")[2] or "localhost"
    email["Message-ID"] = f"<invite-{invitation.id}@{domain}>"
    email["Auto-Submitted"] = "auto-generated"
    email.set_content(text)
    email.add_alternative(html, subtype="html")
    email["Content-Language"] = language
    return email


def send_invite(invitation_id: int, url: str, language: str) -> str:
    """The invitation's email (a job: retried while SMTP is away)."""
    from ..mail import MailRefused, deliver

    invitation = db.session.get(StaffInvitation, invitation_id)
    if invitation is None or invitation.accepted_at is not None:
        return "gone"
    email = compose_invite(invitation, url, language if language in ("en", "ko") else "en")
    db.session.rollback()
    try:
        deliver(current_app.config, email)
    except MailRefused:
        current_app.logger.warning("invitation %s refused by the mail server", invitation_id)
        return "refused"
    return "sent"


# --- members -------------------------------------------------------------------------


def change_member(user, member_id: int, data: object) -> dict:
    """An admin changes a member's role, capacity, or whether they are active."""
    from .assignment import release_rooms
    from .tokens import end_all_sessions

    only_admins(user)
    form = parse(ChangeMember, data)
    fields = form.model_fields_set
    if not fields & {"role", "active", "capacity"}:
        raise ValidationError("Say what to change: role, active or capacity.", {"payload": "empty"})
    if "role" in fields and form.role is None:
        raise ValidationError("role: must be agent or admin", {"role": "null"})
    if "active" in fields and form.active is None:
        raise ValidationError("active: must be true or false", {"active": "null"})
    deactivating = role_changed = False
    with transaction() as session:
        # Every active admin's row and the member's, locked by one statement in id
        # order (the order automatic assignment locks in, so neither waits on the
        # other in a circle): the last-admin rule holds under races.
        locked = session.scalars(
            members_query()
            .where(
                ((User.role == "admin") & User.deactivated_at.is_(None)) | (User.id == member_id)
            )
            .order_by(User.id)
            .with_for_update()
        ).all()
        member = next((m for m in locked if m.id == member_id), None)
        if member is None:
            raise NotFound("No such member of the team.")
        admins = [m for m in locked if m.role == "admin" and m.deactivated_at is None]
        loses_admin = (
            member.role == "admin"
            and member.deactivated_at is None
            and (("role" in fields and form.role != "admin") or form.active is False)
        )
        if loses_admin and len(admins) <= 1:
            raise Conflict("The team needs at least one active admin.", field="role")
        if "role" in fields and member.role != form.role:
            member.role = form.role
            role_changed = True
        if "capacity" in fields:
            member.capacity = form.capacity
        if form.active is False and member.deactivated_at is None:
            member.deactivated_at = utcnow()
            deactivating = True
        elif form.active is True:
            member.deactivated_at = None
    if deactivating or role_changed:
        # Their open sockets hold the role they connected with: a new role takes effect
        # at their next login (refused tokens, closed sockets), never on an old socket.
        end_all_sessions(member_id)
    if deactivating:
        release_rooms(member_id, reason="deactivated")
    announce(member_id)
    return views_of([db.session.get(User, member_id, populate_existing=True)], with_email=True)[0]


def set_availability(user, data: object) -> dict:
    """A member says they are available or away."""
    from .assignment import assign_waiting, schedule_release

    only_staff(user)
    form = parse(SetAvailability, data)
    with transaction() as session:
        session.execute(
            update(User)
            .where(User.id == user.id)
            .values(available=form.available)
            .execution_options(synchronize_session=False)
        )
    announce(user.id)
    if form.available:
        assign_waiting()
    else:
        schedule_release(user.id)
    return {"available": form.available}
