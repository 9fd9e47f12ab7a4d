"""Attachments (issue 21): the upload contract, who may fetch a file, sending files in a
message, and an attacker's files, each refused or served inert."""

from __future__ import annotations

import contextlib
import io
import os
import struct
import tempfile
import zlib
from datetime import timedelta

import pytest
from PIL import Image
from sqlalchemy import func, select, update

from tests.conftest import drain, emit, heard


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(autouse=True)
def work_on_bare_threads(monkeypatch):
    """In these in-process tests (threads, no eventlet or gevent), `off_the_loop` would
    run its function in the caller's own thread, inside the request's app context. The
    server's pool threads have no such context: run the function on a thread of its own
    here too, so a function that reaches for `current_app` there fails here as well."""
    import threading

    import app.services.attachments as service

    def on_a_bare_thread(function, *args):
        out: dict = {}

        def run():
            try:
                out["value"] = function(*args)
            except BaseException as exc:  # noqa: BLE001 (raised again in the caller)
                out["error"] = exc

        worker = threading.Thread(target=run)
        worker.start()
        worker.join()
        if "error" in out:
            raise out["error"]
        return out["value"]

    monkeypatch.setattr(service, "off_the_loop", on_a_bare_thread)


@pytest.fixture
def files(http, users):
    """`files.up(account, data, name)` uploads; `files.get(account, url)` fetches."""

    class Files:
        def up(self, account, data: bytes, name="file.bin"):
            headers = bearer(users.token(account)) if account is not None else {}
            return http.post(
                "/api/attachments",
                data={"file": (io.BytesIO(data), name)},
                headers=headers,
                content_type="multipart/form-data",
            )

        def get(self, account, url):
            headers = bearer(users.token(account)) if account is not None else {}
            return http.get(url, headers=headers)

    return Files()


def picture(fmt="PNG", size=(40, 20), color=(200, 30, 30), exif=None) -> bytes:
    out = io.BytesIO()
    image = Image.new("RGB", size, color)
    options = {"exif": exif} if exif is not None else {}
    image.save(out, fmt, **options)
    return out.getvalue()


def gps_exif(orientation=None) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {1: "N", 2: (37.0, 33.0, 59.0), 3: "E", 4: (126.0, 58.0, 40.0)}  # GPS
    if orientation:
        exif[0x0112] = orientation
    return exif.tobytes()


def count(app, model):
    from app.extensions import db

    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def test_a_picture_is_re_encoded_without_its_metadata_and_with_its_orientation(files, customer):
    jpeg = picture("JPEG", size=(40, 20), exif=gps_exif(orientation=6))
    assert b"PhoneMaker" in jpeg
    answer = files.up(customer, jpeg, "IMG_0001.jpg")
    assert answer.status_code == 201, answer.get_data(True)
    made = answer.json
    assert made == {
        "id": made["id"],
        "name": "IMG_0001.jpg",
        "content_type": "image/jpeg",
        "size": made["size"],
        "kind": "image",
        "width": 20,  # orientation 6: turned a quarter, so 40 × 20 became 20 × 40
        "height": 40,
        "url": f"/attachments/{made['id']}",
        "thumbnail_url": f"/attachments/{made['id']}/thumbnail",
    }
    served = files.get(customer, made["url"])
    assert served.status_code == 200
    assert b"PhoneMaker" not in served.data
    with Image.open(io.BytesIO(served.data)) as again:
        assert again.size == (20, 40)
        assert dict(again.getexif()) == {}, "no EXIF, no GPS"
    assert served.headers["Content-Type"] == "image/jpeg"
    assert served.headers["Content-Disposition"].startswith("inline")
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert served.headers["Cache-Control"].startswith("private")
    assert served.headers["Content-Security-Policy"].startswith("default-src 'none'")
    small = files.get(customer, made["thumbnail_url"])
    assert small.status_code == 200 and small.headers["Content-Type"] == "image/webp"
    with Image.open(io.BytesIO(small.data)) as thumb:
        assert max(thumb.size) <= 480


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP", "animated GIF"])
def test_no_comment_text_chunk_or_colour_profile_survives_re_encoding(files, customer, fmt):
    """Only pixels survive: a comment (JPEG COM, GIF comment blocks), PNG text chunks,
    XMP and an ICC colour profile (arbitrary bytes a sender chose) are gone."""
    from PIL import ImageCms, PngImagePlugin

    secret = b"SECRET-42.5,126.9-<script>alert(1)</script>"
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    image = Image.new("RGB", (64, 48), (10, 200, 30))
    out = io.BytesIO()
    if fmt == "JPEG":
        image.save(out, "JPEG", comment=secret, icc_profile=srgb + secret, xmp=secret)
    elif fmt == "PNG":
        text = PngImagePlugin.PngInfo()
        text.add_text("Comment", secret.decode())
        text.add_itxt("XML:com.adobe.xmp", secret.decode())
        image.save(out, "PNG", pnginfo=text, icc_profile=srgb + secret)
    elif fmt == "WEBP":
        image.save(out, "WEBP", icc_profile=srgb + secret, xmp=secret, exif=gps_exif())
    elif fmt == "GIF":
        image.convert("P").save(out, "GIF", comment=secret)
    else:
        colours = ((255, 0, 0), (0, 255, 0), (0, 0, 255))
        frames = [Image.new("RGB", (64, 48), c).convert("P") for c in colours]
        frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], comment=secret)
    assert secret in out.getvalue()
    name = "a." + ("gif" if "GIF" in fmt else fmt.lower())
    answer = files.up(customer, out.getvalue(), name)
    assert answer.status_code == 201, answer.get_data(True)
    served = files.get(customer, answer.json["url"]).data
    assert secret not in served and b"SECRET-42" not in served
    with Image.open(io.BytesIO(served)) as again:
        assert "comment" not in again.info and "icc_profile" not in again.info
        assert "xmp" not in again.info and "XML:com.adobe.xmp" not in again.info
        assert again.size == (64, 48)
        assert dict(again.getexif()) == {}, "no EXIF"
        if fmt == "animated GIF":
            assert again.n_frames == 3, "the frames are kept"


