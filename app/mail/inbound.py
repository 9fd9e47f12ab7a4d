"""Customers answer by email: this project's own SMTP listener (aiosmtpd), run by
`flask --app wsgi mail-inbound --host H --port P`.

Each email to a customer has `Reply-To: reply+<room>-<hmac>@MAIL_INBOUND_DOMAIN`. A
mail to such an address is posted in that room as the customer's message when, and
only when:

- the address names a room and its HMAC under SECRET_KEY is right;
- `From` is that room's customer's address (the token alone is not enough: a forwarded
  email carries it);
- it is not written by a robot (`Auto-Submitted` other than `no`, `Precedence: bulk`,
  `junk`, `list` or `auto_reply`, auto-responder headers, a delivery report, or a null
  envelope sender): those are taken and dropped, so two robots never loop;
- it is within the size limit (the SMTP SIZE extension, checked while it arrives) and
  the room's rate (CHAT_INBOUND_RATE_LIMIT).

Everything refused is logged with its reason and never posted. The text is the reply
alone: quoted history, headers and signatures are cut by mail-parser-reply (English
and Korean). Files become attachments through the same checks as uploads.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses
from html.parser import HTMLParser

from flask import current_app

log = logging.getLogger("chat.mail.inbound")

ROBOT_PRECEDENCE = {"bulk", "junk", "list", "auto_reply"}
ROBOT_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress")
ADDRESS = re.compile(r"^reply\+(\d{1,18})-([0-9a-f]{20})@(.+)$")


@dataclass
class Verdict:
    """What became of one email: "posted", "dropped" (a robot's, taken silently) or
    "refused", with the reason, and the SMTP answer to give."""

    result: str
    reason: str
    smtp: str
    message_id: int | None = None


def token_of(room_id: int, secret: str) -> str:
    mac = hmac.new(secret.encode(), f"reply:{room_id}".encode(), hashlib.sha256)
    return mac.hexdigest()[:20]


def room_of_address(address: str) -> int | None:
    """The room a reply address names, if its HMAC is right and its domain is ours."""
    match = ADDRESS.match(address.strip().lower())
    if match is None:
        return None
    room, mac, domain = match.groups()
    if domain != (current_app.config["MAIL_INBOUND_DOMAIN"] or "").lower():
        return None
    good = token_of(int(room), current_app.config["SECRET_KEY"])
    return int(room) if hmac.compare_digest(mac, good) else None


def is_robot(message: EmailMessage, envelope_from: str) -> str | None:
    """Why a robot wrote this, or None."""
    if not envelope_from or envelope_from == "<>":
        return "a null envelope sender (a bounce)"
    auto = (message.get("Auto-Submitted") or "no").strip().lower()
    if auto != "no":
        return f"Auto-Submitted: {auto}"
    precedence = (message.get("Precedence") or "").strip().lower()
    if precedence in ROBOT_PRECEDENCE:
        return f"Precedence: {precedence}"
    for header in ROBOT_HEADERS:
        if message.get(header) is not None:
            return f"{header} is present"
    if message.get_content_type() == "multipart/report":
        return "a delivery or read report"
    return None


def receive(raw: bytes, envelope_from: str, recipients: list[str]) -> Verdict:
    """Judge and post one email (in an app context)."""
    from ..extensions import db
    from ..models import ChatRoom

    message = BytesParser(policy=policy.default).parsebytes(raw)
    robot = is_robot(message, envelope_from)
    if robot is not None:
        return _logged(Verdict("dropped", robot, "250 OK"), message, recipients)
    rooms = {r for r in (room_of_address(a) for a in recipients) if r is not None}
    if len(rooms) != 1:
        return _logged(
            Verdict("refused", "no valid reply address", "550 5.1.1 Unknown recipient"),
            message,
            recipients,
        )
    room = db.session.get(ChatRoom, rooms.pop())
    if room is None:
        return _logged(
            Verdict("refused", "the room is gone", "550 5.1.1 Unknown recipient"),
            message,
            recipients,
        )
    customer = room.customer
    senders = [a.lower() for _, a in getaddresses(message.get_all("From", []))]
    if senders != [customer.email.lower()]:
        return _logged(
            Verdict("refused", f"From {senders} is not the customer", "550 5.7.1 Not accepted"),
            message,
            recipients,
        )
    if not _within_rate(room.id):
        return _logged(
            Verdict("refused", "too many emails for this room", "450 4.7.1 Try again later"),
            message,
            recipients,
        )
    return _logged(_post(customer, message, raw), message, recipients)


def _within_rate(room_id: int) -> bool:
    from limits import parse

    from ..extensions import limiter

    rate = parse(current_app.config["CHAT_INBOUND_RATE_LIMIT"])
    return limiter.limiter.hit(rate, "inbound-mail", str(room_id))


def _post(customer, message: EmailMessage, raw: bytes) -> Verdict:
    from mailparser_reply import EmailReplyParser

    from ..errors import ChatError
    from ..services.messages import send_message
    from ..services.schemas import MAX_BODY

    text = _text_of(message)
    reply = EmailReplyParser(languages=["en", "ko"]).parse_reply(text=text) if text else ""
    body = _without_trailing_quote(reply or "").strip()[:MAX_BODY]
    folder = tempfile.mkdtemp(prefix="inbound-")
    try:
        files = _attachments(customer, message, folder)
        if not body and not files:
            return Verdict("refused", "no text and no file", "550 5.6.0 Empty message")
        # The same email delivered twice (the sender's server retried) is one message:
        # known by its Message-ID, else by its bytes.
        source = message.get("Message-ID", "").strip().encode() or raw
        ident = hashlib.sha256(source).hexdigest()[:40]
        data = {"body": body, "attachments": files, "client_id": f"email-{ident}"}
        try:
            stored = send_message(customer, data)
        except ChatError as exc:
            return Verdict("refused", f"not stored: {exc.code}", "451 4.3.0 Try again later")
        return Verdict("posted", "posted", "250 OK", stored["id"])
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _without_trailing_quote(text: str) -> str:
    """The text without a quoted block (`>` lines) at its end, nor the line that
    introduces it (ending in a colon). mail-parser-reply knows the English and Outlook
    headers, but not Gmail's Korean one ("2026년 12월 7일 (월) 오전 10:00, 상담원 <…>님이
    작성:"), nor a quote with no header at all (docs/DECISIONS.md)."""
    lines = text.rstrip().split("\n")
    quoted = False
    while lines and (lines[-1].startswith(">") or (quoted and not lines[-1].strip())):
        quoted = True
        lines.pop()
    if quoted and lines and lines[-1].rstrip().endswith(":"):
        lines.pop()
    return "\n".join(lines)


def _attachments(customer, message: EmailMessage, folder: str) -> list[int]:
    """The email's files, each stored through the upload's checks; a refused one is
    logged and left out."""
    from ..errors import ChatError
    from ..services import attachments

    ids = []
    for n, part in enumerate(message.iter_attachments()):
        if n >= attachments.MAX_PER_MESSAGE:  # refused ones count: each costs work
            log.warning("inbound mail: more than %s files, the rest left out", n)
            break
        data = part.get_payload(decode=True) or b""
        path = os.path.join(folder, f"part-{n}")
        with open(path, "wb") as out:
            out.write(data)
        try:
            ids.append(attachments.upload(customer, path, part.get_filename())["id"])
        except ChatError as exc:
            log.warning("inbound mail: file %r left out: %s", part.get_filename(), exc.code)
    return ids


def _text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    content = part.get_content()
    if part.get_content_type() == "text/html":
        return _html_to_text(content)
    return content


class _Text(HTMLParser):
    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "head"):
            self.skip += 1
        elif tag in ("br", "p", "div", "tr", "li", "blockquote"):
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in ("script", "style", "head") and self.skip:
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def _html_to_text(html: str) -> str:
    reader = _Text()
    reader.feed(html)
    return re.sub(r"\n{3,}", "\n\n", "".join(reader.parts)).strip()


