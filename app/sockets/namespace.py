"""The `/chat` namespace: authenticate at connect, authorise every event in the services.

Handlers are thin: they find the connection's user, call one service function, and turn
the result or the error into the contract's acknowledgement. Nothing raises to
Socket.IO and nothing drops the connection for a bad payload.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import wraps

from flask import current_app
from flask_socketio import ConnectionRefusedError, Namespace, join_room
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from ..errors import Busy, ChatError, InternalError, Unauthorized
from ..extensions import db, socketio
from ..models import User
from ..registry import Connection, Identity, TooManySockets, current_registry
from ..services import events, presence, viewing
from ..services.activity import mark_read, typing
from ..services.alerts import set_alert_emails
from ..services.assignment import assign
from ..services.availability import availability, save_team_settings, team_settings
from ..services.canned import delete_canned, list_canned, save_canned
from ..services.inbox import inbox_counts, list_rooms
from ..services.limits import check_event_rate
from ..services.messages import list_history, send_message
from ..services.rooms import customer_profile, open_own_room, set_status
from ..services.sites import (
    add_site_for_team,
    remove_site_for_team,
    rotate_secret_for_team,
    sites_for_team,
)
from ..services.team import list_staff, set_availability
from ..serving import BUSY, RESTARTING, Admission, in_flight
from . import housekeeping
from .handshake import authenticate_handshake

NAMESPACE = events.NAMESPACE
UNKNOWN_EVENT = {"ok": False, "error": {"code": "not_found", "message": "Unknown event."}}


def acknowledged(handler: Callable[..., dict]):
    """Run `handler(self, user, payload)` and answer `{"ok": true, ...}` or the error.

    Called by `ChatNamespace.trigger_event` as `event(self, app, sid, *args)`, inside
    the app's context. Every event but `send_message` (which has its own limit) spends
    the user's budget for that event first."""
    name = handler.__name__.removeprefix("on_")
    wants_sid = "sid" in inspect.signature(handler).parameters  # (view_room)

    @wraps(handler)
    def event(self, app, sid, *args):
        payload = args[0] if args else None
        try:
            with in_flight(app):
                user = self.current_user(sid)
                if name != "send_message":
                    check_event_rate(user.id, name)
                extra = {"sid": sid} if wants_sid else {}
                return {"ok": True, **handler(self, user, payload, **extra)}
        except ChatError as exc:
            db.session.rollback()
            return {"ok": False, "error": exc.to_dict()}
        except PoolTimeout:  # past capacity: no connection free for DATABASE_POOL_TIMEOUT
            db.session.rollback()
            return {"ok": False, "error": Busy().to_dict()}
        except Exception:
            current_app.logger.exception("event %s failed", handler.__name__)
            db.session.rollback()
            return {"ok": False, "error": InternalError().to_dict()}

    return event