def test_an_unsent_file_is_its_uploaders_alone_and_a_stranger_gets_404(
    files, users, customer, admin
):
    made = files.up(customer, b"order 4471, lid cracked\n", "note.txt").json
    other = users.make("customer")
    assert files.get(customer, made["url"]).status_code == 200
    for someone in (other, admin, None):
        refused = files.get(someone, made["url"])
        assert refused.status_code == 404, someone
        assert refused.json["error"]["code"] == "not_found"
    assert files.get(customer, "/attachments/999999").status_code == 404
    bad = files.get(None, made["url"]).status_code
    assert bad == 404


def test_files_sent_in_a_message_reach_the_room_in_order_and_no_one_else(
    app, files, users, connect, customer, admin
):
    first = files.up(customer, picture(), "lid.png").json
    second = files.up(
        customer, b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "invoice.pdf"
    ).json
    cust, support = connect(customer), connect(admin)
    drain(cust, support)

    sent = emit(cust, "send_message", {"body": "", "attachments": [second["id"], first["id"]]})

    assert sent["ok"], sent
    message = sent["message"]
    assert message["body"] == ""
    assert [a["id"] for a in message["attachments"]] == [second["id"], first["id"]]
    assert message["attachments"][0] == {**second}  # the same object as the upload's
    [heard_by_team] = heard(support, "new_message")
    assert heard_by_team["attachments"] == message["attachments"]
    page = emit(support, "history", {"room_id": message["room_id"]})
    assert page["messages"][-1]["attachments"] == message["attachments"]
    room = emit(support, "list_rooms", {})["rooms"][0]
    assert room["last_message"]["attachments"] == message["attachments"], "the preview knows"
    assert files.get(admin, second["url"]).status_code == 200
    pdf = files.get(customer, second["url"])
    assert pdf.headers["Content-Type"] == "application/pdf"
    assert pdf.headers["Content-Disposition"].startswith("attachment")
    stranger = users.make("customer")
    assert files.get(stranger, first["url"]).status_code == 404
    assert files.get(stranger, first["thumbnail_url"]).status_code == 404


def test_a_notes_file_is_for_the_team_only(app, files, users, connect, customer, admin):
    """Admins and agents (everyone who sees notes) fetch a note's file; the customer
    gets 404 for it and its thumbnail, and their history carries neither the note nor
    its file."""
    room_id = emit(connect(customer), "send_message", {"body": "hello"})["message"]["room_id"]
    support = connect(admin)
    made = files.up(admin, picture(), "stock.png").json
    note = emit(
        support,
        "send_message",
        {"room_id": room_id, "body": "stock photo", "internal": True, "attachments": [made["id"]]},
    )
    assert note["ok"] and note["message"]["attachments"][0]["id"] == made["id"]
    assert files.get(customer, made["url"]).status_code == 404
    assert files.get(customer, made["thumbnail_url"]).status_code == 404
    assert files.get(admin, made["url"]).status_code == 200
    assert files.get(users.make("agent"), made["url"]).status_code == 200
    customer_page = emit(connect(customer), "history", {"room_id": room_id})
    assert [m["body"] for m in customer_page["messages"]] == ["hello"]
    assert all(not m["attachments"] for m in customer_page["messages"])


