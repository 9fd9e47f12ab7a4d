"""Outgoing email. Messages are built with the standard library's `email` package and
handed to an SMTP server with `smtplib` (MAIL_URL), or, with no MAIL_URL, written to
MAIL_OUTBOX_DIR as .eml files, so a newcomer's `make run` needs no mail server and
still shows every email (at /dev/outbox)."""

from __future__ import annotations

import os
import smtplib
import ssl
import tempfile
import time
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

SMTP_TIMEOUT = 10.0  # seconds for each step of an SMTP session


class MailUnavailable(Exception):
    """The mail could not be handed over now (SMTP down, a 4xx answer, a full disk):
    try again later."""


class MailRefused(Exception):
    """The SMTP server refused this mail for good (a 5xx answer: a bad address, a
    rejected message): trying again would be refused again."""


def deliver(config, message: EmailMessage) -> None:
    """Hand `message` to the SMTP server of MAIL_URL, or write it to the outbox."""
    try:
        if config["MAIL_URL"]:
            _smtp(config["MAIL_URL"], message)
        else:
            _to_folder(config["MAIL_OUTBOX_DIR"], message)
    except smtplib.SMTPRecipientsRefused as exc:  # every recipient refused
        codes = [code for code, _ in exc.recipients.values()]
        if all(code >= 500 for code in codes):
            raise MailRefused(f"recipients refused: {exc.recipients}") from exc
        raise MailUnavailable(f"recipients refused for now: {exc.recipients}") from exc
    except smtplib.SMTPResponseException as exc:
        if exc.smtp_code >= 500 and not isinstance(exc, smtplib.SMTPAuthenticationError):
            raise MailRefused(f"{exc.smtp_code} {exc.smtp_error!r}") from exc
        raise MailUnavailable(f"{exc.smtp_code} {exc.smtp_error!r}") from exc
    except (OSError, smtplib.SMTPException) as exc:
        raise MailUnavailable(f"{type(exc).__name__}: {exc}") from exc


def _smtp(url: str, message: EmailMessage) -> None:
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    if parts.scheme == "smtps":
        context = ssl.create_default_context()
        client = smtplib.SMTP_SSL(host, parts.port or 465, timeout=SMTP_TIMEOUT, context=context)
    else:
        client = smtplib.SMTP(host, parts.port or 25, timeout=SMTP_TIMEOUT)
    try:
        if parts.scheme == "smtp+starttls":
            client.starttls(context=ssl.create_default_context())
        if parts.username:
            client.login(unquote(parts.username), unquote(parts.password or ""))
        client.send_message(message)
    except BaseException:
        client.close()
        raise
    # Accepted: whatever QUIT answers (or not), the mail is the server's now. (A `with`
    # block would turn a failed QUIT into an error, and the mail would go twice.)
    try:
        client.quit()
    except (OSError, smtplib.SMTPException):
        client.close()


def _to_folder(folder: str, message: EmailMessage) -> None:
    """One .eml file per email, written beside its name and renamed into place."""
    os.makedirs(folder, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    ident = "".join(c for c in message["Message-ID"] or "" if c.isalnum() or c in "-.")[:60]
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".part-", delete=False) as out:
        out.write(message.as_bytes())
    os.replace(out.name, os.path.join(folder, f"{stamp}-{ident}.eml"))


def outbox(folder: str) -> list[str]:
    """The outbox's emails, newest first (file names)."""
    try:
        names = [n for n in os.listdir(folder) if n.endswith(".eml")]
    except FileNotFoundError:
        return []
    return sorted(names, reverse=True)
