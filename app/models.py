"""The chat's tables: the business's sites, users, their rooms, the messages in them,
the team's saved replies and login sessions.

Models are passive: no commits, emits or queues here. Times are stored in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.expression import false as sa_false

from .extensions import db

# The support team's roles; every other user is a customer.
STAFF_ROLES = ("admin", "agent")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Site(db.Model):
    """A business's site that embeds the widget and vouches for its own logged-in users
    with identities it signs (HS256) with `secret` (services/sites.py)."""

    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(40), unique=True)  # public, in the snippet
    name: Mapped[str] = mapped_column(String(100))
    # Kept as it is: it must verify signatures. Shown once, when made or rotated.
    secret: Mapped[str] = mapped_column(String(64))
    # The origins that may frame the widget, space-separated ("https://shop.example").
    origins: Mapped[str] = mapped_column(Text)
    login_url: Mapped[str | None] = mapped_column(String(2048), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # A removed site keeps its row (its customers' conversations name it) and refuses
    # every identity.
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)

    @property
    def origin_list(self) -> list[str]:
        return self.origins.split()

    def __repr__(self) -> str:
        return f"<Site {self.id} {self.key}>"


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored normalised (trimmed, lower-case). Unique among the accounts of ours (those
    # with a password); a site's customers are keyed by (site, their id on the site),
    # and their email is what the site says.
    email: Mapped[str] = mapped_column(String(254))
    name: Mapped[str] = mapped_column(String(100))
    # Werkzeug's scrypt with a random salt, made and checked by services/users.py.
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="customer")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # When the user's last socket closed (services/presence.py); None: never, or online.
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # A customer who came through a site's widget: the site, and its `sub` for them.
    # They have no password of ours (`password_hash` is "!", which matches nothing).
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id"), default=None)
    external_id: Mapped[str | None] = mapped_column(String(255), default=None)
    # The language emails to them are written in ("en", "ko"): the one their last
    # login or sign-up was made in. None: English.
    locale: Mapped[str | None] = mapped_column(String(8), default=None)
    # When they unsubscribed from emails about their conversation (None: they get them).
    emails_off_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # An agent's choice: no email when customers wait while no agent is online.
    alert_emails_off: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    # Staff only (services/team.py). A deactivated member cannot log in, and their
    # sessions ended when they were deactivated; their messages keep their name.
    deactivated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # Available (or away), as the member says: only an available, online member is
    # given conversations automatically.
    available: Mapped[bool] = mapped_column(default=True, server_default=text("true"))
    # How many open conversations automatic assignment gives them at most; None: the
    # team's default (CHAT_AGENT_CAPACITY).
    capacity: Mapped[int | None] = mapped_column(default=None)
    # When automatic assignment last gave them a conversation: ties go to whoever
    # waited longest (round-robin).
    last_assigned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)

    site: Mapped[Site | None] = relationship(lazy="select")

    __table_args__ = (
        CheckConstraint("role IN ('customer', 'agent', 'admin')", name="role"),
        CheckConstraint("(site_id IS NULL) = (external_id IS NULL)", name="site_identity_complete"),
        Index(
            "uq_users_email",
            "email",
            unique=True,
            sqlite_where=text("site_id IS NULL"),
            postgresql_where=text("site_id IS NULL"),
        ),
        UniqueConstraint("site_id", "external_id", name="uq_users_site_external"),
        # The inbox's search matches a fragment anywhere in the name or email
        # (the inbox query): trigram indexes on PostgreSQL (pg_trgm), plain ones on
        # SQLite, where they only keep the schema the same.
        Index(
            "ix_users_name_trgm",
            "name",
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops"},
        ),
        Index(
            "ix_users_email_trgm",
            "email",
            postgresql_using="gin",
            postgresql_ops={"email": "gin_trgm_ops"},
        ),
    )

    @staticmethod
    def normalise_email(email: str) -> str:
        return email.strip().lower()

    @property
    def is_admin(self) -> bool:
        """Manages the team, the sites, business hours and saved replies."""
        return self.role == "admin"

    @property
    def is_staff(self) -> bool:
        """Answers customers: an admin or an agent (STAFF_ROLES)."""
        return self.role in STAFF_ROLES

    def __repr__(self) -> str:
        return f"<User {self.id} {self.role}>"


class ChatRoom(db.Model):
    __tablename__ = "chat_rooms"

    id: Mapped[int] = mapped_column(primary_key=True)
    # unique: a customer owns at most one room, and the database says so.
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), unique=True
    )
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The last message's time, else the creation time: what the inbox sorts by.
    last_activity_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Read marks: the highest message id each side has read (one mark for all admins).
    customer_read_id: Mapped[int | None] = mapped_column(default=None)
    admin_read_id: Mapped[int | None] = mapped_column(default=None)
    # Kept up by every send and read mark (services/messages.py, activity.py), so a
    # room's summary needs no count(*) or max(id): the last message, and how many
    # messages each side has not read (the admins' count is the customer's messages
    # after the admins' mark, and the other way round).
    last_message_id: Mapped[int | None] = mapped_column(default=None)
    admin_unread: Mapped[int] = mapped_column(default=0, server_default="0")
    customer_unread: Mapped[int] = mapped_column(default=0, server_default="0")
    # Emails to the customer (services/notify.py): the last message an email covered,
    # and until when a job has claimed the room to send the next one (a job killed
    # mid-send leaves the claim to run out; another job then sends).
    emailed_through_id: Mapped[int | None] = mapped_column(default=None)
    email_claimed_until: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), default=None
    )
    # The same for the agents' alert: the last customer message an alert covered, and
    # the claim of the job sending it.
    agents_alerted_through_id: Mapped[int | None] = mapped_column(default=None)
    agents_claimed_until: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), default=None
    )
    # The staff member the conversation is assigned to (services/assignment.py).
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    # Set while the room waits in the queue for automatic assignment: since when (made,
    # reopened or given back). Oldest first; None: not waiting.
    queued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)

    customer: Mapped[User] = relationship(lazy="joined", innerjoin=True, foreign_keys=[customer_id])
    assignee: Mapped[User | None] = relationship(lazy="joined", foreign_keys=[assignee_id])

    __table_args__ = (
        CheckConstraint("status IN ('open', 'resolved')", name="status"),
        Index("ix_chat_rooms_activity", "last_activity_at", "id"),
        # Each member's open conversations (their load, the Mine view).
        Index("ix_chat_rooms_assignee_status", "assignee_id", "status"),
        Index(
            "ix_chat_rooms_queued_at",
            "queued_at",
            "id",
            sqlite_where=text("queued_at IS NOT NULL"),
            postgresql_where=text("queued_at IS NOT NULL"),
        ),
    )

    def __repr__(self) -> str:
        return f"<ChatRoom {self.id} of user {self.customer_id}>"


class Message(db.Model):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("chat_rooms.id", ondelete="CASCADE"))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    body: Mapped[str] = mapped_column(Text)
    client_id: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # An internal note: written by an admin for the team, never shown to the customer
    # (not sent to their sockets, not in their history, not in their room's counters).
    internal: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    # How many files the message carries (the Attachment rows name it): a page of
    # history reads attachments only when one of its messages has any.
    attachment_count: Mapped[int] = mapped_column(default=0, server_default="0")

    author: Mapped[User] = relationship(lazy="joined", innerjoin=True)

    __table_args__ = (
        # History pages and "last message of a room" walk this index.
        Index("ix_messages_room_id_id", "room_id", "id"),
        UniqueConstraint("author_id", "client_id", name="uq_messages_author_client_id"),
        # The inbox's search through message text (services/search.py): full-text, on
        # PostgreSQL only. SQLite has no such index and searches with LIKE.
        Index(
            "ix_messages_body_fts",
            text("to_tsvector('simple'::regconfig, body)"),
            postgresql_using="gin",
        ).ddl_if(dialect="postgresql"),
    )

    def __repr__(self) -> str:
        return f"<Message {self.id} in room {self.room_id}>"


class Attachment(db.Model):
    """A file a user uploaded: theirs alone until a message carries it, then anyone's
    who may see that message. The bytes live in the attachment store under `key` (and
    `thumbnail_key`), never under a name the client chose."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    uploader_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), default=None, index=True
    )
    name: Mapped[str] = mapped_column(String(255))  # cleaned: no path, no controls
    content_type: Mapped[str] = mapped_column(String(100))  # judged from the bytes
    size: Mapped[int] = mapped_column()
    kind: Mapped[str] = mapped_column(String(8))  # "image" (re-encoded) or "file"
    width: Mapped[int | None] = mapped_column(default=None)
    height: Mapped[int | None] = mapped_column(default=None)
    position: Mapped[int | None] = mapped_column(default=None)  # its place in the message
    key: Mapped[str] = mapped_column(String(64), unique=True)
    thumbnail_key: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    def __repr__(self) -> str:
        return f"<Attachment {self.id} {self.kind} of user {self.uploader_id}>"