@pytest.mark.parametrize("case", ["unknown", "someone else's", "already sent", "twice", "eleven"])
def test_a_send_naming_a_file_it_may_not_is_refused_and_nothing_is_stored(
    app, files, users, connect, customer, case
):
    from app.models import Message

    mine = files.up(customer, b"mine\n", "a.txt").json["id"]
    other = users.make("customer")
    theirs = files.up(other, b"theirs\n", "b.txt").json["id"]
    cust = connect(customer)
    if case == "already sent":
        assert emit(cust, "send_message", {"body": "x", "attachments": [mine]})["ok"]
    before = count(app, Message)
    ids = {
        "unknown": [mine, 987654],
        "someone else's": [mine, theirs],
        "already sent": [mine],
        "twice": [mine, mine],
        "eleven": [mine] + [files.up(customer, b"n\n", f"{n}.txt").json["id"] for n in range(10)],
    }[case]
    answer = emit(cust, "send_message", {"body": "look", "attachments": ids})
    assert answer["error"]["code"] == "validation_error", answer
    assert answer["error"]["field"] == "attachments"
    assert count(app, Message) == before, "nothing stored"
    if case == "someone else's":
        assert files.get(other, f"/attachments/{theirs}").status_code == 200, "still theirs"


def test_a_message_needs_text_or_a_file(connect, customer):
    answer = emit(connect(customer), "send_message", {"body": "   "})
    assert (answer["error"]["code"], answer["error"]["field"]) == ("validation_error", "body")


def test_a_send_with_files_sent_again_is_stored_once(app, files, connect, customer):
    from app.models import Attachment, Message

    made = files.up(customer, picture(), "lid.png").json
    cust = connect(customer)
    payload = {"body": "", "attachments": [made["id"]], "client_id": "retry-1"}
    first = emit(cust, "send_message", payload)["message"]
    again = emit(cust, "send_message", payload)
    assert again["ok"] and again["message"]["id"] == first["id"]
    assert again["message"]["attachments"] == first["attachments"]
    assert count(app, Message) == 1 and count(app, Attachment) == 1


# --- the limits and the store ------------------------------------------------------


def test_too_large_is_413_before_the_body_is_stored(app, files, customer, monkeypatch):
    from app.models import Attachment

    monkeypatch.setitem(app.config, "CHAT_ATTACHMENT_MAX_BYTES", 1000)
    answer = files.up(customer, b"x" * 200_000, "big.txt")
    assert answer.status_code == 413
    assert answer.json["error"]["code"] == "too_large"
    just_over = files.up(customer, b"y" * 1001, "over.txt")
    assert just_over.status_code == 413 and just_over.json["error"]["code"] == "too_large"
    assert count(app, Attachment) == 0


def test_a_type_outside_the_list_is_415_whatever_its_name_says(app, files, customer):
    windows_program = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 200
    answer = files.up(customer, windows_program, "photo.jpg")
    assert answer.status_code == 415
    assert answer.json["error"]["code"] == "unsupported_type"


def form(*parts, boundary="b0undary", close=True) -> bytes:
    """A multipart body by hand: each part (name, filename or None, bytes)."""
    out = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data
        out += b"\r\n"
    return out + (f"--{boundary}--\r\n".encode() if close else b"")


@pytest.mark.parametrize(
    "body, why",
    [
        (form(("file", "a.txt", b"one"), ("file", "b.txt", b"two")), "two files"),
        (form(("note", None, b"just text")), "no file"),
        (form(("file", "a.txt", b"cut off"), close=False), "the body ends mid-form"),
        (form(*[("x", None, b"1")] * 11, ("file", "a.txt", b"hi")), "too many parts"),
        (b"--b0undary\r\nContent-Type: text/plain\r\n\r\nno disposition\r\n", "broken part"),
    ],
    ids=["two-files", "no-file", "cut-off", "eleven-parts", "no-disposition"],
)
def test_a_form_without_exactly_one_file_is_refused_and_nothing_is_kept(
    app, http, users, customer, body, why
):
    from app.models import Attachment

    answer = http.post(
        "/api/attachments",
        data=body,
        headers=bearer(users.token(customer)),
        content_type="multipart/form-data; boundary=b0undary",
    )
    assert answer.status_code == 400, why
    assert answer.json["error"]["code"] == "validation_error", why
    assert count(app, Attachment) == 0
    scratch = app.config["UPLOAD_SCRATCH_DIR"]
    assert not os.path.isdir(scratch) or os.listdir(scratch) == [], why


def test_a_file_beside_other_fields_is_taken(app, http, users, customer):
    caption = ("caption", None, b"the lid " * 20_000)  # never kept
    body = form(caption, ("file", "lid.txt", b"cracked"), ("x", None, b""))
    answer = http.post(
        "/api/attachments",
        data=body,
        headers=bearer(users.token(customer)),
        content_type="multipart/form-data; boundary=b0undary",
    )
    assert answer.status_code == 201, answer.json
    assert (answer.json["name"], answer.json["size"]) == ("lid.txt", 7)
    got = http.get(answer.json["url"], headers=bearer(users.token(customer)))
    assert got.data == b"cracked"


