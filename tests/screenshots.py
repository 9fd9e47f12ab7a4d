"""`make screenshots`: both pages with a realistic conversation, at desktop and phone
width, in light and dark, written to docs/screenshots/ (the README shows them).

    .venv/bin/python -m tests.screenshots [--out docs/screenshots]

A fresh SQLite database in a temporary folder, one `python wsgi.py` on a free port, a
few customers who write to support, an agent who answers; then Debian's Chromium
(Playwright, never a downloaded browser) takes each picture.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.live import LiveServer  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ADMIN = ("agent@example.com", "Sam Rivera", "agent-password-1")
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

# (customer name, email, what they write, what the agent answers or None; an answer
# ("note", text) is an internal note)
CONVERSATIONS = [
    (
        "Priya Natarajan",
        "priya@example.com",
        [
            "Hi! My order #4471 arrived today but the lid of the teapot is cracked.",
            "I have photos if that helps. Can you send a replacement lid?",
        ],
        [
            "Hi Priya, I'm sorry about that! No photos needed.",
            "A new lid is on its way today; you'll get the tracking link by email.",
        ],
    ),
    (
        "Jonas Becker",
        "jonas.becker@example.com",
        ["Do you ship to Norway? The checkout only lists EU countries."],
        None,
    ),
    (
        "Amara Okafor",
        "amara@example.com",
        ["How do I change the email address on my account?"],
        [
            ("note", "Second time she asks this month; worth a line in the FAQ."),
            "Under Settings → Account you can change it; we send a confirmation link.",
        ],
    ),
]

# The team's saved replies (shortcut, body)
CANNED = [
    ("shipping", "Orders ship within 2 working days; you get a tracking link by email."),
    ("refund", "Your refund is on its way and shows on your statement in 3 to 5 days."),
    ("thanks", "Thanks for writing to us! Anything else I can help with?"),
]


def migrate(database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url, "APP_CONFIG": "testing"}
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    subprocess.run([*flask, "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
    email, name, password = ADMIN
    subprocess.run(
        [*flask, "create-admin", "--email", email, "--name", name, "--password", password],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )


def seed(live: LiveServer) -> None:
    agent = live.client(live.login(ADMIN[0], ADMIN[2])["access_token"])
    for name, email, asks, answers in CONVERSATIONS:
        customer = live.client(live.register_and_login(email, name)["access_token"])
        room_id = None
        for body in asks:
            ack = customer.call("send_message", {"body": body}, namespace="/chat")
            assert ack.get("ok"), ack
            room_id = ack["message"]["room_id"]
            time.sleep(0.3)
        for body in answers or []:
            payload = {"room_id": room_id, "body": body}
            if isinstance(body, tuple):
                payload.update(body=body[1], internal=True)
            agent.call("send_message", payload, namespace="/chat")
            time.sleep(0.3)
        customer.disconnect()
    for shortcut, body in CANNED:
        agent.call("save_canned", {"shortcut": shortcut, "body": body}, namespace="/chat")
    agent.disconnect()


def take(browser, live, out: Path, scheme: str) -> list[Path]:
    from playwright.sync_api import Page

    written = []

    def page_for(viewport: dict, email: str, password: str) -> Page:
        context = browser.new_context(viewport=viewport, color_scheme=scheme)
        page = context.new_page()
        page.goto(live.url + "/login")
        page.fill("input[name=email]", email)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_selector("#connection[data-state=connected]", timeout=15000)
        page.wait_for_timeout(600)
        return page

    def shot(page: Page, name: str) -> None:
        path = out / f"{name}-{scheme}.png"
        page.screenshot(path=str(path))
        written.append(path)

    for width, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        inbox = page_for(viewport, ADMIN[0], ADMIN[2])
        if width == "phone":
            shot(inbox, "inbox-list-phone")
        inbox.click(".rooms li .room >> nth=0")
        inbox.locator("#message-list .message").first.wait_for(timeout=15000)
        inbox.fill("#composer-input", "Anything else I can help with?")
        inbox.wait_for_timeout(400)
        shot(inbox, f"inbox-{width}")
        if width == "desktop":
            inbox.keyboard.press("Escape")  # out of the message box, then the list of keys
            inbox.keyboard.press("?")
            shot(inbox, "inbox-shortcuts-desktop")
            inbox.keyboard.press("Escape")
            inbox.fill("#composer-input", "")
            inbox.click("#composer-input")
            inbox.keyboard.type("/")
            inbox.locator("#canned-picker .canned-option").first.wait_for(timeout=10000)
            shot(inbox, "inbox-canned-desktop")
            inbox.keyboard.press("Escape")
            inbox.click("#canned-open")
            shot(inbox, "inbox-canned-manage-desktop")
            inbox.keyboard.press("Escape")
            inbox.fill("#composer-input", "")
            inbox.fill("#search", "email")  # in two conversations' messages
            inbox.locator(".rooms li .room-preview mark").first.wait_for(timeout=10000)
            inbox.wait_for_timeout(300)
            shot(inbox, "inbox-search-desktop")
        customer = page_for(viewport, CONVERSATIONS[0][1], "correct horse battery")
        customer.locator("#message-list .message").first.wait_for(timeout=15000)
        shot(customer, f"customer-{width}")
        inbox.context.close()
        customer.context.close()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not os.path.exists(CHROMIUM):
        sys.exit(f"needs Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as folder:
        database_url = f"sqlite:///{folder}/screenshots.db"
        migrate(database_url)
        live = LiveServer(database_url, "eventlet", CHAT_RATE_LIMIT="1000/10").start()
        try:
            seed(live)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                for scheme in ("light", "dark"):
                    for path in take(browser, live, out, scheme):
                        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
                browser.close()
        finally:
            live.close()


if __name__ == "__main__":
    main()