class ChatNamespace(Namespace):
    def trigger_event(self, event: str, *args):
        """Dispatch one event; `args` is the sid, then what the client sent (for
        `connect`: the handshake's environ and its auth payload; for `disconnect`: the
        reason).

        Every event runs in the app's context only, with the sid passed along: the
        identity was fixed at connect and lives in the registry, and the handshake is
        read from its WSGI environ. Flask-SocketIO's own dispatch would build a full
        request context for each (a Request object, URL matching, the session cookie
        opened and saved): a fifth of the server's CPU per message, and a fifth of
        the connect handler's (docs/BENCHMARKS.md).
        """
        sid = args[0] if args else None
        # Unknown events still get an answer rather than an empty acknowledgement.
        if event == "disconnect" and self.sent_by_client(sid):
            return UNKNOWN_EVENT
        handler = getattr(self, f"on_{event}", None)
        if handler is None or sid is None:
            return UNKNOWN_EVENT
        environ = self.socketio.server.get_environ(sid, namespace=self.namespace)
        if environ is None:  # the socket went away while its event waited
            return False if event == "connect" else None  # False refuses a connect
        if event == "connect" and (len(args) < 2 or args[1] is not environ):
            # Only python-socketio's own connect call hands over the handshake's environ,
            # the very object it keeps for the socket; a `connect` a client sends as an
            # event carries JSON. This does not rest on when a library version counts a
            # socket as connected (`sent_by_client`): whatever that says, a connect that
            # is not the real one never reaches `on_connect`, and is never accepted.
            return (
                UNKNOWN_EVENT
                if self.socketio.server.manager.is_connected(sid, NAMESPACE)
                else False
            )
        app = environ["flask.app"]
        if event == "connect":
            with app.app_context():
                return self.on_connect(sid, environ, args[2] if len(args) > 2 else None)
        if event == "disconnect":
            with app.app_context():
                return self.on_disconnect(sid)
        if in_flight(app).draining:  # shutting down: finish what is in flight, take nothing new
            return RESTARTING
        if event == "send_message":
            return self.admit_send(app, handler, args)
        with app.app_context():
            return handler(app, *args)

    def admit_send(self, app, handler, args) -> dict:
        """A send past what this process serves in time is answered busy at once, before
        its payload is parsed or the database is asked (app/serving.py, Admission)."""
        admission: Admission = app.extensions["chat_admission"]
        if admission.overloaded():
            admission.refused()
            return BUSY
        with admission, app.app_context():
            answer = handler(app, *args)
        if answer["ok"]:
            admission.served()
        return answer

    def sent_by_client(self, sid: str | None) -> bool:
        """Whether a `disconnect` came from the client as an ordinary event.

        python-socketio hands `42/chat,["disconnect"]` to the namespace like any other
        event. The real call comes while the socket is already disconnecting; a client
        can only send events over a fully connected socket, so that state tells them
        apart (python-socketio 5.18.1 and later: docs/DECISIONS.md). A `connect` is told
        apart by its environ instead (`trigger_event`).
        """
        return sid is not None and self.socketio.server.manager.is_connected(sid, self.namespace)

    def on_connect(self, sid: str, environ: dict, auth=None):
        # Fail closed: *any* error refuses the socket. Anything raised but
        # ConnectionRefusedError would reach python-socketio as a server error.
        try:
            if in_flight(current_app).draining:
                raise ConnectionRefusedError("unavailable")
            user, claims = authenticate_handshake(auth, environ)
            self._open(environ["flask.app"], sid, user, claims)
        except ConnectionRefusedError:
            raise
        except Unauthorized:
            raise ConnectionRefusedError("unauthorized") from None
        except (SQLAlchemyError, RedisError):  # the database or Redis is away: no fault of
            # the client's, and no reason to send a page's user to the login form
            current_app.logger.warning("socket connect refused: a backing service is away")
            self._forget_half_open(sid)
            raise ConnectionRefusedError("unavailable") from None
        except TooManySockets as exc:
            message = f"You have {exc.args[0]} connections open already; close a tab first."
            raise ConnectionRefusedError("too_many_connections", {"message": message}) from None
        except Exception:
            current_app.logger.exception("socket connect failed; refused")
            self._forget_half_open(sid)
            raise ConnectionRefusedError("unauthorized") from None

    def _forget_half_open(self, sid: str) -> None:
        # A failure after the registry learned of the socket must not leave it "online".
        try:
            current_registry().remove(sid)
        except Exception:
            current_app.logger.exception("could not forget a refused socket")

    def _open(self, app, sid: str, user: Identity, claims: dict) -> None:
        join_room(events.user_channel(user.id), sid=sid, namespace=NAMESPACE)
        join_room(
            events.ADMINS if user.is_staff else events.CUSTOMERS, sid=sid, namespace=NAMESPACE
        )
        # Identity lives with the connection (in the registry), never in `g`.
        side = "admin" if user.is_staff else "customer"
        conn = Connection(sid, user.id, side, claims["fam"], claims["exp"], user)
        presence.socket_opened(user, conn)
        housekeeping.start(app)

    def on_disconnect(self, sid: str):
        try:
            viewing.forget(sid)
            presence.socket_closed(sid)
        except Exception:
            current_app.logger.exception("socket disconnect bookkeeping failed")

    def current_user(self, sid: str) -> Identity:
        conn = current_registry().get(sid)
        if conn is None or conn.identity is None:
            raise Unauthorized("This connection is not logged in; connect again.")
        return conn.identity

    @acknowledged
    def on_send_message(self, user: User, payload: object) -> dict:
        return {"message": send_message(user, payload)}

    @acknowledged
    def on_list_rooms(self, user: User, payload: object) -> dict:
        open_own_room(user)
        rooms, next_cursor = list_rooms(user, payload)
        return {"rooms": rooms, "next": next_cursor}

    @acknowledged
    def on_inbox_counts(self, user: User, payload: object) -> dict:
        return {"counts": inbox_counts(user, payload)}

    @acknowledged
    def on_history(self, user: User, payload: object) -> dict:
        messages, has_more, lines = list_history(user, payload)
        page = {"messages": messages, "has_more": has_more}
        if user.is_staff:  # the thread's status lines are the team's alone
            page["events"] = lines
        return page

    @acknowledged
    def on_mark_read(self, user: User, payload: object) -> dict:
        mark_read(user, payload)
        return {}

    @acknowledged
    def on_typing(self, user: User, payload: object) -> dict:
        typing(user, payload)
        return {}

    @acknowledged
    def on_customer_profile(self, user: User, payload: object) -> dict:
        return {"profile": customer_profile(user, payload)}

    @acknowledged
    def on_set_status(self, user: User, payload: object) -> dict:
        return {"room": set_status(user, payload)}

    @acknowledged
    def on_list_canned(self, user: User, payload: object) -> dict:
        return {"replies": list_canned(user, payload)}

    @acknowledged
    def on_save_canned(self, user: User, payload: object) -> dict:
        return {"reply": save_canned(user, payload)}

    @acknowledged
    def on_delete_canned(self, user: User, payload: object) -> dict:
        delete_canned(user, payload)
        return {}

    @acknowledged
    def on_list_sites(self, user: User, payload: object) -> dict:
        return {"sites": sites_for_team(user, payload)}

    @acknowledged
    def on_add_site(self, user: User, payload: object) -> dict:
        return add_site_for_team(user, payload)

    @acknowledged
    def on_rotate_site_secret(self, user: User, payload: object) -> dict:
        return rotate_secret_for_team(user, payload)

    @acknowledged
    def on_remove_site(self, user: User, payload: object) -> dict:
        remove_site_for_team(user, payload)
        return {}

    @acknowledged
    def on_set_alert_emails(self, user: User, payload: object) -> dict:
        return set_alert_emails(user, payload)

    @acknowledged
    def on_assign(self, user: User, payload: object) -> dict:
        return {"room": assign(user, payload)}

    @acknowledged
    def on_view_room(self, user: User, payload: object, sid: str) -> dict:
        viewing.view_room(user, payload, sid)
        return {}

    @acknowledged
    def on_set_availability(self, user: User, payload: object) -> dict:
        return set_availability(user, payload)

    @acknowledged
    def on_list_staff(self, user: User, payload: object) -> dict:
        return {"staff": list_staff(user)}

    @acknowledged
    def on_availability(self, user: User, payload: object) -> dict:
        return {"availability": availability(user)}

    @acknowledged
    def on_team_settings(self, user: User, payload: object) -> dict:
        return team_settings(user, payload)

    @acknowledged
    def on_save_team_settings(self, user: User, payload: object) -> dict:
        return save_team_settings(user, payload)


def register_namespaces(app) -> None:
    socketio.on_namespace(ChatNamespace(NAMESPACE))