def test_an_upload_budget_per_user(app, files, users, customer, monkeypatch):
    monkeypatch.setitem(app.config, "CHAT_UPLOAD_RATE_LIMIT", "2 per 3600 second")
    assert files.up(customer, b"1\n", "1.txt").status_code == 201
    assert files.up(customer, b"2\n", "2.txt").status_code == 201
    third = files.up(customer, b"3\n", "3.txt")
    assert third.status_code == 429 and third.json["error"]["code"] == "rate_limited"
    assert files.up(users.make("customer"), b"4\n", "4.txt").status_code == 201, "others upload"


def test_an_upload_budget_in_bytes_per_user(app, files, users, customer, monkeypatch):
    monkeypatch.setitem(app.config, "CHAT_UPLOAD_BYTES_PER_HOUR", 100)
    assert files.up(customer, b"a" * 59 + b"\n", "1.txt").status_code == 201
    assert files.up(customer, b"b" * 59 + b"\n", "2.txt").status_code == 201  # 120 of 100 now
    third = files.up(customer, b"c\n", "3.txt")
    assert third.status_code == 429 and third.json["error"]["code"] == "rate_limited"
    assert files.up(users.make("customer"), b"d\n", "4.txt").status_code == 201, "others upload"


def test_a_store_that_cannot_be_written_is_503_and_the_chat_goes_on(
    app, files, connect, customer, tmp_path
):
    from app.attachments.storage import FolderStore

    working = app.extensions["chat_attachment_store"]
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    app.extensions["chat_attachment_store"] = FolderStore(str(blocker / "attachments"))
    try:
        answer = files.up(customer, b"hello\n", "a.txt")
        assert answer.status_code == 503
        assert answer.json["error"]["code"] == "storage_unavailable"
        assert emit(connect(customer), "send_message", {"body": "text still works"})["ok"]
    finally:
        app.extensions["chat_attachment_store"] = working
    assert files.up(customer, b"hello\n", "a.txt").status_code == 201, "back without a restart"


def test_uploads_take_turns_with_their_chunks_and_one_kept_waiting_is_503(
    app, files, customer, monkeypatch
):
    """Each chunk of an upload is split and written in the process's one receive turn
    (ten uploads at once leave the event loop a poll between any two chunks). An upload
    that cannot get the turn in time is a 503, and nothing of it is kept."""
    import app.attachments as routes
    from app.models import Attachment

    turn = app.extensions["chat_receive_turn"]
    scratch = app.config["UPLOAD_SCRATCH_DIR"]
    monkeypatch.setattr(routes, "TURN_WAIT", 0.2)
    assert turn.acquire(timeout=1.0)
    try:
        answer = files.up(customer, b"waiting for its turn\n", "a.txt")
    finally:
        turn.release()
    assert answer.status_code == 503
    assert answer.json["error"]["code"] == "storage_unavailable"
    assert count(app, Attachment) == 0
    assert not os.path.isdir(scratch) or os.listdir(scratch) == [], "its scratch folder went"
    assert files.up(customer, b"its turn\n", "a.txt").status_code == 201
    assert turn.acquire(timeout=0.0), "the turn is given back after every chunk"
    turn.release()


def age_past_a_day(app, attachment_id: int) -> None:
    """Make an upload look 25 hours old."""
    from app.database import transaction
    from app.models import Attachment, utcnow

    with app.app_context(), transaction() as session:
        session.execute(
            update(Attachment)
            .where(Attachment.id == attachment_id)
            .values(created_at=utcnow() - timedelta(hours=25))
        )


def test_an_upload_never_sent_is_deleted_after_a_day(app, files, customer):
    from app.models import Attachment
    from app.services.attachments import sweep

    old = files.up(customer, b"old\n", "old.txt").json
    fresh = files.up(customer, b"fresh\n", "fresh.txt").json
    age_past_a_day(app, old["id"])
    with app.app_context():
        from app.extensions import db

        key = db.session.get(Attachment, old["id"]).key
        assert sweep() == 1
    assert files.get(customer, old["url"]).status_code == 404
    assert files.get(customer, fresh["url"]).status_code == 200
    assert not os.path.exists(os.path.join(os.environ["ATTACHMENT_DIR"], key[:2], key))


