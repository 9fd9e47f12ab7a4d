"""Attachments: uploads, who may fetch them, and the files' lifetime.

- `upload`: the file judged from its bytes, a picture re-encoded (off the event loop),
  the bytes put in the store under a random key, then the row. Until a message carries
  it, only its uploader may fetch it or send it.
- `send_message` links the files in the statement that stores the message
  (services/store.py); from then on, whoever may see the message may fetch them: for a
  note, the team alone.
- `sweep`: uploads never sent are deleted after UNSENT_LIFETIME; a deleted customer's
  files go with them (services/users.py, `delete_user`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, select

from ..attachments.files import IMAGE_TYPES, Refused, clean_name, judge, reencode
from ..attachments.storage import StoreUnavailable, new_key
from ..concurrency import off_the_loop
from ..database import transaction
from ..errors import ChatError, NotFound, ValidationError
from ..extensions import db
from ..models import Attachment, ChatRoom, Message, User, utcnow

UNSENT_LIFETIME = timedelta(hours=24)
# Seconds an upload waits for its turn on the file-work thread: well inside a proxy's
# own timeout (nginx: 60 s), so the client hears 503, not the proxy's 504.
FILE_WORK_WAIT = 15.0
MAX_PER_MESSAGE = 10


class TooLarge(ChatError):
    code, status, default_message = "too_large", 413, "The file is too large."


class UnsupportedType(ChatError):
    code, status, default_message = "unsupported_type", 415, "That type of file is not accepted."


class StorageUnavailable(ChatError):
    code, status, default_message = (
        "storage_unavailable",
        503,
        "Files cannot be stored right now; try again in a moment.",
    )


def store():
    return current_app.extensions["chat_attachment_store"]


def file_work(function, *args):
    """CPU or disk work on a whole file, on an OS thread, one upload's at a time per
    process: the threads still share Python's lock with the event loop, and ten of them
    at once would starve it (docs/BENCHMARKS.md, "Uploads under load")."""
    slots = current_app.extensions["chat_file_slots"]
    if not slots.acquire(timeout=FILE_WORK_WAIT):
        raise StorageUnavailable("Too many files are being stored; try again in a moment.")
    try:
        return off_the_loop(function, *args)
    finally:
        slots.release()


def _on_store(function, *args, heavy: bool = False):
    """A folder store's calls are blocking file I/O: an OS thread does them (a whole
    file's write takes its turn with the other file work, `heavy`). An S3 store talks
    over sockets the event loop already makes cooperative."""
    from ..attachments.storage import FolderStore

    if not isinstance(store(), FolderStore):
        return function(*args)
    return file_work(function, *args) if heavy else off_the_loop(function, *args)


def attachment_view(a: Attachment) -> dict:
    """The contract's Attachment."""
    view = {
        "id": a.id,
        "name": a.name,
        "content_type": a.content_type,
        "size": a.size,
        "kind": a.kind,
        "url": f"/attachments/{a.id}",
    }
    if a.kind == "image":
        view.update(width=a.width, height=a.height, thumbnail_url=f"/attachments/{a.id}/thumbnail")
    return view


def view_from_row(row: dict) -> dict:
    """The contract's Attachment from the send statement's JSON (services/store.py)."""
    return attachment_view(Attachment(**row))


@dataclass
class Processed:
    content_type: str
    kind: str
    size: int
    picture: bytes | None = None
    thumbnail: bytes | None = None
    width: int | None = None
    height: int | None = None


def _process(path: str, name: str, allowed: frozenset[str]) -> Processed:
    """CPU work on the whole file, on an OS thread: the type, and a picture re-encoded."""
    content_type = judge(path, name)
    if content_type not in allowed:
        raise Refused(f"Files of type {content_type} are not accepted.")
    size = os.path.getsize(path)
    if content_type not in IMAGE_TYPES:
        return Processed(content_type, "file", size)
    picture, thumbnail, _, width, height = reencode(path, content_type)
    return Processed(content_type, "image", len(picture), picture, thumbnail, width, height)


def upload(user: User, path: str, filename: str | None) -> dict:
    """Store the file at `path` (an upload received in its scratch folder, which the
    caller removes; the folder store may move the file in) for `user`; its Attachment."""
    name = clean_name(filename)
    limit = current_app.config["CHAT_ATTACHMENT_MAX_BYTES"]
    allowed = current_app.config["CHAT_ATTACHMENT_TYPES"]
    size = os.path.getsize(path)
    if size > limit:
        raise TooLarge(f"The file is larger than {limit} bytes.")
    if size == 0:
        raise ValidationError("The file is empty.", {"file": "empty"})
    try:
        done = file_work(_process, path, name, allowed)
    except Refused as refused:
        raise UnsupportedType(refused.reason) from None
    key = new_key()
    thumbnail_key = new_key() if done.thumbnail is not None else None
    _put_all(key, path, done, thumbnail_key)
    try:
        with transaction() as session:
            row = Attachment(
                uploader_id=user.id,
                name=name,
                content_type=done.content_type,
                size=done.size,
                kind=done.kind,
                width=done.width,
                height=done.height,
                key=key,
                thumbnail_key=thumbnail_key,
            )
            session.add(row)
            session.flush()
            return attachment_view(row)
    except Exception:
        _forget_keys([key, thumbnail_key])
        raise


