"""Declared shapes of every client payload, checked with pydantic.

`parse(Model, data)` turns anything a client sent into a validated model or raises the
contract's `validation_error` with a short, human message (never pydantic's internals).
Unknown keys are ignored, so newer clients keep working with this server.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    field_validator,
)
from pydantic import ValidationError as PydanticError

from ..errors import ValidationError


def _no_nul(value: str) -> str:
    # PostgreSQL cannot store NUL in text; refusing it everywhere keeps every field alike.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


# The one string type of every field a client sends: a JSON string, never NUL.
Text = Annotated[StrictStr, AfterValidator(_no_nul)]
MAX_BODY = 4000
MAX_ID = 2**31 - 1  # ids are 32-bit integers in the database
Id = Annotated[StrictInt, Field(ge=1, le=MAX_ID)]
Cursor = Annotated[StrictInt, Field(ge=0, le=MAX_ID)]
Limit = Annotated[StrictInt, Field(ge=1, le=200)]


def _body(value: str) -> str:
    value = value.strip()
    if not 1 <= len(value) <= MAX_BODY:
        raise ValueError(f"must be 1 to {MAX_BODY} characters after trimming")
    return value


# A message's or a saved reply's text: trimmed, then 1 to MAX_BODY characters.
Body = Annotated[Text, AfterValidator(_body)]


class Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class IdentityExchange(Payload):
    """`POST /api/widget/session`: a site's key and an identity it signed."""

    site_key: Annotated[Text, Field(min_length=1, max_length=40)]
    identity: Annotated[Text, Field(min_length=1, max_length=8192)]


def _body_or_empty(value: str) -> str:
    value = value.strip()
    if len(value) > MAX_BODY:
        raise ValueError(f"must be 1 to {MAX_BODY} characters after trimming")
    return value


def _distinct(ids: list[int]) -> list[int]:
    if len(set(ids)) != len(ids):
        raise ValueError("names a file twice")
    return ids


MAX_ATTACHMENTS = 10


class SendMessage(Payload):
    # Empty only with files (services/messages.py checks that).
    body: Annotated[Text, AfterValidator(_body_or_empty)]
    attachments: Annotated[
        list[Id], Field(max_length=MAX_ATTACHMENTS), AfterValidator(_distinct)
    ] = []
    room_id: Id | None = None
    client_id: Annotated[Text, Field(min_length=1, max_length=64)] | None = None
    internal: StrictBool = False  # an internal note: admins only, never seen by the customer
    # the team member was told someone else has the conversation and answers anyway:
    # the thread records it (issue 23)
    reply_anyway: StrictBool = False


class ListRooms(Payload):
    status: Literal["open", "resolved"] | None = None
    # The team's views: their own conversations, nobody's, or all (customers: ignored).
    view: Literal["mine", "unassigned", "all"] = "all"
    q: Annotated[Text, Field(max_length=200)] | None = None
    limit: Annotated[StrictInt, Field(ge=1, le=100)] = 50
    before: Annotated[Text, Field(max_length=200)] | None = None
    unread: StrictBool = False  # only rooms with messages the caller's side has not read


class RoomRef(Payload):
    room_id: Id


class History(Payload):
    room_id: Id
    before_id: Cursor | None = None
    after_id: Cursor | None = None
    limit: Limit = 50


class MarkRead(Payload):
    room_id: Id
    message_id: Id


class Typing(Payload):
    room_id: Id
    is_typing: StrictBool


class SetStatus(Payload):
    room_id: Id
    status: Literal["open", "resolved"]


class CannedRef(Payload):
    id: Id


SHORTCUT = r"^[a-z0-9][a-z0-9_-]{0,31}$"


class AddSite(Payload):
    """`add_site` (admins): a business's site, from the inbox's settings."""

    name: Annotated[Text, Field(max_length=200)]
    origins: Annotated[list[Annotated[Text, Field(max_length=300)]], Field(max_length=20)]
    login_url: Annotated[Text, Field(max_length=2048)] | None = None


class SiteRef(Payload):
    site_key: Annotated[Text, Field(min_length=1, max_length=40)]


class SaveCanned(Payload):
    id: Id | None = None
    shortcut: Text
    body: Body

    @field_validator("shortcut")
    @classmethod
    def clean_shortcut(cls, value: str) -> str:
        value = value.strip().removeprefix("/").lower()
        if not re.match(SHORTCUT, value):
            raise ValueError(
                "use 1 to 32 letters, digits, - or _ (starting with a letter or digit)"
            )
        return value


def email_address(value: str) -> str:
    """An email address as accounts keep it (trimmed, lower-case), else ValueError."""
    value = value.strip().lower()
    local, _, domain = value.partition("@")
    if not local or "." not in domain or any(c.isspace() for c in value) or "@" in domain:
        raise ValueError("is not an email address")
    return value


def password_rule(value: str) -> str:
    if len(value) < 8:
        raise ValueError("must be at least 8 characters")
    return value


def name_rule(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    return value


class Register(Payload):
    email: Annotated[Text, Field(max_length=254)]
    password: Annotated[Text, Field(max_length=1024)]
    name: Annotated[Text, Field(max_length=100)]

    @field_validator("email")
    @classmethod
    def check_email(cls, value: str) -> str:
        return email_address(value)

    @field_validator("password")
    @classmethod
    def check_password(cls, value: str) -> str:
        return password_rule(value)

    @field_validator("name")
    @classmethod
    def check_name(cls, value: str) -> str:
        return name_rule(value)


class Login(Payload):
    email: Annotated[Text, Field(max_length=254)]
    password: Annotated[Text, Field(max_length=1024)]


P = TypeVar("P", bound=Payload)


def parse(model: type[P], data: object) -> P:
    """Validate `data` (any JSON a client sent) against `model`."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValidationError("The payload must be a JSON object.")
    try:
        return model.model_validate(data)
    except PydanticError as exc:
        fields = field_errors(exc)
        field, message = next(iter(fields.items()))
        raise ValidationError(f"{field}: {message}", fields=fields) from None


def field_errors(exc: PydanticError) -> dict[str, str]:
    """Each failing field's first rule, in the order pydantic checked them."""
    fields: dict[str, str] = {}
    for error in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in error["loc"]) or "payload"
        message = error["msg"].removeprefix("Value error, ")
        fields.setdefault(field, message)
    return fields
