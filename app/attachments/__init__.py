"""Attachments over HTTP: `POST /api/attachments` takes one file, `GET
/attachments/<id>` (and `/thumbnail`) gives it back, inert, to whoever may see it."""

from __future__ import annotations

import os
import shutil
import tempfile
import unicodedata
from urllib.parse import quote

from flask import Blueprint, Response, current_app, jsonify, request
from flask_jwt_extended import current_user, jwt_required, verify_jwt_in_request
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt import PyJWTError
from limits import parse as parse_limit
from limits.strategies import FixedWindowRateLimiter
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from ..errors import NotFound, RateLimited, ValidationError
from ..extensions import csrf, db, limiter, socketio
from ..services import attachments as service
from .files import THUMBNAIL_TYPE

bp = Blueprint("attachments", __name__)
MULTIPART_SLACK = 64 * 1024  # the form's own bytes around the file
# Uploads take turns: one chunk of one upload is split and written, then the loop polls
# every other socket before the next chunk of any upload. The chunk is the knob between
# the other sockets' acks and upload speed: with 128 KB, ten uploads at full loopback
# speed left another socket's ack p99 at 10-16 ms in eight runs of nine (21.8 ms once),
# at about 70 MB/s of uploads a process (docs/BENCHMARKS.md, "Uploads under load").
RECEIVE_CHUNK = 128 * 1024
# After its chunk the holder waits for the loop's next turn. A zero sleep lets gevent run
# greenlets again before it polls the other sockets (its docs say so of `sleep(0)`); any
# positive wait puts them after that poll, in both modes.
YIELD = 0.0001
TURN_WAIT = 30.0  # seconds an upload may wait for its turn before it is a 503


@bp.post("/api/attachments")
@csrf.exempt  # a Bearer token, or the page's cookie with its CSRF header (flask-jwt-extended)
@jwt_required(locations=["headers", "cookies"])
def upload():
    limit = current_app.config["CHAT_ATTACHMENT_MAX_BYTES"]
    # Refused before the body is read when the declared size is over; a body without a
    # length is cut off as soon as it passes the same bound.
    if request.content_length is not None and request.content_length > limit + MULTIPART_SLACK:
        raise service.TooLarge(f"The file is larger than {limit} bytes.")
    if request.mimetype != "multipart/form-data":
        raise ValidationError("Send multipart/form-data, one field `file`.", {"file": "missing"})
    request.max_content_length = limit + MULTIPART_SLACK  # this route's own bound (Flask 3.1)
    _spend_budget()
    os.makedirs(service.incoming_dir(), exist_ok=True)
    folder = tempfile.mkdtemp(prefix="upload-", dir=service.incoming_dir())
    try:
        name, path = _receive(folder, limit + MULTIPART_SLACK)
        answer = service.upload(current_user, path, name)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    _spend_bytes(answer["size"])
    return jsonify(answer), 201


