"""Korean and English (Flask-Babel; catalogs in translations/, built by `make translations`).

The language of a request: the `locale` query argument (the widget passes the site's
`data-locale` through), then the browser's `Accept-Language`, then English. Pages say
it in `<html lang>`; their scripts get the catalog's strings for it (`js_catalog`) and
format dates with the browser's `Intl` in that language.

Socket events have no request of their own: their answers' messages are in English and
the pages show their own translated text for each error code.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

from flask import Flask, request
from flask_babel import Babel, get_locale, gettext
from markupsafe import Markup

LANGUAGES = ("en", "ko")
TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"
babel = Babel()


def select_locale() -> str:
    asked = request.args.get("locale", "")
    for language in LANGUAGES:
        if asked.lower().replace("_", "-").split("-")[0] == language:
            return language
    return request.accept_languages.best_match(LANGUAGES) or "en"


def current_language() -> str:
    return str(get_locale() or "en")


SCRIPTS = Path(__file__).resolve().parent / "static" / "js"
# `t("…")` in the pages' scripts, as `pybabel extract` finds them (babel.cfg).
_T_CALL = re.compile(r'\bt\(\s*"((?:[^"\\]|\\.)*)"')


@cache
def js_messages() -> tuple[str, ...]:
    """The strings the pages' scripts translate, read from the scripts once."""
    found: dict[str, None] = {}
    for script in sorted(SCRIPTS.glob("*.js")):
        for literal in _T_CALL.findall(script.read_text(encoding="utf-8")):
            found[json.loads(f'"{literal}"')] = None  # JavaScript's escapes are JSON's
    return tuple(found)


def js_catalog() -> dict[str, str]:
    """Every string the pages' scripts ask for (`t("…")`), in the request's language."""
    return {message: gettext(message) for message in js_messages()}


def init_i18n(app: Flask) -> None:
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    babel.init_app(app, locale_selector=select_locale)

    @app.context_processor
    def language() -> dict:
        return {"lang": current_language(), "js_catalog": js_catalog, "kbd": kbd}


def kbd(key: str) -> Markup:
    """A key to press, for a translated sentence that names it: `_("Press %(key)s…",
    key=kbd("?"))` (the sentence is escaped, the key's markup kept)."""
    return Markup("<kbd>{}</kbd>").format(key)
