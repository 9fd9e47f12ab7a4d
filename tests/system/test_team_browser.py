"""The team in a real browser (Debian's Chromium driven by Playwright) against
`python wsgi.py` (issue 23): an invitation from the Team dialog to the new agent's
first login; an assignment seen live in a second agent's inbox; who is viewing and
replying; and the question before answering over someone's assignment."""

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


def customer_writes(live, email, name, body):
    tab = live.client(live.register_and_login(email, name)["access_token"])
    ack = tab.call("send_message", {"body": body}, namespace="/chat", timeout=10)
    assert ack["ok"], ack
    return ack["message"]["room_id"]


def open_room(page, customer_name):
    page.locator(".rooms li .room", has_text=customer_name).click()
    page.locator("#message-list .message").first.wait_for(timeout=10000)


def test_an_admin_invites_and_the_agent_logs_in_for_the_first_time(browser, live, users):
    admin = users.make("admin", name="Ada Admin")
    inbox = log_in(browser, live, admin.email, admin.password)
    inbox.click("#settings-team")
    inbox.locator("#team-list .member-row", has_text="Ada Admin").wait_for(timeout=10000)
    inbox.fill("#invite-email", "ben.new@example.com")
    inbox.fill("#invite-name", "Ben")
    inbox.select_option("#invite-role", "agent")
    inbox.click("#invite-form button[type=submit]")
    inbox.locator("#invite-sent:not([hidden])").wait_for(timeout=10000)
    link = inbox.input_value("#invite-link")
    assert link.startswith(live.url + "/invite/") or "/invite/" in link

    newcomer = browser.new_context().new_page()
    newcomer.errors = []
    newcomer.on("pageerror", lambda exc: newcomer.errors.append(str(exc)))
    newcomer.goto(live.url + "/invite/" + link.rsplit("/", 1)[1])
    assert "ben.new@example.com" in newcomer.text_content("main")
    newcomer.fill("input[name=name]", "Ben Newman")
    newcomer.fill("input[name=password]", "a good long password")
    newcomer.click("button[type=submit]")
    newcomer.wait_for_selector("#connection[data-state=connected]", timeout=15000)
    assert newcomer.url.endswith("/admin")  # the inbox, as an agent
    assert newcomer.locator("#settings-sites").count() == 0  # agents do not manage sites
    # the admin's open Team dialog shows the new member as they come online
    inbox.locator("#team-list .member-row", has_text="Ben Newman").wait_for(timeout=10000)
    # the link is spent
    again = browser.new_context().new_page()
    again.goto(live.url + "/invite/" + link.rsplit("/", 1)[1])
    assert "can't be used" in again.text_content("main")
    assert inbox.errors == [] and newcomer.errors == []


def test_an_assignment_is_seen_live_in_a_second_agents_inbox(browser, live, users):
    ana = users.make("agent", name="Ana Kim")
    ben = users.make("agent", name="Ben Ortiz")
    ana_page = log_in(browser, live, ana.email, ana.password)
    ben_page = log_in(browser, live, ben.email, ben.password)
    # both online with nothing: automatic assignment gives it to one of them
    customer_writes(live, "pat@example.com", "Pat Lee", "Where is my order?")
    ana_page.locator(".rooms li", has_text="Pat Lee").wait_for(timeout=10000)
    open_room(ana_page, "Pat Lee")
    ana_page.select_option("#assignee", str(ben.id))
    row = ben_page.locator(".rooms li", has_text="Pat Lee")
    row.locator(".assignee-tag.mine").wait_for(timeout=10000)  # "You", live
    ben_page.locator("#views .view[data-view=mine] .count", has_text="1").wait_for(timeout=10000)
    open_room(ben_page, "Pat Lee")
    ben_page.locator("#message-list .activity", has_text="Ana Kim assigned this to you").wait_for(
        timeout=10000
    )
    # unassigned by Ana: Ben sees it leave him
    ana_page.select_option("#assignee", "")
    row.locator(".assignee-tag.none").wait_for(timeout=10000)
    ben_page.locator("#message-list .activity", has_text="Ana Kim unassigned").wait_for(
        timeout=10000
    )
    ben_page.locator("#views .view[data-view=unassigned] .count", has_text="1").wait_for(
        timeout=10000
    )
    assert ana_page.errors == [] and ben_page.errors == []