def _logged(verdict: Verdict, message: EmailMessage, recipients: list[str]) -> Verdict:
    level = logging.INFO if verdict.result == "posted" else logging.WARNING
    log.log(
        level,
        "inbound mail %s: %s (Message-ID %s, From %s, to %s)",
        verdict.result,
        verdict.reason,
        message.get("Message-ID"),
        message.get("From"),
        recipients,
    )
    return verdict


class Handler:
    """aiosmtpd's handler: recipients of our domain only, then each email judged on a
    thread (database and file work stay off the SMTP server's event loop)."""

    def __init__(self, app):
        self.app = app

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        domain = (self.app.config["MAIL_INBOUND_DOMAIN"] or "").lower()
        if not address.lower().endswith("@" + domain):
            return "550 5.7.1 Relaying denied"
        with self.app.app_context():  # the HMAC, before any byte of the mail is taken
            if room_of_address(address) is None:
                log.warning("inbound mail refused: unknown reply address %s", address)
                return "550 5.1.1 Unknown recipient"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        import asyncio

        def judge():
            with self.app.app_context():
                try:
                    return receive(envelope.content, envelope.mail_from, envelope.rcpt_tos)
                except RecursionError:  # MIME nested past reason: no use sending it again
                    log.warning("inbound mail refused: nested too deeply")
                    return Verdict("refused", "nested too deeply", "550 5.6.0 Malformed message")
                except Exception:
                    log.exception("inbound mail failed")
                    return Verdict("refused", "internal error", "451 4.3.0 Try again later")

        verdict = await asyncio.get_running_loop().run_in_executor(None, judge)
        return verdict.smtp
