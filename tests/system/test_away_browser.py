"""The away state in a real browser (Debian's Chromium), against `python wsgi.py`: an
admin sets business hours in the inbox; a customer, in English and in Korean, is told
when the team is back (in their own time zone) and that the answer comes by email, and
gets one automatic reply however many messages they write. (`live`: tests/system/conftest.py.)"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from tests.system.conftest import CHROMIUM

pytest.importorskip("playwright.sync_api", reason="needs the playwright package")
if not os.path.exists(CHROMIUM):
    pytest.skip(f"needs Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)

EVERY_DAY = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def open_page(browser, live, email, password, *, locale="en-US", zone="Asia/Seoul"):
    context = browser.new_context(locale=locale, timezone_id=zone)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
    page.goto(live.url + "/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_selector("#connection[data-state=connected]", timeout=15000)
    return page


def close_today(admin_page, away_message):
    """In the inbox's Business hours: every day 09:00-18:00 in Seoul, today closed,
    and the automatic reply's text."""
    today = datetime.now(UTC).astimezone(ZoneInfo("Asia/Seoul")).date().isoformat()
    admin_page.click("#settings-hours")
    admin_page.wait_for_selector("#hours-dialog[open]")
    assert admin_page.is_checked("#hours-form input[name=always]")  # no schedule yet
    admin_page.uncheck("#hours-form input[name=always]")
    admin_page.fill("#hours-timezone", "Asia/Seoul")
    for day in EVERY_DAY:
        admin_page.fill(f"#hours-{day}", "9:00-18:00")
    admin_page.fill("#hours-closed", today)
    admin_page.fill("#hours-away", away_message)
    admin_page.click("#hours-form button[type=submit]")
    admin_page.wait_for_selector("#hours-saved:not([hidden])", timeout=10000)
    admin_page.click("#hours-dialog form[method=dialog] button")


@pytest.mark.parametrize(
    "locale, back, banner, reply",
    [
        (
            "en-US",
            "Back tomorrow at 09:00 AM",
            "We will answer here and by email",
            "Thanks! We are closed today and will answer tomorrow morning.",
        ),
        (
            "ko-KR",
            "내일 오전 09:00에 돌아옵니다",
            "메일로 보내 드리니",
            "문의 감사합니다! 오늘은 휴무라 내일 오전에 답변드릴게요.",
        ),
    ],
)
def test_a_customer_is_told_the_team_is_away_and_gets_one_automatic_reply(
    browser, live, users, locale, back, banner, reply
):
    admin = users.make("admin", name="Ada Admin")
    support = open_page(browser, live, admin.email, admin.password)
    close_today(support, reply)
    # A bad range is refused with the day named, and nothing is saved.
    support.click("#settings-hours")
    support.fill("#hours-mon", "9-18")
    support.click("#hours-form button[type=submit]")
    support.wait_for_selector("#hours-error:not([hidden])")
    assert support.get_attribute("#hours-mon", "aria-invalid") == "true"
    support.click("#hours-dialog form[method=dialog] button")

    live.register_and_login(f"away-{locale}@example.com", "Mina Away")
    customer = open_page(
        browser, live, f"away-{locale}@example.com", "correct horse battery", locale=locale
    )
    customer.locator("#support-presence", has_text=back).wait_for(timeout=15000)
    customer.locator("#away-banner", has_text=banner).wait_for(timeout=5000)
    customer.wait_for_selector("#composer-send:not([disabled])", timeout=15000)
    for text in ("Hello?", "Is anyone there?"):
        customer.fill("#composer-input", text)
        customer.press("#composer-input", "Enter")
    customer.locator("#message-list .body", has_text=reply).wait_for(timeout=15000)
    customer.locator("#message-list .body", has_text="Is anyone there?").wait_for()
    customer.fill("#composer-input", "Third try")
    customer.press("#composer-input", "Enter")
    customer.locator("#message-list .body", has_text="Third try").wait_for()
    bodies = customer.eval_on_selector_all(
        "#message-list .body", "nodes => nodes.map(n => n.textContent)"
    )
    assert sum(reply in b for b in bodies) == 1
    assert customer.errors == [] and support.errors == []