def _put_all(key: str, path: str, done: Processed, thumbnail_key: str | None) -> None:
    import io

    target = store()
    try:
        if done.picture is not None:
            _on_store(target.put, key, io.BytesIO(done.picture), len(done.picture), heavy=True)
            thumbnail = io.BytesIO(done.thumbnail)
            _on_store(target.put, thumbnail_key, thumbnail, len(done.thumbnail), heavy=True)
        else:
            _on_store(target.put_file, key, path, done.size, heavy=True)
    except StoreUnavailable:
        _forget_keys([key, thumbnail_key])
        raise StorageUnavailable() from None


def _forget_keys(keys) -> None:
    for key in keys:
        if key is None:
            continue
        try:
            _on_store(store().delete, key)
        except (StoreUnavailable, StorageUnavailable):
            current_app.logger.warning("attachment %s left in the store (store down)", key)


def for_download(user, attachment_id: int) -> Attachment:
    """The attachment if `user` may fetch it; `not_found` otherwise, whatever the reason
    (an id tells nothing)."""
    row = db.session.execute(
        select(Attachment, Message.internal, ChatRoom.customer_id)
        .outerjoin(Message, Message.id == Attachment.message_id)
        .outerjoin(ChatRoom, ChatRoom.id == Message.room_id)
        .where(Attachment.id == attachment_id)
    ).one_or_none()
    if row is None:
        raise NotFound("No such file.")
    attachment, internal, customer_id = row
    if attachment.message_id is None:
        allowed = attachment.uploader_id == user.id
    elif user.is_staff:  # notes too: the whole team reads them
        allowed = True
    else:
        allowed = not internal and customer_id == user.id
    if not allowed:
        raise NotFound("No such file.")
    return attachment


def open_stream(attachment: Attachment, thumbnail: bool):
    key = attachment.thumbnail_key if thumbnail else attachment.key
    if key is None:
        raise NotFound("No such file.")
    try:
        return _on_store(store().stream, key)
    except KeyError:
        raise NotFound("No such file.") from None
    except StoreUnavailable:
        raise StorageUnavailable() from None


def views_for(message_ids: list[int]) -> dict[int, list[dict]]:
    """Each message's Attachments, in the order they were sent."""
    if not message_ids:
        return {}
    rows = db.session.scalars(
        select(Attachment)
        .where(Attachment.message_id.in_(message_ids))
        .order_by(Attachment.message_id, Attachment.position, Attachment.id)
    ).all()
    found: dict[int, list[dict]] = {}
    for row in rows:
        found.setdefault(row.message_id, []).append(attachment_view(row))
    return found


def incoming_dir() -> str:
    """Where uploads wait while they are judged and stored (UPLOAD_SCRATCH_DIR): one
    folder per upload, removed when it ends; a process killed mid-upload leaves one,
    swept later."""
    return current_app.config["UPLOAD_SCRATCH_DIR"]


def sweep_incoming(older_than: float, folder: str | None = None) -> int:
    """Remove the folders of uploads cut off by a killed process (older than
    `older_than`, a Unix time)."""
    import shutil

    folder = folder or incoming_dir()
    removed = 0
    if not os.path.isdir(folder):
        return 0
    for entry in os.scandir(folder):
        if entry.name.startswith("upload-") and entry.stat().st_mtime < older_than:
            shutil.rmtree(entry.path, ignore_errors=True)
            removed += 1
    return removed


SWEEP_BATCH = 500  # uploads forgotten per pass at most


def sweep(now=None) -> int:
    """Delete uploads never sent within UNSENT_LIFETIME; how many. The rows go first
    (a send that links one meanwhile finds it gone and is refused), then the bytes."""
    now = now or utcnow()
    stale = select(Attachment.id).where(
        Attachment.message_id.is_(None), Attachment.created_at < now - UNSENT_LIFETIME
    )
    with transaction() as session:
        gone = session.execute(
            delete(Attachment)
            .where(Attachment.id.in_(stale.limit(SWEEP_BATCH)), Attachment.message_id.is_(None))
            .returning(Attachment.key, Attachment.thumbnail_key)
        ).all()
    for key, thumbnail_key in gone:
        _forget_keys([key, thumbnail_key])
    return len(gone)


def sweep_orphans(older_than: float) -> int:
    """Delete stored bytes that no row names, written before `older_than` (a Unix
    time): what a process killed between writing a file and committing its row left.
    How many. An hour's margin keeps an upload in progress safe."""
    removed = 0
    batch: list[str] = []

    def settle(keys: list[str]) -> int:
        named = set(
            db.session.scalars(select(Attachment.key).where(Attachment.key.in_(keys)))
        ) | set(
            db.session.scalars(
                select(Attachment.thumbnail_key).where(Attachment.thumbnail_key.in_(keys))
            )
        )
        db.session.rollback()
        orphans = [key for key in keys if key not in named]
        _forget_keys(orphans)
        return len(orphans)

    target = store()  # read here: the pool thread below has no app context
    for key in _on_store(lambda: list(target.keys_older_than(older_than))):
        batch.append(key)
        if len(batch) == 500:
            removed += settle(batch)
            batch = []
    if batch:
        removed += settle(batch)
    return removed


def forget_keys(keys: list[str]) -> None:
    _forget_keys(keys)