def test_a_customer_deleted_by_the_operator_takes_their_conversation_and_files(
    app, files, connect, http, users, customer, admin
):
    """`flask delete-customer` (a request to be forgotten): the account, the conversation
    and every file in it, the team's too, are gone; their token is dead. It asks first,
    and refuses a team member."""
    from app.models import Attachment, ChatRoom, Message, RoomEvent

    mine = files.up(customer, picture(), "lid.png").json
    room_id = emit(connect(customer), "send_message", {"body": "", "attachments": [mine["id"]]})[
        "message"
    ]["room_id"]
    reply = files.up(admin, b"label\n", "label.txt").json
    emit(
        connect(admin),
        "send_message",
        {"room_id": room_id, "body": "", "attachments": [reply["id"]]},
    )
    assert emit(connect(admin), "assign", {"room_id": room_id, "agent_id": admin.id})["ok"]
    other = users.make("customer")  # their conversation stays
    other_file = files.up(other, b"mine\n", "mine.txt").json
    other_room = emit(
        connect(other), "send_message", {"body": "hi", "attachments": [other_file["id"]]}
    )["message"]["room_id"]
    keys = keys_in(app)
    with app.app_context():
        from app.extensions import db

        assert room_id in db.session.scalars(select(RoomEvent.room_id)).all()
    token = users.token(customer)
    runner = app.test_cli_runner()

    kept = runner.invoke(args=["delete-customer", "--email", customer.email], input="n\n")
    assert kept.exit_code == 1 and "their conversation (2 messages)" in kept.output
    assert count(app, Attachment) == 3 and files.get(admin, reply["url"]).status_code == 200
    staff = runner.invoke(args=["delete-customer", "--email", admin.email, "--yes"])
    assert staff.exit_code == 1 and "deactivate them" in staff.output
    unknown = runner.invoke(args=["delete-customer", "--email", "nobody@example.com", "--yes"])
    assert unknown.exit_code == 1 and "No such customer" in unknown.output

    gone = runner.invoke(args=["delete-customer", "--email", customer.email, "--yes"])
    assert gone.exit_code == 0, gone.output
    assert count(app, Attachment) == 1 and count(app, Message) == 1 and count(app, ChatRoom) == 1
    with app.app_context():
        from app.extensions import db

        left = db.session.scalars(select(RoomEvent.room_id)).all()
    assert room_id not in left, "the conversation's events went with it"
    root = os.environ["ATTACHMENT_DIR"]
    gone = [k for k in keys if k not in keys_in(app)]
    assert len(gone) == 3 and not any(os.path.exists(os.path.join(root, k[:2], k)) for k in gone)
    assert files.get(other, other_file["url"]).data == b"mine\n"
    assert emit(connect(other), "history", {"room_id": other_room})["messages"][0]["body"] == "hi"
    assert files.get(admin, reply["url"]).status_code == 404
    assert http.get("/api/me", headers=bearer(token)).status_code == 401, "their token is dead"


# --- an attacker's files -----------------------------------------------------------


def test_an_svg_with_a_script_is_a_plain_text_download(files, customer):
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.cookie)</script></svg>'
    made = files.up(customer, svg, "cute.svg").json
    assert (made["content_type"], made["kind"]) == ("text/plain", "file")
    served = files.get(customer, made["url"])
    assert served.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert served.headers["Content-Disposition"].startswith("attachment")
    assert served.headers["X-Content-Type-Options"] == "nosniff"


def test_html_named_png_is_a_plain_text_download(files, customer):
    made = files.up(customer, b"<html><script>alert(1)</script></html>", "photo.png").json
    assert (made["content_type"], made["kind"]) == ("text/plain", "file")
    served = files.get(customer, made["url"])
    assert "html" not in served.headers["Content-Type"]
    assert served.headers["Content-Disposition"].startswith("attachment")


def test_a_gif_that_is_also_javascript_is_re_encoded_into_a_gif_only(files, customer):
    gif = picture("GIF", size=(8, 8))
    polyglot = gif + b"\n/*" + b"*/=1;alert(document.domain);//"
    made = files.up(customer, polyglot, "funny.gif").json
    assert (made["content_type"], made["kind"]) == ("image/gif", "image")
    served = files.get(customer, made["url"]).data
    assert b"alert" not in served
    with Image.open(io.BytesIO(served)) as again:
        assert again.format == "GIF" and again.size == (8, 8)


def huge_png(width=50_000, height=50_000) -> bytes:
    """A real PNG's bytes with a header that claims `width` × `height` pixels."""
    small = picture("PNG", size=(1, 1))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    return (
        small[:8]
        + struct.pack(">I", 13)
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
        + small[33:]
    )


@pytest.mark.parametrize("side", [50_000, 10_000])
def test_a_decompression_bomb_is_415_without_decoding_it(app, files, customer, side):
    """Pixels are counted from the header: 50,000² is past Pillow's own refusal (twice
    `Image.MAX_IMAGE_PIXELS`), 10,000² between the two, where Pillow only warns."""
    from app.models import Attachment

    answer = files.up(customer, huge_png(side, side), "bomb.png")
    assert answer.status_code == 415 and answer.json["error"]["code"] == "unsupported_type"
    assert "too many pixels" in answer.json["error"]["message"]
    assert count(app, Attachment) == 0