def _receive(folder: str, limit: int) -> tuple[str | None, str]:
    """The form's one file, written to `folder` as the body arrives, a chunk at a time:
    Werkzeug's sans-IO multipart decoder splits each chunk in the process's receive turn
    (one upload's chunk at a time), and between chunks the event loop serves every other
    socket. Reading waits outside the turn, so a slow sender holds up no one. The
    client's file name, and the file's path."""
    boundary = request.mimetype_params.get("boundary", "").encode("latin-1")
    if not boundary:
        raise ValidationError("Send multipart/form-data, one field `file`.", {"file": "missing"})
    source = request.stream
    if (
        request.content_length is None
        and "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    ):
        # A streamed body: the WSGI server de-chunks wsgi.input (Werkzeug reads such a
        # body only where the server says it ends the input, which eventlet does not).
        source = request.environ["wsgi.input"]
    form = _FormFile(boundary, folder)
    total = 0
    turn = current_app.extensions["chat_receive_turn"]
    try:
        while True:
            try:
                chunk = source.read(RECEIVE_CHUNK)
            except RequestEntityTooLarge:  # a body without a length, past the bound
                raise service.TooLarge("The file is too large.") from None
            total += len(chunk)
            if total > limit:
                raise service.TooLarge("The file is too large.")
            if not turn.acquire(timeout=TURN_WAIT):
                raise service.StorageUnavailable("Too many uploads at once; try again in a moment.")
            try:
                if form.feed(chunk) or not chunk:
                    break
                socketio.sleep(YIELD)  # the next upload's chunk waits past the loop's next poll
            finally:
                turn.release()
    except (ValueError, RequestEntityTooLarge) as bad:  # broken, too many parts, a big field
        raise ValidationError("That is not a well-formed form.", {"file": "missing"}) from bad
    finally:
        form.close()
    if not form.ended:
        raise ValidationError("The form ended early.", {"file": "missing"})
    files = form.files
    if len(files) != 1:
        raise ValidationError("Send one file in the field `file`.", {"file": "missing"})
    return files[0]


class _FormFile:
    """A multipart form fed a chunk at a time; each part named `file` goes to a file of
    its own in `folder` (`files`: the client's name and the path), other fields' bytes
    are never kept."""

    def __init__(self, boundary: bytes, folder: str):
        self.decoder = MultipartDecoder(boundary, max_parts=10)
        self.folder = folder
        self.files: list[tuple[str | None, str]] = []
        self.out = None  # the file part being written, if any
        self.ended = False

    def feed(self, chunk: bytes) -> bool:
        """Split `chunk` (empty: the body ended) and write its file bytes; True once the
        form's end has been read."""
        self.decoder.receive_data(chunk or None)
        while not isinstance(event := self.decoder.next_event(), (NeedData, Epilogue)):
            if isinstance(event, (File, Field)):
                self.close()
            if isinstance(event, File) and event.name == "file":
                part = os.path.join(self.folder, f"part-{len(self.files)}")
                self.files.append((event.filename, part))
                # Readable by this server alone, like every file in the store.
                fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                self.out = open(fd, "wb")  # noqa: SIM115 (closed by close())
            elif isinstance(event, Data) and self.out is not None:
                self.out.write(event.data)
        self.ended = isinstance(event, Epilogue)
        return self.ended

    def close(self) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None


def _budget_keys():
    user = str(current_user.id)
    return (
        (parse_limit(current_app.config["CHAT_UPLOAD_RATE_LIMIT"]), ("uploads", user)),
        (
            parse_limit(f"{current_app.config['CHAT_UPLOAD_BYTES_PER_HOUR']}/hour"),
            ("upload-bytes", user),
        ),
    )


def _bytes_counter() -> FixedWindowRateLimiter:
    """Bytes are counted in a fixed window: one counter moved by the file's size. (A
    moving window keeps one entry per unit counted: ten million for a 10 MB file.)"""
    return FixedWindowRateLimiter(limiter.storage)


def _spend_budget() -> None:
    """Each user's uploads an hour: a count, and the bytes already stored."""
    (count, count_key), (volume, volume_key) = _budget_keys()
    if not _bytes_counter().test(volume, *volume_key) or not limiter.limiter.hit(count, *count_key):
        raise RateLimited("Too many uploads; try again later.")


def _spend_bytes(size: int) -> None:
    (_, _), (volume, volume_key) = _budget_keys()
    _bytes_counter().hit(volume, *volume_key, cost=max(1, size))


@bp.get("/attachments/<int:attachment_id>")
def download(attachment_id: int):
    return _serve(attachment_id, thumbnail=False)


@bp.get("/attachments/<int:attachment_id>/thumbnail")
def thumbnail(attachment_id: int):
    return _serve(attachment_id, thumbnail=True)


def _reader():
    """Who asks: a Bearer token, or the page's cookie (a GET needs no CSRF header). No
    token, or a bad or ended one, is nobody: the file is then `not_found`, as for anyone
    who may not see it."""
    try:
        verify_jwt_in_request(locations=["headers", "cookies"])
    except (JWTExtendedException, PyJWTError):  # missing, bad, expired, ended, unknown user
        raise NotFound("No such file.") from None
    return current_user


def _serve(attachment_id: int, thumbnail: bool) -> Response:
    attachment = service.for_download(_reader(), attachment_id)
    db.session.expunge(attachment)
    db.session.close()  # the pool's connection goes back before the bytes are sent
    chunks, size = service.open_stream(attachment, thumbnail)
    image = attachment.kind == "image"
    content_type = THUMBNAIL_TYPE if thumbnail else attachment.content_type
    if content_type.startswith("text/"):
        content_type += "; charset=utf-8"
    response = Response(chunks, content_type=content_type)
    response.content_length = size
    # Only a re-encoded picture is shown in the page; everything else is a download.
    response.headers.set(
        "Content-Disposition", "inline" if image else "attachment", **_filename(attachment.name)
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, max-age=3600"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    return response


def _filename(name: str) -> dict:
    """The name for Content-Disposition: ASCII as `filename`, the real one (Korean…) as
    RFC 6266's `filename*`."""
    try:
        name.encode("ascii")
        return {"filename": name}
    except UnicodeEncodeError:
        simple = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode() or "file"
        return {"filename": simple, "filename*": "UTF-8''" + quote(name, safe="!#$&+^`|~")}
