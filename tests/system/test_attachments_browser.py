"""Files in the conversation, in Debian's Chromium against `python wsgi.py`: attach by
button, drop and paste, a progress bar that moves, the thumbnail and the viewer, a file
card, both directions, and a note's file that never reaches the customer."""

from __future__ import annotations

import base64
import io
import os

import pytest
from PIL import Image

from tests.system.conftest import CHROMIUM
from tests.system.test_pages_browser import log_in

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="needs the playwright package (pip install playwright)"
)
if not os.path.exists(CHROMIUM):
    pytest.skip(f"needs Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


def png(size=(64, 48), color=(30, 120, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"

# Drop or paste a file the way a browser does: a DataTransfer holding a File.
DROP = """([selector, name, type, b64]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const data = new DataTransfer();
  data.items.add(new File([bytes], name, { type }));
  const target = document.querySelector(selector);
  for (const kind of ["dragenter", "dragover", "drop"]) {
    const options = { dataTransfer: data, bubbles: true, cancelable: true };
    target.dispatchEvent(new DragEvent(kind, options));
  }
}"""
PASTE = """([name, type, b64]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const data = new DataTransfer();
  data.items.add(new File([bytes], name, { type }));
  const input = document.querySelector("#composer-input");
  const options = { clipboardData: data, bubbles: true, cancelable: true };
  input.dispatchEvent(new ClipboardEvent("paste", options));
}"""


# A link's bytes as the page's own cookie fetches them, in base64.
FETCH_B64 = """(url) => fetch(url).then((r) => r.arrayBuffer())
  .then((b) => btoa(String.fromCharCode(...new Uint8Array(b))))"""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def open_room(support, name):
    support.locator(".rooms li .room", has_text=name).click()
    support.locator("#composer-send:not([disabled])").wait_for(timeout=15000)


def test_files_go_both_ways_by_button_drop_and_paste(browser, live, users):
    live.register_and_login("files@example.com", "Fia Files")
    admin = users.make("admin", name="Ada Admin")
    customer = log_in(browser, live, "files@example.com", "correct horse battery")

    # The paperclip: a picture, uploaded, waiting as a chip, then sent with the text.
    customer.set_input_files(
        "#attach-input", files=[{"name": "lid.png", "mimeType": "image/png", "buffer": png()}]
    )
    customer.locator("#attachment-tray .chip.done").wait_for(timeout=15000)
    customer.fill("#composer-input", "the cracked lid")
    customer.press("#composer-input", "Enter")
    mine = customer.locator("#message-list .message[data-id] .files img")
    mine.wait_for(timeout=15000)
    assert customer.locator("#attachment-tray").is_hidden()
    customer.wait_for_function(
        "() => document.querySelector('#message-list .files img').naturalWidth > 0"
    )

    support = log_in(browser, live, admin.email, admin.password)
    support.locator(".room-preview", has_text="the cracked lid").wait_for(timeout=15000)
    open_room(support, "Fia Files")
    thumb = support.locator("#message-list .files img")
    thumb.wait_for(timeout=15000)
    support.wait_for_function(
        "() => document.querySelector('#message-list .files img').naturalWidth > 0"
    )

    # Drop a PDF onto the conversation; it goes alone, with no text.
    support.evaluate(DROP, ["#conversation", "label.pdf", "application/pdf", b64(PDF)])
    support.locator("#attachment-tray .chip.done").wait_for(timeout=15000)
    support.press("#composer-input", "Enter")
    card = customer.locator("#message-list .file-card", has_text="label.pdf")
    card.wait_for(timeout=15000)
    assert card.get_attribute("download") == "label.pdf"
    assert base64.b64decode(customer.evaluate(FETCH_B64, card.get_attribute("href"))) == PDF
    support.locator(".room-preview", has_text="📎 label.pdf").wait_for(timeout=15000)

    # Paste a picture into the customer's message box.
    customer.evaluate(PASTE, ["", "image/png", b64(png(color=(200, 60, 60)))])
    customer.locator("#attachment-tray .chip.done").wait_for(timeout=15000)
    customer.press("#composer-input", "Enter")
    support.locator("#message-list .files img").nth(1).wait_for(timeout=15000)
    support.locator(".room-preview", has_text="📎 Photo").wait_for(timeout=15000)

    # The viewer: full size, arrows, Esc.
    support.locator("#message-list .thumb").first.click()
    viewer = support.locator("dialog.viewer")
    viewer.wait_for(state="visible")
    support.wait_for_function("() => document.querySelector('.viewer-image').naturalWidth === 64")
    assert "(1 of 2)" in support.text_content(".viewer-caption")
    support.keyboard.press("ArrowRight")
    support.locator(".viewer-caption", has_text="(2 of 2)").wait_for()
    support.keyboard.press("Escape")
    viewer.wait_for(state="hidden")
    assert customer.errors == [] and support.errors == []


def test_a_notes_file_never_reaches_the_customers_page_or_url(browser, live, users):
    token = live.register_and_login("notefile@example.com", "Nia Note")["access_token"]
    client = live.client(token)
    assert client.call("send_message", {"body": "hello"}, namespace="/chat")["ok"]
    client.disconnect()
    admin = users.make("admin", name="Ada Admin")
    support = log_in(browser, live, admin.email, admin.password)
    open_room(support, "Nia Note")
    support.click("#mode-note")
    support.set_input_files(
        "#attach-input", files=[{"name": "stock.png", "mimeType": "image/png", "buffer": png()}]
    )
    support.locator("#attachment-tray .chip.done").wait_for(timeout=15000)
    support.fill("#composer-input", "photo of the stock")
    support.press("#composer-input", "Enter")
    support.locator("#message-list .message.note[data-id] .files img").wait_for(timeout=15000)
    url = support.get_attribute("#message-list .message.note .files img", "data-full")

    customer = log_in(browser, live, "notefile@example.com", "correct horse battery")
    customer.locator("#message-list .body", has_text="hello").wait_for(timeout=15000)
    assert customer.locator("#message-list .files").count() == 0
    assert support.errors == [] and customer.errors == []
    fetched = customer.evaluate("(url) => fetch(url).then((r) => r.status)", url)
    assert fetched == 404, "the customer's own cookie cannot fetch a note's file"


def test_a_progress_bar_moves_and_a_too_large_file_is_refused_before_uploading(
    browser, live, users
):
    live.register_and_login("slow@example.com", "Sol Slow")
    customer = log_in(browser, live, "slow@example.com", "correct horse battery")
    sent = []
    customer.on("request", lambda r: r.url.endswith("/api/attachments") and sent.append(r.url))
    big = b"x" * (21 * 1024 * 1024)
    customer.set_input_files(
        "#attach-input", files=[{"name": "huge.txt", "mimeType": "text/plain", "buffer": big}]
    )
    chip = customer.locator("#attachment-tray .chip.failed")
    chip.wait_for(timeout=15000)
    assert "That file is 21 MB; the limit is 20 MB." in chip.text_content()
    assert sent == [], "refused without uploading"
    chip.locator(".chip-remove").click()
    # A type outside the server's CHAT_ATTACHMENT_TYPES (given to the page) is said too.
    program = {"name": "setup.exe", "mimeType": "application/x-msdownload", "buffer": b"MZ" * 50}
    customer.set_input_files("#attach-input", files=[program])
    chip = customer.locator("#attachment-tray .chip.failed")
    chip.wait_for(timeout=15000)
    assert "Files of that type can't be sent" in chip.text_content()
    assert sent == [], "refused without uploading"
    chip.locator(".chip-remove").click()

    cdp = customer.context.new_cdp_session(customer)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 20, "downloadThroughput": -1, "uploadThroughput": 400_000},
    )
    customer.set_input_files(
        "#attach-input",
        files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"a line\n" * 300_000}],
    )
    customer.wait_for_function(
        "() => { const p = document.querySelector('#attachment-tray progress');"
        " return p && p.value > 0 && p.value < 100; }",
        timeout=15000,
    )
    assert customer.locator("#composer-send").is_disabled(), "no send while a file uploads"
    customer.locator("#attachment-tray .chip.done").wait_for(timeout=60000)
    assert customer.locator("#composer-send").is_enabled()
    assert customer.errors == []


