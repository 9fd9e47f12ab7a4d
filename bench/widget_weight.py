"""What the widget weighs on a business's page, measured in Chromium (issue 20).

    .venv/bin/python bench/widget_weight.py

Starts `python wsgi.py` (SQLite in a temporary folder), a plain shop page on another
origin with the snippet, and Debian's Chromium. It prints: what loads before the
visitor opens the chat (bytes, and gzipped at level 6 as a proxy would send them), what
the opened panel loads (JS and CSS), the layout shift the snippet causes, and the main
thread's work for the page with and without the snippet (Chromium's TaskDuration,
the median of 15 loads each, alternating). The byte budgets are also checked by
tests/system/test_widget_browser.py::test_the_widget_stays_light.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import jwt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.live import LiveServer  # noqa: E402
from tests.system.test_widget_browser import ARGS, CHROMIUM, Shop, measure_weight  # noqa: E402

SECRET_KEY = "bench-widget-jwt-secret-not-for-production-0123456789abcdef"


def main() -> None:
    import os

    from playwright.sync_api import sync_playwright

    folder = tempfile.mkdtemp()
    url = f"sqlite:///{folder}/bench.db"
    os.environ.update(DATABASE_URL=url, JWT_SECRET_KEY=SECRET_KEY)
    from flask_migrate import upgrade

    from app import create_app
    from app.services.sites import add_site

    app = create_app("testing")
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
    server = LiveServer(url, "eventlet", JWT_SECRET_KEY=SECRET_KEY).start()
    shop = Shop(server.url)
    try:
        with app.app_context():
            site, secret = add_site("Teapot Shop", [shop.origin])
            key = site.key
        claims = {"sub": "u-1", "email": "kim@shop.example", "exp": int(time.time()) + 600}
        identity = jwt.encode(claims, secret, algorithm="HS256")
        with_widget = shop.put("/", key, identity)
        shop.pages["/plain"] = shop.pages["/"].split("<script")[0] + "</body></html>"
        plain = shop.origin + "/plain"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            w = measure_weight(browser, with_widget, server.url)
            tasks = {"plain": [], "widget": []}
            for _ in range(15):
                for name, page_url in (("plain", plain), ("widget", with_widget)):
                    tasks[name].append(main_thread_ms(browser, page_url))
            browser.close()
    finally:
        shop.close()
        server.close()
    plain_ms, widget_ms = statistics.median(tasks["plain"]), statistics.median(tasks["widget"])
    rows = [
        (
            "before opening: requests to the chat",
            ", ".join(w["before_requests"]),
            "the loader (and whether a reply waits)",
        ),
        (
            "the loader, bytes / gzipped",
            f"{w['loader_bytes']:,} / {w['loader_gzip']:,}",
            "5,120 gzipped",
        ),
        (
            "opened: JS and CSS, bytes / gzipped",
            f"{w['panel_bytes']:,} / {w['panel_gzip']:,}",
            "81,920 gzipped",
        ),
        ("layout shift caused on the page", f"{w['layout_shift']:.3f}", "0"),
        (
            "main-thread work, page alone / with the snippet (ms)",
            f"{plain_ms:.1f} / {widget_ms:.1f} (+{widget_ms - plain_ms:.1f})",
            "+50",
        ),
    ]
    print("| figure | measured | budget |")
    print("| --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    for name, size in sorted(w["panel_files"].items()):
        print(f"  {name}: {size:,} gzipped")


def main_thread_ms(browser, url: str) -> float:
    context = browser.new_context()
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")
    page.goto(url, wait_until="load")
    page.wait_for_timeout(500)  # the async loader runs after load; a settle, not a state
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    context.close()
    return metrics["TaskDuration"] * 1000


if __name__ == "__main__":
    main()
