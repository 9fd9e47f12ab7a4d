"""`make screenshots`: both pages and the widget on a shop's page, with realistic
conversations, at desktop and phone width, in light and dark, in English and Korean,
written to docs/screenshots/ (the README shows them).

    .venv/bin/python -m tests.screenshots [--out docs/screenshots]

A fresh SQLite database in a temporary folder, one `python wsgi.py` on a free port, a
few customers who write to support, an agent who answers; then Debian's Chromium
(Playwright, never a downloaded browser) takes each picture. Korean needs a Korean
font on the machine (Debian: `apt-get install fonts-nanum`), or it shows as boxes.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import jwt  # noqa: E402
import requests  # noqa: E402

from tests.live import LiveServer  # noqa: E402
from tests.system.test_widget_browser import Shop  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ADMIN = ("agent@example.com", "Sam Rivera", "agent-password-1")
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

# (customer name, email, what they write, what the agent answers or None; an answer
# ("note", text) is an internal note; ("photo", text) and ("pdf", text) carry a file)
CONVERSATIONS = [
    (
        "Priya Natarajan",
        "priya@example.com",
        [
            "Hi! My order #4471 arrived today but the lid of the teapot is cracked.",
            ("photo", "Here's a photo. Can you send a replacement lid?"),
        ],
        [
            "Thanks for the photo, Priya. I can see the crack; I'm so sorry!",
            ("pdf", "A new lid ships today. Here is a return label for the broken one."),
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

THANKS = "Thank you! The tracking link just arrived."
PICTURES_LOADED = (
    "() => [...document.querySelectorAll('#message-list .files img')]"
    ".every((i) => i.complete && i.naturalWidth > 0)"
)

# The widget's shoppers on the demo shop: (language, the shop's id, email, name, what
# they write, what the agent answers)
SHOPPERS = [
    (
        "ko",
        "shop-minji",
        "minji@example.com",
        "김민지",
        [
            "안녕하세요, 어제 주문한 찻주전자가 아직 배송 준비 중으로 나와요.",
            "이번 주 안에 받을 수 있을까요?",
        ],
        [
            "안녕하세요, 김민지 님! 확인해 보니 오늘 오후에 출고될 예정이에요.",
            "내일 도착 예정이고, 송장 번호는 문자로 보내 드릴게요.",
        ],
    ),
    (
        "en",
        "shop-ellis",
        "ellis@example.com",
        "Ellis Grant",
        ["Hi! Is the cast iron teapot safe on an induction hob?"],
        ["Hi Ellis, yes: it works on every hob, induction included."],
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


def lid_photo() -> bytes:
    """A photo of a cracked teapot lid, drawn."""
    from PIL import Image, ImageDraw, ImageFilter

    image = Image.new("RGB", (960, 720), (196, 160, 118))
    draw = ImageDraw.Draw(image)
    for y in range(0, 720, 18):  # the table's grain
        draw.line([(0, y), (960, y + 30)], fill=(186, 150, 108), width=3)
    draw.ellipse([250, 170, 710, 550], fill=(236, 238, 240), outline=(170, 176, 184), width=6)
    draw.ellipse([420, 300, 540, 420], fill=(222, 226, 230), outline=(160, 166, 176), width=5)
    draw.line(
        [(300, 260), (380, 330), (360, 380), (440, 430), (430, 500)], fill=(70, 70, 80), width=5
    )
    image = image.filter(ImageFilter.SMOOTH)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=88)
    return out.getvalue()


RETURN_LABEL = (
    b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
    b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
)


def upload(live: LiveServer, token: str, kind: str) -> int:
    data, name = (lid_photo(), "lid.jpg") if kind == "photo" else (RETURN_LABEL, "return-label.pdf")
    answer = requests.post(
        live.url + "/api/attachments",
        files={"file": (name, data)},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def seed(live: LiveServer) -> None:
    agent_token = live.login(ADMIN[0], ADMIN[2])["access_token"]
    agent = live.client(agent_token)
    for name, email, asks, answers in CONVERSATIONS:
        token = live.register_and_login(email, name)["access_token"]
        customer = live.client(token)
        room_id = None
        for body in asks:
            payload = {"body": body}
            if isinstance(body, tuple):
                payload = {"body": body[1], "attachments": [upload(live, token, body[0])]}
            ack = customer.call("send_message", payload, namespace="/chat")
            assert ack.get("ok"), ack
            room_id = ack["message"]["room_id"]
            time.sleep(0.3)
        for body in answers or []:
            payload = {"room_id": room_id, "body": body}
            if isinstance(body, tuple) and body[0] == "note":
                payload.update(body=body[1], internal=True)
            elif isinstance(body, tuple):
                payload.update(body=body[1], attachments=[upload(live, agent_token, body[0])])
            agent.call("send_message", payload, namespace="/chat")
            time.sleep(0.3)
        if name == CONVERSATIONS[0][0]:  # resolved, then reopened by the customer's thanks
            agent.call("set_status", {"room_id": room_id, "status": "resolved"}, namespace="/chat")
            time.sleep(0.3)
            customer.call("send_message", {"body": THANKS}, namespace="/chat")
        customer.disconnect()
    for shortcut, body in CANNED:
        agent.call("save_canned", {"shortcut": shortcut, "body": body}, namespace="/chat")
    agent.disconnect()


def register_shop(database_url: str, origin: str) -> dict:
    env = {**os.environ, "DATABASE_URL": database_url, "APP_CONFIG": "testing"}
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    made = subprocess.run(
        [*flask, "sites", "add", "--name", "Teapot Shop", "--origin", origin],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(made.stdout)


def identity(site: dict, sub: str, email: str, name: str) -> str:
    claims = {"sub": sub, "email": email, "name": name, "exp": int(time.time()) + 3600}
    return jwt.encode(claims, site["secret"], algorithm="HS256")


def seed_shoppers(live: LiveServer, site: dict) -> None:
    agent = live.client(live.login(ADMIN[0], ADMIN[2])["access_token"])
    for _lang, sub, email, name, asks, answers in SHOPPERS:
        session = requests.post(
            live.url + "/api/widget/session",
            json={"site_key": site["site_key"], "identity": identity(site, sub, email, name)},
            timeout=10,
        ).json()
        shopper = live.client(session["access_token"])
        room_id = None
        for body in asks:
            ack = shopper.call("send_message", {"body": body}, namespace="/chat")
            room_id = ack["message"]["room_id"]
            time.sleep(0.3)
        for body in answers:
            agent.call("send_message", {"room_id": room_id, "body": body}, namespace="/chat")
            time.sleep(0.3)
        shopper.disconnect()
    agent.disconnect()


def take_widget(browser, shop, site: dict, out: Path, scheme: str) -> list[Path]:
    written = []
    for lang, sub, email, name, _asks, _answers in SHOPPERS:
        page_url = shop.put(f"/{lang}", site["site_key"], identity(site, sub, email, name))
        for width, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            context = browser.new_context(
                viewport=viewport, color_scheme=scheme, locale="ko-KR" if lang == "ko" else "en-US"
            )
            page = context.new_page()
            page.goto(page_url)
            page.wait_for_function("() => window.SupportChat !== undefined", timeout=15000)
            page.evaluate("() => window.SupportChat.open()")
            chat = page.frame_locator("iframe[title]")
            chat.locator("#message-list .message").last.wait_for(timeout=15000)
            page.wait_for_timeout(600)
            path = out / f"widget-{lang}-{width}-{scheme}.png"
            page.screenshot(path=str(path))
            written.append(path)
            context.close()
    return written


def take(browser, live, out: Path, scheme: str) -> list[Path]:
    from playwright.sync_api import Page

    written = []

    def page_for(viewport: dict, email: str, password: str, locale: str = "en-US") -> Page:
        context = browser.new_context(viewport=viewport, color_scheme=scheme, locale=locale)
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
        inbox.locator(".rooms li .room", has_text=CONVERSATIONS[0][0]).click()
        inbox.locator("#message-list .activity").nth(1).wait_for(timeout=15000)
        inbox.wait_for_function(PICTURES_LOADED)
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
            inbox.click("#settings-sites")
            inbox.locator("#sites-list .site-row").first.wait_for(timeout=10000)
            shot(inbox, "inbox-sites-desktop")
            inbox.keyboard.press("Escape")
            inbox.fill("#composer-input", "")
            inbox.fill("#search", "email")  # in two conversations' messages
            inbox.locator(".rooms li .room-preview mark").first.wait_for(timeout=10000)
            inbox.wait_for_timeout(300)
            shot(inbox, "inbox-search-desktop")
        customer = page_for(viewport, CONVERSATIONS[0][1], "correct horse battery")
        customer.locator("#message-list .message").first.wait_for(timeout=15000)
        customer.wait_for_function(PICTURES_LOADED)
        shot(customer, f"customer-{width}")
        team = page_for(viewport, ADMIN[0], ADMIN[2], "ko-KR")  # the inbox in Korean
        team.locator(".rooms li .room", has_text=SHOPPERS[0][3]).click()
        team.locator("#message-list .message").nth(3).wait_for(timeout=15000)
        shot(team, f"inbox-ko-{width}")
        if width == "desktop":
            team.keyboard.press("Escape")
            team.click("#settings-sites")
            team.locator("#sites-list .site-row").first.wait_for(timeout=10000)
            shot(team, "inbox-sites-ko-desktop")
        elif width == "phone":
            team.click("#back")
            team.locator(".rooms li .room").first.wait_for(timeout=10000)
            shot(team, "inbox-list-ko-phone")
        team.context.close()
        korean = page_for(viewport, CONVERSATIONS[0][1], "correct horse battery", "ko-KR")
        korean.locator("#message-list .message").first.wait_for(timeout=15000)
        shot(korean, f"customer-ko-{width}")
        inbox.context.close()
        customer.context.close()
        korean.context.close()
    return written


TEAMMATES = [
    ("ana.kim@example.com", "Ana Kim", "agent"),
    ("ben.ortiz@example.com", "Ben Ortiz", "agent"),
]
TEAM_PASSWORD = "teammate-pass-1"


def seed_team(live: LiveServer) -> dict:
    """Two agents invited by the admin and accepted; one conversation each; Ben away;
    Ana with Priya's conversation open (the admin sees "Ana Kim is viewing")."""
    admin_token = live.login(ADMIN[0], ADMIN[2])["access_token"]
    headers = {"Authorization": f"Bearer {admin_token}"}
    sockets = {}
    for email, name, role in TEAMMATES:
        invited = requests.post(
            live.url + "/api/staff/invitations",
            json={"email": email, "name": name, "role": role},
            headers=headers,
            timeout=10,
        )
        assert invited.status_code == 201, invited.text
        token = invited.json()["invite_url"].rsplit("/", 1)[1]
        accepted = requests.post(
            live.url + "/api/auth/accept-invite",
            json={"token": token, "name": name, "password": TEAM_PASSWORD},
            timeout=10,
        )
        assert accepted.status_code == 201, accepted.text
        sockets[name] = live.client(accepted.json()["access_token"])
    staff = requests.get(live.url + "/api/staff", headers=headers, timeout=10).json()["staff"]
    ids = {member["name"]: member["id"] for member in staff}
    requests.patch(
        f"{live.url}/api/staff/{ids['Ben Ortiz']}",
        json={"capacity": 5},
        headers=headers,
        timeout=10,
    )
    admin = live.client(admin_token)
    rooms = admin.call("list_rooms", {"limit": 50}, namespace="/chat")["rooms"]
    by_name = {room["customer"]["name"]: room["id"] for room in rooms}
    for customer, member in (("Jonas Becker", "Ana Kim"), (SHOPPERS[0][3], "Ben Ortiz")):
        if customer in by_name:
            ack = admin.call(
                "assign", {"room_id": by_name[customer], "agent_id": ids[member]}, namespace="/chat"
            )
            assert ack.get("ok"), ack
    if "Amara Okafor" in by_name:  # one waits for someone
        ack = admin.call(
            "assign", {"room_id": by_name["Amara Okafor"], "agent_id": None}, namespace="/chat"
        )
        assert ack.get("ok"), ack
    sockets["Ben Ortiz"].call("set_availability", {"available": False}, namespace="/chat")
    admin.disconnect()
    return {"sockets": sockets, "rooms": by_name}