def test_a_zip_bomb_is_stored_as_an_inert_download_and_never_opened(files, customer):
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.bin", b"\x00" * 50_000_000)  # 50 MB of zeros, ~50 KB packed
    packed = out.getvalue()
    assert len(packed) < 200_000
    made = files.up(customer, packed, "bomb.zip").json
    assert (made["content_type"], made["size"]) == ("application/zip", len(packed))
    served = files.get(customer, made["url"])
    assert served.headers["Content-Disposition"].startswith("attachment")
    assert served.data == packed


def test_names_lose_their_folders_and_their_invisible_characters(files, customer):
    assert files.up(customer, b"x\n", "../../etc/passwd").json["name"] == "passwd"
    assert files.up(customer, b"x\n", "..\\..\\boot.ini").json["name"] == "boot.ini"
    sneaky = "invoice\u202egpj.exe\u200b.txt"  # reads as "invoiceexe.jpg" with the override
    assert files.up(customer, b"x\n", sneaky).json["name"] == "invoicegpj.exe.txt"
    korean = files.up(customer, b"x\n", "주문서.txt")
    assert korean.json["name"] == "주문서.txt"
    served = files.get(customer, korean.json["url"])
    assert (
        "filename*=UTF-8''%EC%A3%BC%EB%AC%B8%EC%84%9C.txt" in served.headers["Content-Disposition"]
    )


# --- the same promises on each store: a folder, and a real S3 server ---------------


class Forwarder:
    """A TCP port that refuses connections until `start()`, then forwards them to
    `target`: an S3 server that is down, then back, at the same address."""

    def __init__(self, target_port: int):
        import socket

        self.target_port = target_port
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.server = None

    def start(self):
        import socket
        import threading

        self.server = socket.create_server(("127.0.0.1", self.port))

        def pipe(a, b):
            try:
                while data := a.recv(65536):
                    b.sendall(data)
            except OSError:
                pass
            finally:
                for s in (a, b):
                    with contextlib.suppress(OSError):
                        s.shutdown(socket.SHUT_RDWR)

        def serve():
            while True:
                try:
                    client, _ = self.server.accept()
                except OSError:
                    return
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
                threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
                threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()

        threading.Thread(target=serve, daemon=True).start()

    def stop(self):
        if self.server is not None:
            self.server.close()


@pytest.fixture(params=["folder", "s3"])
def each_store(request, app, tmp_path):
    """The app's attachment store for one test: a folder, or a bucket on a real S3
    server (SeaweedFS); `each_store.holds(key)` says whether the store has the key."""
    import uuid

    from app.attachments.storage import FolderStore, S3Store

    if request.param == "folder":
        store = FolderStore(str(tmp_path / "files"))
    else:
        endpoint = request.getfixturevalue("s3_endpoint")
        bucket = "chat-" + uuid.uuid4().hex[:12]
        store = S3Store(f"s3://{bucket}/attachments", endpoint, "us-east-1")
        store.client.create_bucket(Bucket=bucket)

    def holds(key):
        try:
            chunks, _ = store.stream(key)
            b"".join(chunks)
            return True
        except KeyError:
            return False

    store.holds = holds
    store.kind = request.param
    working = app.extensions["chat_attachment_store"]
    app.extensions["chat_attachment_store"] = store
    yield store
    app.extensions["chat_attachment_store"] = working


def keys_in(app):
    from app.extensions import db
    from app.models import Attachment

    with app.app_context():
        rows = db.session.execute(select(Attachment.key, Attachment.thumbnail_key)).all()
        return [k for row in rows for k in row if k]


def test_each_store_keeps_serves_sweeps_and_forgets(app, files, connect, customer, each_store):
    from app.services.attachments import sweep
    from app.services.users import delete_user

    photo = files.up(customer, picture("JPEG", size=(30, 30)), "lid.jpg").json
    served = files.get(customer, photo["url"])
    assert served.status_code == 200 and served.data[:2] == b"\xff\xd8"
    assert files.get(customer, photo["thumbnail_url"]).status_code == 200
    emit(connect(customer), "send_message", {"body": "", "attachments": [photo["id"]]})
    stale = files.up(customer, b"never sent\n", "draft.txt").json
    age_past_a_day(app, stale["id"])
    stale_key = keys_in(app)[-1]
    assert each_store.holds(stale_key)
    with app.app_context():
        assert sweep() == 1
    assert not each_store.holds(stale_key), "an unsent upload's bytes go after a day"
    kept = keys_in(app)
    assert len(kept) == 2 and all(each_store.holds(k) for k in kept)
    with app.app_context():
        delete_user(customer.id)
    assert not any(each_store.holds(k) for k in kept), "a deleted customer's files go"


