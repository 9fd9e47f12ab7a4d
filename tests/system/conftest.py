"""What the browser tests share: Debian's Chromium driven by Playwright (never a
downloaded browser), and a live `python wsgi.py` on eventlet whose customers may type
fast. A module may override either (the widget's tests block third-party cookies)."""

from __future__ import annotations

import pytest

from tests.live import LiveServer

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def live(database_url):
    server = LiveServer(database_url, "eventlet", CHAT_RATE_LIMIT="1000/10")
    try:
        yield server.start()
    finally:
        server.close()