def test_a_message_with_files_sent_while_offline_goes_out_once_with_them(browser, database_url):
    import signal

    from sqlalchemy import create_engine, text

    from tests.live import LiveServer

    server = LiveServer(database_url, "eventlet")
    engine = create_engine(database_url)
    try:
        server.start()
        server.register_and_login("offfiles@example.com", "Oli Offline")
        customer = log_in(browser, server, "offfiles@example.com", "correct horse battery")
        customer.set_input_files(
            "#attach-input", files=[{"name": "lid.png", "mimeType": "image/png", "buffer": png()}]
        )
        customer.locator("#attachment-tray .chip.done").wait_for(timeout=15000)
        server.signal(signal.SIGKILL)
        server.wait_exit(timeout=10)
        customer.locator("#offline-banner").wait_for(state="visible", timeout=15000)
        customer.fill("#composer-input", "sent while offline, with a photo")
        customer.press("#composer-input", "Enter")
        waiting = customer.locator("#message-list .message.pending", has_text="while offline")
        waiting.wait_for(timeout=5000)
        assert waiting.locator(".files img").count() == 1, "the pending bubble shows the file"

        server.start()
        stored = customer.locator("#message-list .message[data-id]", has_text="while offline")
        stored.wait_for(timeout=30000)
        stored.locator(".files img").wait_for(timeout=15000)
        with engine.connect() as db:
            rows = (
                db.execute(text("SELECT attachment_count FROM messages ORDER BY id"))
                .scalars()
                .all()
            )
            linked = db.execute(
                text("SELECT count(*) FROM attachments WHERE message_id IS NOT NULL")
            ).scalar()
        assert rows == [1] and linked == 1, "stored once, with its file"
        assert customer.errors == [] or all("Failed to load" in e for e in customer.errors)
    finally:
        engine.dispose()
        server.close()