def test_viewing_replying_and_replying_over_someone(browser, live, users):
    ana = users.make("agent", name="Ana Kim")
    ben = users.make("agent", name="Ben Ortiz")
    ben_page = log_in(browser, live, ben.email, ben.password)
    customer_writes(live, "kim@example.com", "Kim Park", "My lid is cracked")
    ben_page.locator(".rooms li .assignee-tag.mine").wait_for(timeout=10000)  # Ben has it
    ana_page = log_in(browser, live, ana.email, ana.password)
    open_room(ben_page, "Kim Park")
    open_room(ana_page, "Kim Park")
    ben_page.locator("#viewers", has_text="Ana Kim is viewing").wait_for(timeout=10000)
    ana_page.locator("#viewers", has_text="Ben Ortiz is viewing").wait_for(timeout=10000)

    ana_page.click("#composer-input")
    ana_page.keyboard.type("Let me check", delay=30)
    ben_page.locator("#typing", has_text="Ana Kim is replying").wait_for(timeout=10000)

    # Ana answers although Ben has it: asked once, then recorded for the team
    ana_page.keyboard.press("Enter")
    dialog = ana_page.locator("#reply-anyway")
    dialog.wait_for(state="visible", timeout=5000)
    assert "Ben Ortiz is assigned. Reply anyway?" in dialog.text_content()
    dialog.locator("button[value=cancel]").click()
    assert ana_page.input_value("#composer-input") == "Let me check"  # nothing lost
    ana_page.press("#composer-input", "Enter")
    dialog.locator("button[value=reply]").click()
    ben_page.locator("#message-list .body", has_text="Let me check").wait_for(timeout=10000)
    ben_page.locator(
        "#message-list .activity", has_text="Ana Kim replied in your conversation"
    ).wait_for(timeout=10000)
    ana_page.fill("#composer-input", "Found it")
    ana_page.press("#composer-input", "Enter")  # asked once only
    ben_page.locator("#message-list .body", has_text="Found it").wait_for(timeout=10000)
    assert not dialog.is_visible()

    # Ana leaves the conversation: Ben no longer sees her viewing
    ana_page.close()
    ben_page.locator("#viewers[hidden]").wait_for(state="attached", timeout=10000)
    assert ben_page.errors == []


def test_alerts_go_to_the_assignee_and_to_everyone_while_nobody_has_it(browser, live, users):
    from tests.system.test_pages_browser import FAKE_NOTIFICATION

    ana = users.make("agent", name="Ana Kim")
    ben = users.make("agent", name="Ben Ortiz")
    pages = {}
    for member in (ana, ben):  # Ana first: the conversation will be hers (round-robin)
        context = browser.new_context()
        context.add_init_script(FAKE_NOTIFICATION)
        page = context.new_page()
        page.errors = []
        page.on("pageerror", lambda exc, page=page: page.errors.append(str(exc)))
        page.goto(live.url + "/login")
        page.fill("input[name=email]", member.email)
        page.fill("input[name=password]", member.password)
        page.click("button[type=submit]")
        page.wait_for_selector("#connection[data-state=connected]", timeout=15000)
        page.locator("#ask-alerts").wait_for(state="visible", timeout=5000)
        page.click("#alerts-yes")
        pages[member.name] = page

    def notes(name) -> list:
        return [n["body"] for n in pages[name].evaluate("() => window.__notes")]

    customer = live.client(live.register_and_login("ivy@example.com", "Ivy Han")["access_token"])
    try:
        # the first message arrives before anyone has the conversation: everyone hears it
        assert customer.call("send_message", {"body": "first"}, namespace="/chat")["ok"]
        for page in pages.values():
            page.locator(".rooms li", has_text="Ivy Han").locator(
                ".assignee-tag:not(.none)"
            ).wait_for(timeout=10000)
        assert notes("Ana Kim") == ["first"] and notes("Ben Ortiz") == ["first"]
        assert pages["Ana Kim"].locator(".rooms li .assignee-tag.mine").count() == 1  # hers

        # hers now: only she is alerted
        assert customer.call("send_message", {"body": "second"}, namespace="/chat")["ok"]
        pages["Ben Ortiz"].locator(".room-preview", has_text="second").wait_for(timeout=10000)
        pages["Ana Kim"].locator(".room-preview", has_text="second").wait_for(timeout=10000)
        assert notes("Ana Kim") == ["first", "second"] and notes("Ben Ortiz") == ["first"]

        # unassigned again: everyone
        pages["Ana Kim"].locator(".rooms li .room", has_text="Ivy Han").click()
        pages["Ana Kim"].select_option("#assignee", "")
        pages["Ben Ortiz"].locator(".rooms li .assignee-tag.none").wait_for(timeout=10000)
        assert customer.call("send_message", {"body": "third"}, namespace="/chat")["ok"]
        pages["Ben Ortiz"].locator(".room-preview", has_text="third").wait_for(timeout=10000)
        assert notes("Ben Ortiz") == ["first", "third"]
        assert notes("Ana Kim") == ["first", "second"]  # she has it open: no alert
    finally:
        customer.disconnect()
    assert all(page.errors == [] for page in pages.values())