def test_a_store_that_is_down_answers_503_and_works_again_without_a_restart(
    app, files, connect, customer, each_store
):
    from app.attachments.storage import S3Store

    if each_store.kind == "folder":
        root = each_store.root
        os.makedirs(os.path.dirname(root), exist_ok=True)
        open(root, "w").close()  # a file where the folder should be: every write fails
        down, back = (lambda: None), (lambda: os.unlink(root))
    else:
        forwarder = Forwarder(int(each_store.client.meta.endpoint_url.rsplit(":", 1)[1]))
        bucket = each_store.bucket
        app.extensions["chat_attachment_store"] = S3Store(
            f"s3://{bucket}/attachments", f"http://127.0.0.1:{forwarder.port}", "us-east-1"
        )
        down, back = (lambda: None), forwarder.start
    down()
    refused = files.up(customer, b"hello\n", "a.txt")
    assert refused.status_code == 503, refused.get_data(True)
    assert refused.json["error"]["code"] == "storage_unavailable"
    assert emit(connect(customer), "send_message", {"body": "text still goes"})["ok"]
    back()
    again = files.up(customer, b"hello\n", "a.txt")
    assert again.status_code == 201, again.get_data(True)
    assert files.get(customer, again.json["url"]).data == b"hello\n"
    if each_store.kind == "s3":
        forwarder.stop()


def test_two_sends_racing_for_one_file_never_both_carry_it(app, files, connect, customer):
    import threading

    from app.models import Attachment, Message

    tabs = [connect(customer), connect(customer)]
    emit(tabs[0], "send_message", {"body": "the room exists"})
    for round_ in range(10):
        made = files.up(customer, b"one file\n", f"{round_}.txt").json["id"]
        answers = [None, None]
        start = threading.Barrier(2)

        def send(n, start, made, answers):
            start.wait()
            payload = {"body": f"tab {n}", "attachments": [made]}
            answers[n] = emit(tabs[n], "send_message", payload)

        threads = [threading.Thread(target=send, args=(n, start, made, answers)) for n in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        outcomes = sorted("ok" if a["ok"] else a["error"]["code"] for a in answers)
        assert outcomes == ["ok", "validation_error"], answers
    from app.extensions import db

    with app.app_context():
        carried = db.session.scalars(select(Message.attachment_count)).all()
        assert sorted(carried) == [0] + [1] * 10
        assert (
            db.session.scalar(
                select(func.count()).select_from(Attachment).where(Attachment.message_id.is_(None))
            )
            == 0
        )


def test_an_animation_of_many_frames_on_a_large_canvas_is_415(app, files, customer):
    """Each frame decodes at the full canvas: 50 frames of 1,500 × 1,500 would be 112
    million pixels (450 MB) from a file of a few kilobytes."""
    from app.models import Attachment

    frames = [Image.new("P", (1500, 1500), n % 2) for n in range(50)]
    for n, frame in enumerate(frames):
        frame.putpixel((n, n), 1 - n % 2)
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], loop=0)
    assert len(out.getvalue()) < 300_000
    answer = files.up(customer, out.getvalue(), "spinner.gif")
    assert answer.status_code == 415 and answer.json["error"]["code"] == "unsupported_type"
    assert count(app, Attachment) == 0


def test_bytes_no_row_names_are_swept_and_named_ones_kept(app, files, customer, each_store):
    """A process killed between writing a file and committing its row leaves bytes
    nobody can reach: the daily sweep removes them (here as if an hour had passed)."""
    import time as clock

    from app.attachments.storage import new_key
    from app.services.attachments import sweep_orphans

    kept = files.up(customer, picture(), "kept.png").json
    orphan = new_key()
    each_store.put(orphan, io.BytesIO(b"left by a killed process"), 24)
    assert each_store.holds(orphan)
    with app.app_context():
        assert sweep_orphans(clock.time() + 10) == 1
    assert not each_store.holds(orphan)
    assert all(each_store.holds(k) for k in keys_in(app)) and len(keys_in(app)) == 2
    assert files.get(customer, kept["url"]).status_code == 200