def test_an_upload_can_be_cancelled_and_a_stopped_one_retried(browser, live):
    live.register_and_login("retry@example.com", "Rae Retry")
    customer = log_in(browser, live, "retry@example.com", "correct horse battery")
    cdp = customer.context.new_cdp_session(customer)
    cdp.send("Network.enable")
    slow = {"offline": False, "latency": 20, "downloadThroughput": -1, "uploadThroughput": 200_000}
    cdp.send("Network.emulateNetworkConditions", slow)
    body = b"a line of text\n" * 200_000  # 3 MB: about 15 s at this speed
    customer.set_input_files(
        "#attach-input", files=[{"name": "cancel-me.txt", "mimeType": "text/plain", "buffer": body}]
    )
    customer.wait_for_function(
        "() => (document.querySelector('#attachment-tray progress') || {}).value > 0",
        timeout=15000,
    )
    customer.locator("#attachment-tray .chip-remove").click()
    assert customer.locator("#attachment-tray .chip").count() == 0
    assert customer.locator("#attachment-tray").is_hidden()
    assert customer.locator("#composer-send").is_enabled(), "nothing is waiting any more"

    fast = {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
    cdp.send("Network.emulateNetworkConditions", fast)
    # The connection drops under the upload: the request fails without an answer.
    customer.route("**/api/attachments", lambda route: route.abort("connectionreset"))
    customer.set_input_files(
        "#attach-input", files=[{"name": "retry-me.txt", "mimeType": "text/plain", "buffer": body}]
    )
    failed = customer.locator("#attachment-tray .chip.failed")
    failed.wait_for(timeout=15000)
    assert "check the connection" in failed.text_content()
    assert customer.locator("#composer-send").is_enabled()
    customer.unroute("**/api/attachments")
    failed.locator("button", has_text="Retry").click()
    customer.locator("#attachment-tray .chip.done").wait_for(timeout=30000)
    customer.press("#composer-input", "Enter")
    customer.locator(
        "#message-list .message[data-id] .file-card", has_text="retry-me.txt"
    ).wait_for(timeout=15000)


def test_the_paperclip_drop_and_paste_on_the_other_sides_and_in_a_note(browser, live, users):
    """What the first test does on one side, here on the other: the customer clicks the
    paperclip (the browser's file chooser) and drops a file; the agent pastes one into a
    reply and drops one into a note. The card's link gives the file's own bytes; the
    viewer goes back with the left arrow."""
    live.register_and_login("sides@example.com", "Sid Sides")
    agent = users.make("agent", name="Ana Agent")
    customer = log_in(browser, live, "sides@example.com", "correct horse battery")

    with customer.expect_file_chooser() as chooser:
        customer.click("#attach")
    chooser.value.set_files(files=[{"name": "lid.png", "mimeType": "image/png", "buffer": png()}])
    customer.locator("#attachment-tray .chip.done").wait_for(timeout=15000)
    customer.evaluate(DROP, ["#conversation", "receipt.pdf", "application/pdf", b64(PDF)])
    customer.locator("#attachment-tray .chip.done").nth(1).wait_for(timeout=15000)
    customer.fill("#composer-input", "lid and receipt")
    customer.press("#composer-input", "Enter")
    customer.locator("#message-list .message[data-id] .file-card").wait_for(timeout=15000)

    support = log_in(browser, live, agent.email, agent.password)
    open_room(support, "Sid Sides")
    card = support.locator("#message-list .file-card", has_text="receipt.pdf")
    card.wait_for(timeout=15000)
    fetched = support.evaluate(FETCH_B64, card.get_attribute("href"))
    assert base64.b64decode(fetched) == PDF, "the card's link gives the file itself"

    support.evaluate(PASTE, ["", "image/png", b64(png(color=(20, 160, 60)))])
    support.locator("#attachment-tray .chip.done").wait_for(timeout=15000)
    support.press("#composer-input", "Enter")
    customer.locator("#message-list .files img").nth(1).wait_for(timeout=15000)

    support.click("#mode-note")
    support.evaluate(DROP, ["#conversation", "stock.csv", "text/csv", b64(b"sku,left\nlid,0\n")])
    support.locator("#attachment-tray .chip.done").wait_for(timeout=15000)
    support.fill("#composer-input", "none left")
    support.press("#composer-input", "Enter")
    note = support.locator("#message-list .message.note[data-id] .file-card", has_text="stock.csv")
    note.wait_for(timeout=15000)
    support.click("#mode-reply")
    support.fill("#composer-input", "checking the stock")
    support.press("#composer-input", "Enter")
    # Sent after the note: once the customer has it, the note would have come before.
    customer.locator("#message-list .body", has_text="checking the stock").wait_for(timeout=15000)
    assert customer.locator("#message-list .file-card", has_text="stock.csv").count() == 0

    support.locator("#message-list .thumb").nth(1).click()
    support.locator(".viewer-caption", has_text="(2 of 2)").wait_for()
    support.keyboard.press("ArrowLeft")
    support.locator(".viewer-caption", has_text="(1 of 2)").wait_for()
    support.keyboard.press("Escape")
    support.locator("dialog.viewer").wait_for(state="hidden")
    assert customer.errors == [] and support.errors == []
