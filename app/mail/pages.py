"""Pages about email: unsubscribing (a link in every email, and RFC 8058's one-click
POST from the mail client), and the development outbox (/dev/outbox: the emails the
app wrote to MAIL_OUTBOX_DIR, for admins, only while there is no MAIL_URL)."""

from __future__ import annotations

import os
from email import policy
from email.parser import BytesParser

from flask import Blueprint, abort, current_app, render_template
from flask_wtf import FlaskForm

from ..extensions import csrf
from ..services import notify
from . import outbox

bp = Blueprint("email", __name__)


class UnsubscribeForm(FlaskForm):
    pass


@bp.get("/email/unsubscribe/<token>")
def unsubscribe_page(token: str):
    if notify.user_of_unsubscribe_token(token) is None:
        abort(404)
    return render_template("email/unsubscribe.html", form=UnsubscribeForm(), done=False)


@bp.post("/email/unsubscribe/<token>")
@csrf.exempt  # RFC 8058: the mail client posts without our form; the signed token is the proof
def unsubscribe(token: str):
    user_id = notify.user_of_unsubscribe_token(token)
    if user_id is None:
        abort(404)
    notify.unsubscribe(user_id)
    return render_template("email/unsubscribe.html", form=None, done=True)


def _admin_with_outbox():
    from ..web import page_user

    if current_app.config["MAIL_URL"]:
        abort(404)  # real mail is sent: there is no outbox to show
    user, _ = page_user()
    if user is None or user.role != "admin":
        abort(404)


@bp.get("/dev/outbox")
def outbox_list():
    _admin_with_outbox()
    folder = current_app.config["MAIL_OUTBOX_DIR"]
    emails = [_read(folder, name) | {"file": name} for name in outbox(folder)[:100]]
    return render_template("email/outbox.html", emails=emails, folder=folder)


@bp.get("/dev/outbox/<name>")
def outbox_email(name: str):
    _admin_with_outbox()
    folder = current_app.config["MAIL_OUTBOX_DIR"]
    if name not in outbox(folder):  # only a name the folder lists: no path of the client's
        abort(404)
    return render_template("email/outbox_email.html", email=_read(folder, name) | {"file": name})


def _read(folder: str, name: str) -> dict:
    with open(os.path.join(folder, name), "rb") as f:
        message = BytesParser(policy=policy.default).parse(f)
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    return {
        "subject": message["Subject"] or "",
        "to": message["To"] or "",
        "from": message["From"] or "",
        "date": message["Date"] or "",
        "headers": [(k, str(v)) for k, v in message.items()],
        "text": text.get_content() if text is not None else "",
        "html": html.get_content() if html is not None else "",
    }