def test_a_folder_store_moves_a_finished_file_in_and_copies_it_across_file_systems(tmp_path):
    """An upload's scratch file becomes the stored file by a rename (no second copy of
    its bytes); where the scratch folder is on another file system, by a copy."""
    from app.attachments.storage import FolderStore

    store = FolderStore(str(tmp_path / "files"))
    body = os.urandom(300 * 1024)
    scratch = tmp_path / "scratch.bin"
    scratch.write_bytes(body)
    inode = scratch.stat().st_ino
    store.put_file("ab12", str(scratch), len(body))
    assert not scratch.exists()
    chunks, size = store.stream("ab12")
    assert size == len(body) and b"".join(chunks) == body
    assert os.stat(store._path("ab12")).st_ino == inode  # the same file, not a copy

    other = "/dev/shm"
    if not os.path.isdir(other) or os.stat(other).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs a second file system (/dev/shm) for the copy across devices")
    elsewhere = tempfile.NamedTemporaryFile(dir=other, delete=False)  # noqa: SIM115
    elsewhere.write(body)
    elsewhere.close()
    try:
        store.put_file("cd34", elsewhere.name, len(body))
        chunks, size = store.stream("cd34")
        assert size == len(body) and b"".join(chunks) == body
        assert os.stat(store._path("cd34")).st_dev == os.stat(tmp_path).st_dev
    finally:
        if os.path.exists(elsewhere.name):
            os.unlink(elsewhere.name)


# --- the rest of the contract --------------------------------------------------------


def test_a_picture_that_does_not_decode_is_415(files, customer, app):
    from app.models import Attachment

    broken = picture("JPEG")[:200] + b"\x00" * 500  # a JPEG's start, then nothing it can read
    answer = files.up(customer, broken, "broken.jpg")
    assert answer.status_code == 415 and answer.json["error"]["code"] == "unsupported_type"
    assert count(app, Attachment) == 0


def test_an_upload_needs_a_token_or_the_cookie_with_its_csrf_header(app, http, customer):
    from app.models import Attachment
    from tests.integration.test_pages import log_in

    def up(headers=None):
        return http.post(
            "/api/attachments",
            data={"file": (io.BytesIO(b"hello\n"), "a.txt")},
            headers=headers or {},
            content_type="multipart/form-data",
        )

    nobody = up()
    assert nobody.status_code == 401 and nobody.json["error"]["code"] == "unauthorized"
    assert log_in(http, customer).status_code == 302  # the page's HttpOnly cookies
    csrf = http.get_cookie("csrf_access_token").value
    forged = up()  # what another site's form could send: the cookie, no header
    assert forged.status_code == 401 and count(app, Attachment) == 0
    wrong = up({"X-CSRF-TOKEN": "not-" + csrf})
    assert wrong.status_code == 401 and count(app, Attachment) == 0
    page = up({"X-CSRF-TOKEN": csrf})
    assert page.status_code == 201, page.get_data(True)
    assert count(app, Attachment) == 1


def office_file(kind: str) -> bytes:
    """A minimal file of each container format, as the programs write them."""
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        if kind == "odt":
            z.writestr(
                zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.text"
            )  # first and stored, as ODF asks
            z.writestr("content.xml", "<office:document-content/>")
        else:
            z.writestr("[Content_Types].xml", "<Types/>")
            part = {"docx": "word/document.xml", "xlsx": "xl/workbook.xml"}[kind]
            z.writestr(part, "<x/>")
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("letter.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        ("sheet.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        ("letter.odt", "application/vnd.oasis.opendocument.text"),
        ("orders.csv", "text/csv"),
    ],
)
def test_office_opendocument_and_csv_files_are_taken_as_downloads(files, customer, name, expected):
    data = b"order,qty\n1042,2\n" if name.endswith(".csv") else office_file(name.split(".")[1])
    made = files.up(customer, data, name)
    assert made.status_code == 201, made.get_data(True)
    assert (made.json["content_type"], made.json["kind"]) == (expected, "file")
    served = files.get(customer, made.json["url"])
    assert served.data == data
    assert served.headers["Content-Disposition"].startswith("attachment")
    assert served.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert served.headers["Cross-Origin-Resource-Policy"] == "same-origin"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert served.headers["Cache-Control"].startswith("private")


def test_a_download_while_the_store_is_down_is_503_and_works_again(app, files, customer, tmp_path):
    from app.attachments.storage import FolderStore

    made = files.up(customer, b"kept safe\n", "a.txt").json
    working = app.extensions["chat_attachment_store"]
    unreadable = tmp_path / "unreadable"
    unreadable.write_text("a file where the store's folder should be")
    app.extensions["chat_attachment_store"] = FolderStore(str(unreadable))
    try:
        down = files.get(customer, made["url"])
    finally:
        app.extensions["chat_attachment_store"] = working
    assert down.status_code == 503 and down.json["error"]["code"] == "storage_unavailable"
    assert files.get(customer, made["url"]).data == b"kept safe\n"


def test_stored_files_are_readable_by_the_server_alone(app, files, customer):
    """A file moved in from the scratch folder keeps the mode it was written with: the
    server's own (0600), like a picture written by the store itself."""
    files.up(customer, b"private\n", "a.txt")
    files.up(customer, picture(), "b.png")
    root = os.environ["ATTACHMENT_DIR"]
    modes = {oct(os.stat(os.path.join(root, k[:2], k)).st_mode & 0o777) for k in keys_in(app)}
    assert modes == {"0o600"}
