"""What a new user found on the pages (issue 20), each checked in Chromium against
`python wsgi.py`: links in messages, a note after the agent's own reply, the day
separator, the phone header, the composer's focus on a phone, the customer's title
count for replies in a background tab, and an empty room kept out of the inbox."""

from __future__ import annotations

import os

import pytest

from tests.system.conftest import CHROMIUM
from tests.system.test_pages_browser import log_in

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="needs the playwright package (pip install playwright)"
)
if not os.path.exists(CHROMIUM):
    pytest.skip(f"needs Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)

PHONE = {"width": 390, "height": 844}
# A tab sent to the background, or brought back, as the browser reports it.
SET_VISIBILITY = """(hidden) => {
    const state = hidden ? "hidden" : "visible";
    Object.defineProperty(document, "hidden", { configurable: true, get: () => hidden });
    Object.defineProperty(document, "visibilityState", { configurable: true, get: () => state });
    document.dispatchEvent(new Event("visibilitychange"));
}"""


def test_links_notes_and_separators_read_right(browser, live, users):
    live.register_and_login("links@example.com", "Lina Links")
    admin = users.make("admin", name="Ada Admin")
    customer = log_in(browser, live, "links@example.com", "correct horse battery")
    customer.fill(
        "#composer-input",
        "See https://example.com/order?id=7. Not javascript:alert(1) or ftp://x.example",
    )
    customer.press("#composer-input", "Enter")
    support = log_in(browser, live, admin.email, admin.password)
    support.click(".rooms li .room")
    support.locator("#message-list .message").first.wait_for(timeout=15000)
    support.fill("#composer-input", "Checking now.")
    support.press("#composer-input", "Enter")
    support.locator("#message-list .message.mine").first.wait_for(timeout=15000)
    support.click("#mode-note")
    support.fill("#composer-input", "Order 7 is stuck at the depot.")
    support.press("#composer-input", "Enter")
    support.fill("#composer-input", "Asked the depot by phone.")
    support.press("#composer-input", "Enter")
    support.locator("#message-list .message.note").nth(1).wait_for(timeout=15000)

    # Only the http(s) address is a link, without its full stop, and it opens apart.
    links = customer.eval_on_selector_all(
        "#message-list .body a",
        "ns => ns.map(a => [a.textContent, a.href, a.target, a.rel])",
    )
    assert links == [
        [
            "https://example.com/order?id=7",
            "https://example.com/order?id=7",
            "_blank",
            "noopener noreferrer nofollow",
        ]
    ]
    # The note right after the agent's reply says who sees it; the next note keeps the
    # words for screen readers, without showing them again.
    labels = support.locator("#message-list .message.note .note-label")
    assert labels.nth(0).is_visible()
    assert labels.nth(0).text_content() == "Your internal note · only the team sees this"
    assert labels.nth(1).evaluate("n => n.getBoundingClientRect().height <= 1")
    assert labels.nth(1).text_content() == "Your internal note · only the team sees this"
    # The day separator is a list item like the messages, not a separator role.
    for page in (customer, support):
        roles = page.eval_on_selector_all(
            "#message-list > li", "ns => ns.filter(n => n.getAttribute('role')).length"
        )
        assert roles == 0
        assert page.errors == []


def test_on_a_phone_the_header_shows_the_whole_name_and_the_keyboard_stays_down(
    browser, live, users
):
    long_name = "Maximiliana Konstantinopoulou-Vanderbilt"
    live.register_and_login("long@example.com", long_name)
    writer = log_in(browser, live, "long@example.com", "correct horse battery")
    writer.fill("#composer-input", "Hello")
    writer.press("#composer-input", "Enter")
    admin = users.make("admin", name="Ada Admin")
    phone = log_in(browser, live, admin.email, admin.password, viewport=PHONE)
    phone.click(".rooms li .room")
    phone.locator("#message-list .message").first.wait_for(timeout=15000)
    title = phone.locator("#room-title")
    assert title.text_content() == long_name
    # Not cut: the heading is as wide as its text needs, and the status line is shown.
    assert title.evaluate("n => n.scrollWidth <= n.clientWidth")
    assert phone.locator("#room-subtitle").is_visible()
    assert "long@example.com" in phone.locator("#room-subtitle").text_content()
    # Opening the conversation did not focus the composer (no keyboard over it).
    assert phone.evaluate("() => document.activeElement.id") != "composer-input"


def test_a_reply_in_a_background_tab_is_counted_in_its_title(browser, live, users):
    live.register_and_login("tab@example.com", "Tara Tab")
    customer = log_in(browser, live, "tab@example.com", "correct horse battery")
    customer.fill("#composer-input", "Anyone there?")
    customer.press("#composer-input", "Enter")
    customer.locator("#message-list .message[data-id]").wait_for(timeout=15000)
    title = customer.title()
    assert customer.get_attribute("#sound-toggle", "aria-pressed") == "true"
    customer.click("#sound-toggle")
    assert customer.get_attribute("#sound-toggle", "aria-pressed") == "false"
    # The tab goes to the background (as when another tab is chosen).
    customer.evaluate(SET_VISIBILITY, True)
    admin = users.make("admin", name="Ada Admin")
    support = log_in(browser, live, admin.email, admin.password)
    support.click(".rooms li .room")
    support.locator("#message-list .message").first.wait_for(timeout=15000)
    for text in ("Yes, here!", "How can I help?"):
        support.fill("#composer-input", text)
        support.press("#composer-input", "Enter")
    customer.wait_for_function(
        "(title) => document.title === '(2) ' + title", arg=title, timeout=15000
    )
    customer.evaluate(SET_VISIBILITY, False)
    customer.wait_for_function("(title) => document.title === title", arg=title, timeout=5000)


def test_a_sign_up_adds_nothing_to_the_inbox_until_its_first_message(browser, live, users):
    admin = users.make("admin", name="Ada Admin")
    support = log_in(browser, live, admin.email, admin.password)
    live.register_and_login("quiet@example.com", "Quinn Quiet")
    quiet = log_in(browser, live, "quiet@example.com", "correct horse battery")
    assert quiet.locator("#composer-send:not([disabled])").count() == 1  # their room is open
    support.reload()
    support.wait_for_selector("#connection[data-state=connected]", timeout=15000)
    support.locator("#rooms-empty").wait_for(timeout=15000)
    assert support.locator(".rooms li").count() == 0
    quiet.fill("#composer-input", "Now I have a question.")
    quiet.press("#composer-input", "Enter")
    support.locator(".room-name", has_text="Quinn Quiet").wait_for(timeout=15000)


def test_a_message_written_offline_waits_and_goes_out_once_and_the_draft_survives_a_reload(
    browser, database_url
):
    """The offline banner promises that messages go out once the page is back: Enter
    while offline queues the message as a bubble that waits, and it is stored once
    when the server returns. A draft is still there after a reload."""
    import signal

    from sqlalchemy import create_engine, text

    from tests.live import LiveServer

    server = LiveServer(database_url, "eventlet")
    engine = create_engine(database_url)
    try:
        server.start()
        server.register_and_login("away@example.com", "Avery Away")
        customer = log_in(browser, server, "away@example.com", "correct horse battery")
        customer.fill("#composer-input", "first, while online")
        customer.press("#composer-input", "Enter")
        customer.locator("#message-list .message[data-id]").wait_for(timeout=15000)

        server.signal(signal.SIGKILL)
        server.wait_exit(timeout=10)
        customer.locator("#offline-banner").wait_for(state="visible", timeout=15000)
        customer.fill("#composer-input", "written while offline")
        customer.press("#composer-input", "Enter")
        waiting = customer.locator("#message-list .message.pending", has_text="written while")
        waiting.wait_for(timeout=5000)
        assert "Waits for the connection" in waiting.text_content()
        assert customer.input_value("#composer-input") == ""

        server.start()
        customer.locator("#message-list .message[data-id]", has_text="written while").wait_for(
            timeout=30000
        )
        with engine.connect() as db:
            bodies = db.execute(text("SELECT body FROM messages ORDER BY id")).scalars().all()
        assert bodies == ["first, while online", "written while offline"], "stored once"

        customer.fill("#composer-input", "a draft I have not sent")
        customer.reload()
        customer.wait_for_selector("#connection[data-state=connected]", timeout=15000)
        assert customer.input_value("#composer-input") == "a draft I have not sent"
    finally:
        engine.dispose()
        server.close()
