"""One error type carrying the contract's codes, translated at the edges.

HTTP views turn a `ChatError` into `{"error": {...}}` with its status; socket handlers
turn it into a `{"ok": false, "error": {...}}` ack. Anything else is a bug: it is logged
once and answered with `internal_error`, never with a stack trace.
"""

from __future__ import annotations

from flask import Flask, jsonify, make_response, render_template, request
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException


class ChatError(Exception):
    code = "internal_error"
    status = 500
    default_message = "Something went wrong on our side."

    def __init__(self, message: str | None = None):
        super().__init__(message or self.default_message)
        self.message = message or self.default_message

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message}


class Unauthorized(ChatError):
    code, status, default_message = "unauthorized", 401, "Log in first."


class Deactivated(Unauthorized):
    """The right password for an account an admin has deactivated."""

    default_message = "This account has been deactivated. Ask an admin of your team."


class Forbidden(ChatError):
    code, status, default_message = "forbidden", 403, "You may not do that."


class NotFound(ChatError):
    code, status, default_message = "not_found", 404, "Not found."


class ValidationError(ChatError):
    code, status, default_message = "validation_error", 400, "The request is not valid."

    def __init__(self, message: str | None = None, fields: dict[str, str] | None = None):
        super().__init__(message)
        # Every field that failed, with its rule (the forms show each beside its field);
        # the wire carries `message` and `field`, the first of them.
        self.fields = fields or {}

    def to_dict(self) -> dict:
        answer = super().to_dict()
        if self.fields:
            answer["field"] = next(iter(self.fields))
        return answer


class RateLimited(ChatError):
    code, status, default_message = "rate_limited", 429, "Too many messages; wait a moment."


class Busy(RateLimited):
    """Work this process could not take on in time (overload): nothing was stored; try
    again shortly (docs/DECISIONS.md, "Overload")."""

    default_message = "The chat is busy right now; try again in a moment."


class Conflict(ChatError):
    code, status, default_message = "conflict", 409, "That conflicts with existing data."

    def __init__(self, message: str | None = None, field: str | None = None):
        super().__init__(message)
        self.field = field  # the field whose value is taken, when one is

    def to_dict(self) -> dict:
        answer = super().to_dict()
        if self.field:
            answer["field"] = self.field
        return answer


class InternalError(ChatError):
    pass


HTTP_CODES = {
    400: "validation_error",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "not_found",
    409: "conflict",
    413: "validation_error",
    429: "rate_limited",
}


def error_body(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


def render_form_again(message: str):
    """A throttled HTML form: the same page, with the reason, answered 429."""
    from flask import flash, render_template

    from .auth.forms import LoginForm, RegisterForm

    flash(message, "error")
    if request.path == "/register":
        return render_template("auth/register.html", form=RegisterForm()), 429
    return render_template("auth/login.html", form=LoginForm()), 429


# What a person sees for an HTTP error on a page (templates/error.html).
ERROR_PAGES = {
    400: (_l("That request did not look right"), _l("Go back and try again.")),
    403: (
        _l("Not for this account"),
        _l("This page is not open to the account you are using."),
    ),
    404: (_l("Page not found"), _l("The address may be mistyped, or the page has moved.")),
    405: (
        _l("That did not work"),
        _l("This page cannot be used that way. Go back and try again."),
    ),
    413: (_l("That was too large"), _l("Send something smaller and try again.")),
    500: (
        _l("Something went wrong on our side"),
        _l("It has been logged. Try again in a moment; your messages are safe."),
    ),
}


def error_page(status: int) -> str:
    title, message = ERROR_PAGES.get(status, ERROR_PAGES[500 if status >= 500 else 400])
    try:
        return render_template("error.html", status=status, title=title, message=message)
    except Exception:  # the error page itself must never fail
        return f"{status} {title}"


def register_error_handlers(app: Flask) -> None:
    """JSON errors under /api and /healthz; plain pages elsewhere."""

    def wants_json() -> bool:
        return request.path.startswith("/api") or request.path == "/healthz"

    @app.errorhandler(ChatError)
    def handle_chat_error(exc: ChatError):
        return jsonify({"error": exc.to_dict()}), exc.status

    @app.errorhandler(429)
    def handle_rate_limited(exc: HTTPException):
        from .auth.throttle import retry_after_seconds, tarpit

        tarpit()
        seconds = retry_after_seconds()
        if wants_json():
            message = f"Too many attempts; try again in {seconds} seconds."
            response = jsonify(error_body("rate_limited", message))
        else:
            response = make_response(
                render_form_again(
                    gettext("Too many attempts; try again in %(seconds)s seconds.", seconds=seconds)
                )
            )
        response.status_code = 429
        response.headers["Retry-After"] = str(seconds)
        return response

    @app.errorhandler(HTTPException)
    def handle_http_error(exc: HTTPException):
        if exc.code is not None and exc.code < 400:  # routing's redirects
            return exc
        if not wants_json():
            return error_page(exc.code or 500), exc.code
        code = HTTP_CODES.get(exc.code or 500, "internal_error")
        return jsonify(error_body(code, exc.description or code)), exc.code

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception):
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        if wants_json():
            return jsonify(error_body("internal_error", InternalError.default_message)), 500
        return error_page(500), 500