def take_team(browser, live, out: Path, scheme: str, team: dict) -> list[Path]:
    """The Team dialog and the Mine view, desktop and phone, English and Korean."""
    written = []
    ana = team["sockets"]["Ana Kim"]
    priya = team["rooms"].get(CONVERSATIONS[0][0])

    def shot(page, name: str) -> None:
        path = out / f"{name}-{scheme}.png"
        page.screenshot(path=str(path))
        written.append(path)

    for width, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        for locale, suffix in (("en-US", ""), ("ko-KR", "-ko")):
            context = browser.new_context(viewport=viewport, color_scheme=scheme, locale=locale)
            page = context.new_page()
            page.goto(live.url + "/login")
            page.fill("input[name=email]", ADMIN[0])
            page.fill("input[name=password]", ADMIN[2])
            page.click("button[type=submit]")
            page.wait_for_selector("#connection[data-state=connected]", timeout=15000)
            page.click("#views .view[data-view=mine]")
            page.locator(".rooms li .room").first.wait_for(timeout=10000)
            page.wait_for_timeout(500)
            if width == "phone":
                shot(page, f"inbox-mine{suffix}-phone")
            if priya is not None:
                page.locator(".rooms li .room", has_text=CONVERSATIONS[0][0]).click()
                page.locator("#message-list .message").first.wait_for(timeout=15000)
                ana.call("view_room", {"room_id": priya}, namespace="/chat")
                page.locator("#viewers:not([hidden])").wait_for(timeout=10000)
                page.wait_for_timeout(300)
                shot(page, f"inbox-mine{suffix}-{width}")
                if width == "phone":
                    page.click("#back")
            page.click("#settings-team")
            page.locator("#team-list .member-row").nth(2).wait_for(timeout=10000)
            page.wait_for_timeout(300)
            shot(page, f"team{suffix}-{width}")
            context.close()
    return written


