"""The settings and account pages' fast paths keep every request in its own language.

What is cached (issue 13): the catalogue, per request (on the app context, while the locale
object stays the same), and the blocks wrapped in ``{% call mailconnect_cached(...) %}`` (the
script's words, the signature toolbar), per app and catalogue. These tests switch the language
between requests of one app (one worker), between apps, and inside a request (force_locale),
and compare a cached block with the block rendered without the cache.
"""

from __future__ import annotations

import json
import re

from flask import Flask, render_template, render_template_string
from flask_babel import force_locale

from flask_mailconnect import i18n
from tests.conftest import login
from tests.i18n_host import i18n_app

TOOLBAR_WORDS = ("Signature formatting", "Bold", "Italic", "Link")
JS_WORD = "Test the connection to enable saving."


def _words(app: Flask, lang: str, *english: str) -> list[str]:
    with app.test_request_context(f"/?lang={lang}"):
        return [i18n.gettext(text) for text in english]


def _script_words(page: str) -> dict[str, str]:
    found = re.search(r'<script type="application/json" id="mc-strings">(.*?)</script>', page)
    assert found, "no script words in the page"
    return dict(json.loads(found.group(1)))


def test_pages_follow_each_requests_language_in_one_app() -> None:
    """English, German, English, Dutch, German again in one app: each settings and account
    page in its request's language, its script words and toolbar too; nothing carries over."""
    app = i18n_app()
    client = app.test_client()
    login(client, 1)
    english = ["Email accounts", "Other (IMAP / SMTP)", JS_WORD, *TOOLBAR_WORDS]
    expected = {lang: _words(app, lang, *english) for lang in ("en", "de", "nl")}
    assert expected["en"] == english
    assert all(a != b for a, b in zip(expected["de"][:3], english[:3], strict=True))
    for lang in ("en", "de", "en", "nl", "de"):
        heading, provider, js_word, *toolbar = expected[lang]
        settings = client.get(f"/email/?lang={lang}").get_data(as_text=True)
        assert f'<h1 class="mc-title">{heading}</h1>' in settings
        assert f"alice@example.test · {provider} · " in settings
        assert _script_words(settings)["save_hint_first"] == js_word
        account = client.get(f"/email/accounts/1?lang={lang}").get_data(as_text=True)
        assert _script_words(account)["save_hint_first"] == js_word
        bold = toolbar[1]
        assert f'title="{bold}" aria-label="{bold}"' in account
        assert f'aria-label="{toolbar[0]}"' in account


def test_cached_blocks_are_kept_per_app() -> None:
    """Two apps in one process, German and Dutch: each keeps its own copy."""
    german, dutch = i18n_app(), i18n_app()
    clients = []
    for app in (german, dutch):
        client = app.test_client()
        login(client, 1)
        clients.append(client)
    want = [_words(german, "de", JS_WORD)[0], _words(dutch, "nl", JS_WORD)[0]]
    assert want[0] != want[1]
    for _round in range(2):
        for client, lang, word in zip(clients, ("de", "nl"), want, strict=True):
            page = client.get(f"/email/accounts/1?lang={lang}").get_data(as_text=True)
            assert _script_words(page)["save_hint_first"] == word


def test_cached_block_follows_force_locale() -> None:
    """A host rendering our partials in another language inside a request (force_locale)
    gets that language from the cache too, and its own again afterwards."""
    app = i18n_app()
    block = '{% call mailconnect_cached("test_block") %}{{ _mc("Save folders") }}{% endcall %}'
    with app.test_request_context("/?lang=de"):
        assert render_template_string(block) == "Ordner speichern"
        with force_locale("nl"):
            assert render_template_string(block) == "Mappen opslaan"
        assert render_template_string(block) == "Ordner speichern"


def test_cached_blocks_match_the_uncached_rendering() -> None:
    """The fast path (kept) writes what the slow path (rendered each time, as with templates
    reloaded on edit) writes, in each language; and a reloading app keeps nothing."""
    cached, fresh = i18n_app(), i18n_app(TEMPLATES_AUTO_RELOAD=True)
    assert fresh.jinja_env.auto_reload and not cached.jinja_env.auto_reload
    for lang in ("en", "de", "nl"):
        pages = []
        for app in (cached, fresh):
            with app.test_request_context(f"/?lang={lang}"):
                pages.append(
                    [render_template("mailconnect/_js_strings.html") for _ in range(2)]
                    + [render_template("mailconnect/_assets.html") for _ in range(2)]
                )
        assert pages[0] == pages[1]
        assert pages[0][0] == pages[0][1] and _script_words(pages[0][0])
    assert fresh not in i18n._fragments
    assert cached in i18n._fragments


def test_no_app_no_cache() -> None:
    """Outside an app (a template rendered by hand): the block as written, nothing kept."""
    before = len(i18n._fragments)
    assert i18n.cached_fragment("x", lambda: "<b>a</b>") == "<b>a</b>"
    assert len(i18n._fragments) == before


def test_catalogue_kept_per_request_not_across() -> None:
    """The catalogue kept on one request's context is never another request's: a German
    request after an English one in the same app reads German."""
    app = i18n_app()
    with app.test_request_context("/?lang=en"):
        assert i18n.gettext("Save folders") == "Save folders"
        assert i18n.gettext("Save folders") == "Save folders"  # from the kept catalogue
    with app.test_request_context("/?lang=de"):
        assert i18n.gettext("Save folders") == "Ordner speichern"