class RoomEvent(db.Model):
    """A line in the team's view of a conversation that is not a message: a room resolved
    or reopened, by whom. Placed in the thread after the message `after_message_id`
    (the newest of the room when it happened; None before the first)."""

    __tablename__ = "room_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("chat_rooms.id", ondelete="CASCADE"))
    actor_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    status: Mapped[str] = mapped_column(String(16))  # the room's status after the change
    after_message_id: Mapped[int | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # "status": resolved or reopened; "assigned": the assignee changed (to `assignee`,
    # or to nobody); "reply_anyway": the actor answered while `assignee` was assigned.
    kind: Mapped[str] = mapped_column(String(16), default="status", server_default="status")
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )

    actor: Mapped[User | None] = relationship(lazy="joined", foreign_keys=[actor_id])
    assignee: Mapped[User | None] = relationship(lazy="joined", foreign_keys=[assignee_id])

    __table_args__ = (Index("ix_room_events_room_id_after", "room_id", "after_message_id"),)

    def __repr__(self) -> str:
        return f"<RoomEvent {self.id} in room {self.room_id}: {self.status}>"


class CannedReply(db.Model):
    """A saved answer the support team shares, inserted with `/shortcut` in the inbox."""

    __tablename__ = "canned_replies"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Lower-case letters, digits, - and _ (services/canned.py): what follows the `/`.
    shortcut: Mapped[str] = mapped_column(String(32), unique=True)
    body: Mapped[str] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    def __repr__(self) -> str:
        return f"<CannedReply {self.id} /{self.shortcut}>"


class TokenFamily(db.Model):
    """One login session: its refresh tokens rotate, and every token minted in it
    names the family (`fam`). Revoking the family ends all of them at once."""

    __tablename__ = "token_families"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # The one refresh token of the family that may still be used; any other is spent.
    refresh_jti: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # When the current refresh token expires; past it the row can be deleted.
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    # Indexed: each server process looks once a second for sessions ended elsewhere.
    revoked_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), default=None, index=True
    )

    def __repr__(self) -> str:
        return f"<TokenFamily {self.id} of user {self.user_id}>"


class StaffInvitation(db.Model):
    """An admin's invitation to join the team: the link's token is kept only as its
    SHA-256, and is spent by the first acceptance (services/team.py)."""

    __tablename__ = "staff_invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(254))
    name: Mapped[str | None] = mapped_column(String(100), default=None)
    role: Mapped[str] = mapped_column(String(16))
    invited_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)

    __table_args__ = (CheckConstraint("role IN ('agent', 'admin')", name="role"),)


class TeamSetting(db.Model):
    """The team's settings, one JSON value per key: business hours and the away
    message (services/availability.py)."""

    __tablename__ = "team_settings"

    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(Text)  # JSON
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