def take_away(browser, live, out: Path, scheme: str) -> list[Path]:
    """The away state: the inbox's Business hours, and a customer told the team is away
    (today closed, back tomorrow at 09:00 in Seoul), with the automatic reply."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    written = []
    agent = live.client(live.login(ADMIN[0], ADMIN[2])["access_token"])
    today = datetime.now(UTC).astimezone(ZoneInfo("Asia/Seoul")).date().isoformat()
    week = {
        d: [["09:00", "12:00"], ["13:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")
    }
    week["sat"] = [["10:00", "14:00"]]
    hours = {"timezone": "Asia/Seoul", "week": week, "closed": [today]}
    away = {
        "en": "Thanks for writing! We're closed today; we'll answer first thing tomorrow.",
        "ko": "문의 감사합니다! 오늘은 휴무라 내일 오전에 가장 먼저 답변드릴게요.",
    }
    settings = {"hours": hours, "away_message": away["en"]}
    agent.call("save_team_settings", settings, namespace="/chat")
    for lang, locale in (("en", "en-US"), ("ko", "ko-KR")):
        context = browser.new_context(viewport=DESKTOP, color_scheme=scheme, locale=locale)
        inbox = context.new_page()
        inbox.goto(live.url + "/login")
        inbox.fill("input[name=email]", ADMIN[0])
        inbox.fill("input[name=password]", ADMIN[2])
        inbox.click("button[type=submit]")
        inbox.wait_for_selector("#connection[data-state=connected]", timeout=15000)
        inbox.click("#settings-hours")
        inbox.wait_for_selector("#hours-dialog[open]")
        inbox.wait_for_timeout(400)
        path = out / f"inbox-hours{'-ko' if lang == 'ko' else ''}-desktop-{scheme}.png"
        inbox.screenshot(path=str(path))
        written.append(path)
        context.close()
    for lang, locale, email, name in (
        ("en", "en-US", f"away-{scheme}@example.com", "Mina Park"),
        ("ko", "ko-KR", f"away-ko-{scheme}@example.com", "박민아"),
    ):
        settings = {"hours": hours, "away_message": away[lang]}
        agent.call("save_team_settings", settings, namespace="/chat")
        time.sleep(6)  # the server's copy of the settings is refreshed every 5 s
        live.register_and_login(email, name)
        for width, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            context = browser.new_context(
                viewport=viewport, color_scheme=scheme, locale=locale, timezone_id="Asia/Seoul"
            )
            page = context.new_page()
            page.goto(live.url + "/login")
            page.fill("input[name=email]", email)
            page.fill("input[name=password]", "correct horse battery")
            page.click("button[type=submit]")
            page.wait_for_selector("#away-banner:not([hidden])", timeout=15000)
            if width == "desktop":
                page.wait_for_selector("#composer-send:not([disabled])", timeout=15000)
                text = (
                    "Is the Hario kettle back in stock?"
                    if lang == "en"
                    else "하리오 주전자 재입고됐나요?"
                )
                page.fill("#composer-input", text)
                page.press("#composer-input", "Enter")
            page.locator("#message-list .message").nth(1).wait_for(timeout=15000)
            page.wait_for_timeout(400)
            path = out / f"customer-away-{lang}-{width}-{scheme}.png"
            page.screenshot(path=str(path))
            written.append(path)
            context.close()
    agent.disconnect()
    return written


def take_emails(browser, outbox: Path, out: Path, scheme: str) -> list[Path]:
    """The emails the app wrote (a reply in English and in Korean, and the agents'
    alert), their HTML rendered in Chromium."""
    from email import policy
    from email.parser import BytesParser

    wanted = {}
    for file in sorted(outbox.glob("*.eml")):
        message = BytesParser(policy=policy.default).parsebytes(file.read_bytes())
        kind = "alert" if message["Message-ID"].startswith("<alert-") else "reply"
        name = f"email-{kind}-{message['Content-Language']}"
        wanted.setdefault(name, message.get_body(preferencelist=("html",)).get_content())
    for name in ("email-reply-en", "email-reply-ko"):
        assert name in wanted, f"no {name} in the outbox"
    assert any(n.startswith("email-alert-") for n in wanted), "no alert in the outbox"
    written = []
    for name, html in wanted.items():
        assert html is not None, f"no {name} in the outbox"
        context = browser.new_context(viewport={"width": 640, "height": 720}, color_scheme=scheme)
        page = context.new_page()
        page.set_content(html)
        path = out / f"{name}-{scheme}.png"
        page.screenshot(path=str(path), full_page=True)
        written.append(path)
        context.close()
    return written


def korean_reply(live: LiveServer) -> None:
    """A Korean customer who left gets the agent's reply by email, in Korean."""
    password = "correct horse battery"
    email = "seoyeon@example.com"
    requests.post(
        live.url + "/api/auth/register",
        json={"email": email, "password": password, "name": "이서연"},
        timeout=10,
    )
    token = requests.post(
        live.url + "/api/auth/login",
        json={"email": email, "password": password},
        headers={"Accept-Language": "ko"},
        timeout=10,
    ).json()["access_token"]
    customer = live.client(token)
    ack = customer.call(
        "send_message", {"body": "주문한 찻잔 세트가 아직 안 왔어요."}, namespace="/chat"
    )
    customer.disconnect()
    agent = live.client(live.login(ADMIN[0], ADMIN[2])["access_token"])
    reply = {
        "room_id": ack["message"]["room_id"],
        "body": "확인해 보니 오늘 출발했습니다. 내일 도착 예정이에요!",
    }
    agent.call("send_message", reply, namespace="/chat")
    agent.disconnect()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument("--only", choices=["team"], help="only these pictures (quicker)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not os.path.exists(CHROMIUM):
        sys.exit(f"needs Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as folder:
        database_url = f"sqlite:///{folder}/screenshots.db"
        migrate(database_url)
        outbox = Path(folder) / "outbox"
        live = LiveServer(
            database_url,
            "eventlet",
            CHAT_RATE_LIMIT="1000/10",
            CHAT_EMAIL_DELAY="1",
            MAIL_OUTBOX_DIR=str(outbox),
        ).start()
        shop = Shop(live.url)
        try:
            site = register_shop(database_url, shop.origin)
            seed(live)
            seed_shoppers(live, site)
            korean_reply(live)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                if args.only == "team":
                    team = seed_team(live)
                    for scheme in ("light", "dark"):
                        for path in take_team(browser, live, out, scheme, team):
                            print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
                    browser.close()
                    return
                for scheme in ("light", "dark"):
                    for path in take(browser, live, out, scheme) + take_widget(
                        browser, shop, site, out, scheme
                    ):
                        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
                # Every page is closed: the agents' alert goes out within the sweep's 15 s.
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and not any(
                    b"<alert-" in f.read_bytes() for f in outbox.glob("*.eml")
                ):
                    time.sleep(0.5)
                for scheme in ("light", "dark"):
                    for path in take_emails(browser, outbox, out, scheme) + take_away(
                        browser, live, out, scheme
                    ):
                        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
                team = seed_team(live)
                for scheme in ("light", "dark"):
                    for path in take_team(browser, live, out, scheme, team):
                        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
                browser.close()
        finally:
            shop.close()
            live.close()


if __name__ == "__main__":
    main()
