"""Every page state axe-clean, light and dark (issue 20): axe-core from npm
(tests/a11y, pinned in its package-lock.json), injected by Playwright into Debian's
Chromium, against `python wsgi.py`."""

from __future__ import annotations

import os
import time
from pathlib import Path

import jwt
import pytest

from tests.system.conftest import CHROMIUM
from tests.system.test_widget_browser import Shop

AXE = Path(__file__).resolve().parents[1] / "a11y" / "node_modules" / "axe-core" / "axe.min.js"

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="needs the playwright package (pip install playwright)"
)
if not os.path.exists(CHROMIUM):
    pytest.skip(f"needs Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
if not AXE.exists():
    pytest.skip(
        f"needs axe-core at {AXE} (make test installs it: npm ci --prefix tests/a11y)",
        allow_module_level=True,
    )

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def violations(page, within: str | None = None) -> list[str]:
    """axe's findings on the page as it is now (or only `within` a selector), one line each."""
    page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        """async (within) => {
            const context = within ? { include: [[within]] } : document;
            const result = await axe.run(context, { resultTypes: ["violations"] });
            return result.violations.flatMap((v) =>
                v.nodes.map((n) => `${v.id}: ${n.target.join(" ")}: ${n.failureSummary}`));
        }""",
        within,
    )
    return found


def log_in(context, url, email, password):
    page = context.new_page()
    page.goto(url + "/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_selector("#connection[data-state=connected]", timeout=15000)
    return page


def _png() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (60, 40), (30, 120, 200)).save(out, "PNG")
    return out.getvalue()


PNG = _png()


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_every_page_state_is_axe_clean(app, browser, live, users, scheme, width):
    from app.services.sites import add_site

    viewport = DESKTOP if width == "desktop" else PHONE
    admin = users.make("admin", name="Ada Admin")
    live.register_and_login("axe@example.com", "Alex Axe")
    shop = Shop(live.url)
    with app.app_context():
        site, secret = add_site("Teapot Shop", [shop.origin], "https://shop.example/login")
        key = site.key
    claims = {"sub": "u-1", "email": "axe@example.com", "name": "김민지"}
    identity = jwt.encode({**claims, "exp": int(time.time()) + 600}, secret, algorithm="HS256")
    found: dict[str, list[str]] = {}

    def context(locale="en-US"):
        return browser.new_context(
            viewport=viewport, color_scheme=scheme, bypass_csp=True, locale=locale
        )

    try:
        anonymous = context().new_page()
        for path in ("/login", "/register", "/no-such-page"):
            anonymous.goto(live.url + path)
            found[path] = violations(anonymous)

        customer = log_in(context(), live.url, "axe@example.com", "correct horse battery")
        customer.wait_for_selector("#composer-send:not([disabled])", timeout=15000)
        found["chat, empty"] = violations(customer)
        customer.set_input_files(
            "#attach-input",
            files=[
                {"name": "lid.png", "mimeType": "image/png", "buffer": PNG},
                {"name": "huge.txt", "mimeType": "text/plain", "buffer": b"x" * (21 << 20)},
            ],
        )
        customer.locator("#attachment-tray .chip.done").wait_for(timeout=15000)
        customer.locator("#attachment-tray .chip.failed").wait_for(timeout=15000)
        found["chat, files waiting"] = violations(customer)
        customer.locator("#attachment-tray .chip.failed .chip-remove").click()
        customer.fill("#composer-input", "Where is my order? https://example.com/o/7")
        customer.press("#composer-input", "Enter")
        customer.locator("#message-list .message[data-id]").wait_for(timeout=15000)

        support = log_in(context(), live.url, admin.email, admin.password)
        support.locator(".rooms li .room").first.wait_for(timeout=15000)
        found["inbox, list"] = violations(support)
        support.click(".rooms li .room")
        support.locator("#message-list .message").first.wait_for(timeout=15000)
        support.fill("#composer-input", "On it.")
        support.press("#composer-input", "Enter")
        support.click("#mode-note")
        support.fill("#composer-input", "Checked the depot.")
        support.press("#composer-input", "Enter")
        support.locator("#message-list .message.note[data-id]").wait_for(timeout=15000)
        found["inbox, conversation"] = violations(support)
        support.click("#room-status")
        support.locator("#room-status", has_text="Reopen").wait_for(timeout=15000)
        found["inbox, resolved"] = violations(support)
        if support.locator("#details").is_visible():  # beside the conversation on a desktop
            support.click("#details")
        support.locator("#profile dt").first.wait_for(timeout=15000)
        found["inbox, details"] = violations(support)
        if support.locator("#details-close").is_visible():
            support.click("#details-close")
        support.locator("#message-list .files .thumb").first.click()
        support.locator("dialog.viewer").wait_for(state="visible")
        found["inbox, picture viewer"] = violations(support)
        support.keyboard.press("Escape")
        support.keyboard.press("Escape")
        support.locator("body").press("?")
        found["inbox, shortcuts"] = violations(support)
        support.keyboard.press("Escape")
        if support.locator("#details-close").is_visible():  # narrower screens: one pane
            support.click("#details-close")
        if support.locator("#back").is_visible():  # a phone: back to the list
            support.click("#back")
        support.click("#settings-canned")  # the settings under the list, at every width
        support.locator("#canned-dialog").wait_for(state="visible")
        found["inbox, saved replies"] = violations(support)
        support.keyboard.press("Escape")
        support.click("#settings-sites")
        support.fill("#site-name", "Kettle Shop")
        support.fill("#site-origins", "kettle.example")
        support.click("#site-save")
        support.locator("#site-error").wait_for(state="visible")
        found["inbox, sites, a mistake"] = violations(support)
        support.fill("#site-origins", "https://kettle.example")
        support.click("#site-save")
        support.locator("#site-secret").wait_for(state="visible")
        found["inbox, sites, the secret shown"] = violations(support)
        support.keyboard.press("Escape")
        support.click("#settings-hours")
        support.locator("#hours-dialog").wait_for(state="visible")
        support.uncheck("#hours-form input[name=always]")
        support.fill("#hours-tue", "9-5")
        support.click("#hours-form button[type=submit]")
        support.locator("#hours-error").wait_for(state="visible")
        found["inbox, business hours, a mistake"] = violations(support)
        support.keyboard.press("Escape")

        customer.locator("#message-list .message.theirs").wait_for(timeout=15000)
        found["chat, conversation"] = violations(customer)
        customer.goto(live.url + "/logout")
        found["/logout"] = violations(customer)

        for locale in ("en-US", "ko-KR"):
            widget = context(locale).new_page()
            widget.goto(shop.put(f"/{locale}", key, identity))
            widget.wait_for_function("() => window.SupportChat !== undefined", timeout=15000)
            # The shop's own page is the shop's business; the launcher is ours.
            found[f"shop with launcher, {locale}"] = violations(widget, "[data-supportchat]")
            widget.click("[data-supportchat] >> button")
            panel = widget.frame_locator("iframe[title]")
            panel.locator("#composer-send:not([disabled])").wait_for(timeout=15000)
            frame = next(f for f in widget.frames if "/widget/frame" in f.url)
            found[f"widget panel, {locale}"] = violations(frame)
    finally:
        shop.close()
    bad = {state: lines for state, lines in found.items() if lines}
    assert not bad, "\n".join(f"{state}:\n  " + "\n  ".join(lines) for state, lines in bad.items())
