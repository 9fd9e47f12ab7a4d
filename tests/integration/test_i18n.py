"""Korean and English (issue 20): the language of a page, its strings, and the catalogs
that hold them (translations/, Flask-Babel)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from tests.integration.test_pages import csrf_from, log_in

ROOT = Path(__file__).resolve().parents[2]
PO = ROOT / "translations" / "ko" / "LC_MESSAGES" / "messages.po"
MO = PO.with_suffix(".mo")


def extracted() -> set[str]:
    """Every string the code, pages and scripts mark, as `make translations` finds them."""
    method_map = [
        ("app/**.py", "python"),
        ("templates/**.html", "jinja2"),
        ("templates/email/**.txt", "jinja2"),
        ("app/static/js/**.js", "javascript"),
        ("templates/widget/**.js", "javascript"),
    ]
    keywords = {
        "_": None,
        "gettext": None,
        "_l": None,
        "lazy_gettext": None,
        "t": None,
        "ngettext": (1, 2),
    }
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, keywords=keywords
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def entries(catalog) -> dict:
    """msgid (a plural's singular) -> its translation(s), for the translated ones."""
    out = {}
    for m in catalog:
        if not m.id or getattr(m, "fuzzy", False):
            continue
        key = m.id if isinstance(m.id, str) else m.id[0]
        value = m.string if isinstance(m.string, str) else tuple(m.string)
        if value if isinstance(value, str) else all(value):
            out[key] = value
    return out


def test_every_marked_string_has_a_korean_translation_and_the_compiled_catalog_is_current():
    translated = entries(read_po(PO.open("rb"), locale="ko"))
    missing = sorted(extracted() - set(translated))
    assert not missing, f"run `make translations` and translate: {missing}"
    compiled = read_mo(io.BytesIO(MO.read_bytes()))
    assert entries(compiled) == translated, (
        "translations/ko/LC_MESSAGES/messages.mo is stale: run `make translations`"
    )


def test_the_scripts_strings_are_all_in_the_catalog(app):
    from app.i18n import js_messages

    catalog = {m.id for m in read_po(PO.open("rb"), locale="ko") if m.id}
    assert set(js_messages()) <= catalog


@pytest.mark.parametrize(
    ("accept", "lang", "heading"),
    [
        ("ko-KR,ko;q=0.9,en;q=0.8", "ko", "로그인"),
        ("en-US,en;q=0.9", "en", "Log in"),
        ("", "en", "Log in"),
        ("fr-FR", "en", "Log in"),
    ],
)
def test_a_page_speaks_the_browsers_language_else_english(http, accept, lang, heading):
    page = http.get("/login", headers={"Accept-Language": accept} if accept else {})
    text = page.get_data(as_text=True)
    assert f'<html lang="{lang}">' in text
    assert f"<h1>{heading}</h1>" in text


def test_the_locale_argument_wins_over_the_browser(http):
    page = http.get("/login?locale=ko", headers={"Accept-Language": "en"})
    assert '<html lang="ko">' in page.get_data(as_text=True)


def test_a_korean_page_carries_its_scripts_strings_in_korean(http, users, customer):
    log_in(http, customer)
    page = http.get("/chat", headers={"Accept-Language": "ko"}).get_data(as_text=True)
    start = page.index('<script type="application/json" id="i18n">') + len(
        '<script type="application/json" id="i18n">'
    )
    catalog = json.loads(page[start : page.index("</script>", start)])
    assert catalog["Sent"] == "전송됨"
    assert catalog["Hi %(name)s!"] == "%(name)s님, 안녕하세요!"
    assert '<html lang="ko">' in page


def test_form_errors_are_translated(http):
    token = csrf_from(http.get("/register"))
    page = http.post(
        "/register",
        data={"name": "", "email": "nobody", "password": "short", "csrf_token": token},
        headers={"Accept-Language": "ko"},
    ).get_data(as_text=True)
    assert "이름을 입력해 주세요." in page
    assert "이메일 주소 형식이 올바르지 않아요." in page
    assert "8자 이상 입력해 주세요." in page


def test_the_loader_carries_its_strings_in_both_languages(http):
    script = http.get("/widget.js").get_data(as_text=True)
    start = script.index("var catalogs = ") + len("var catalogs = ")
    catalogs = json.loads(script[start : script.index(";\n", start)])
    assert catalogs["ko"]["Support chat"] == "고객센터 채팅"
    assert catalogs["en"]["Support chat"] == "Support chat"
