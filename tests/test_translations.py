"""Translations (gettext domain ``flask_mailconnect``): optional Flask-Babel, catalogues that
stay complete and current, and no English left outside the catalogue in our templates, JS and
Python-side messages.

What fails here and how to fix it:

- the .pot differs from the sources, a catalogue misses or mistranslates a message (placeholders
  or HTML tags differ), or a .mo is older than its .po: run ``make translations``, then translate
  what ``pybabel`` added to ``flask_mailconnect/translations/<lang>/LC_MESSAGES/*.po``;
- text in a template is not inside ``_mc(...)``: wrap it (docs/translations.rst).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po
from flask import Flask, flash, get_flashed_messages, render_template_string
from flask_babel import Babel
from markupsafe import escape

import flask_mailconnect
from flask_mailconnect import codes, i18n
from flask_mailconnect.models import AuditEvent, MailAccount, MailProvider
from tests import hostapp
from tests.conftest import login

PACKAGE = Path(flask_mailconnect.__file__).parent
ROOT = PACKAGE.parent
I18N = PACKAGE / "translations"
POT = I18N / "flask_mailconnect.pot"
LANGUAGES = ("de", "nl")
TEMPLATES = PACKAGE / "templates"
SCRIPT = PACKAGE / "static" / "mailconnect" / "mailconnect.js"

#: Templates known to hold text not wrapped yet (none): the scan below fails for any other, and
#: for a listed one that is clean, so the list can only shrink.
PENDING_TEMPLATES: frozenset[str] = frozenset()
#: Python modules whose flash()/form/validation texts are not wrapped yet (same rule; none).
PENDING_MODULES: frozenset[str] = frozenset()


# -- the catalogues ------------------------------------------------------------------------------


def _po(lang: str) -> Path:
    return I18N / lang / "LC_MESSAGES" / "flask_mailconnect.po"


def _mo(lang: str) -> Path:
    return I18N / lang / "LC_MESSAGES" / "flask_mailconnect.mo"


def _read(path: Path) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle)


def _key(message: Any) -> tuple[Any, str | None]:
    ident = tuple(message.id) if isinstance(message.id, list) else message.id  # read_mo: lists
    return ident, message.context


def _extract_args() -> list[str]:
    """``pybabel extract``'s keywords and comment tag, read from the Makefile's
    ``translations`` target so that this test extracts exactly as ``make translations`` does."""
    makefile = (ROOT / "Makefile").read_text()
    flags = re.findall(r"(?<!\S)(-[kc]) (\S+)", makefile)
    assert ("-k", "_mc") in flags and ("-k", "_mc_n:1,2") in flags, flags
    return [part for pair in flags for part in pair]


def test_pot_is_current_with_the_sources(tmp_path: Path) -> None:
    """Every string the sources mark is in the .pot and nothing else: ``make translations``
    was run after the last change of a marked string."""
    fresh = tmp_path / "fresh.pot"
    pybabel = Path(sys.executable).with_name("pybabel")
    subprocess.run(
        [str(pybabel), "-q", "extract", "--no-default-keywords", *_extract_args(),
         "-F", "babel.cfg", "-o", str(fresh), "."],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    extracted = {_key(m): m.string for m in _read(fresh) if m.id}
    committed = {_key(m): m.string for m in _read(POT) if m.id}
    missing = sorted(str(k) for k in extracted.keys() - committed.keys())
    stale = sorted(str(k) for k in committed.keys() - extracted.keys())
    assert not missing and not stale, (
        f"run `make translations`: new in the sources {missing[:10]}, gone {stale[:10]}"
    )
    assert len(extracted) > 150  # the extraction ran over templates and Python alike


_PLACEHOLDER = re.compile(r"%(?:\((\w+)\))?[-#0 +]*\d*(?:\.\d+)?([sdrifx%])")
_TAG = re.compile(r"</?([a-zA-Z][a-zA-Z0-9]*)")


def _placeholders(text: str) -> set[str]:
    """``{"num:d", "url:s"}``: a translation may repeat or drop a repeated one, not change one."""
    return {f"{name}:{kind}" for name, kind in _PLACEHOLDER.findall(text) if kind != "%"}


def _tags(text: str) -> Counter[str]:
    return Counter(_TAG.findall(text))


@pytest.mark.parametrize("lang", LANGUAGES)
def test_catalogue_is_complete(lang: str) -> None:
    """Every message of the .pot is translated in ``lang`` (not fuzzy, every plural form), with
    the same %(name)s placeholders and HTML tags as the English; nothing extra is left in."""
    pot = {_key(m): m for m in _read(POT) if m.id}
    catalogue = _read(_po(lang))
    assert catalogue.locale is not None and str(catalogue.locale) == lang
    assert catalogue.num_plurals >= 2
    po = {_key(m): m for m in catalogue if m.id}
    problems = [f"missing: {key[0]!r}" for key in pot if key not in po]
    problems += [f"not in the .pot (stale): {key[0]!r}" for key in po if key not in pot]
    for key, message in po.items():
        if key not in pot:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.fuzzy or not all(forms):
            problems.append(f"untranslated or fuzzy: {ids[0]!r}")
            continue
        for form in forms:
            if _placeholders(form) != _placeholders(ids[-1]):
                problems.append(f"placeholders differ: {ids[0]!r} -> {form!r}")
            if _tags(form) != _tags(ids[-1]):
                problems.append(f"HTML tags differ: {ids[0]!r} -> {form!r}")
    assert not problems, "\n".join(problems[:40])


@pytest.mark.parametrize("lang", LANGUAGES)
def test_compiled_catalogue_matches_its_po(lang: str) -> None:
    """The shipped .mo says what the .po says: ``pybabel compile`` ran after the last edit."""
    with _mo(lang).open("rb") as handle:
        compiled = {_key(m): _forms(m.string) for m in read_mo(handle) if m.id}
    written = {_key(m): _forms(m.string) for m in _read(_po(lang)) if m.id and not m.fuzzy}
    assert compiled == written, "run `make translations` (the .mo is stale)"


def _forms(string: Any) -> tuple[str, ...]:
    return tuple(string) if isinstance(string, (list, tuple)) else (string,)


def test_catalogues_ship_in_the_wheel() -> None:
    """The wheel is the package directory (hatch ``packages``), minus what git ignores: the
    compiled catalogues are in it only if nothing ignores them."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    wheel = re.search(r"\[tool\.hatch\.build\.targets\.wheel\]\n(.*?)\n\[", pyproject, re.S)
    assert wheel and 'packages = ["flask_mailconnect"]' in wheel.group(1)
    assert "exclude" not in wheel.group(1)
    shipped = [str(_mo(lang).relative_to(ROOT)) for lang in LANGUAGES]
    ignored = subprocess.run(
        ["git", "check-ignore", *shipped], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert ignored.stdout.strip() == "", f"git ignores {ignored.stdout}"
    assert all(_mo(lang).stat().st_size > 1000 for lang in LANGUAGES)


# -- at run time ----------------------------------------------------------------------------------


def _babel_app(locale: str | None, **config: Any) -> Flask:
    app, _ext = hostapp.create_app(**config)
    Babel(app, locale_selector=lambda: locale)
    return app


def test_without_flask_babel_strings_pass_through(app: Flask) -> None:
    """No Flask-Babel on the app: the English source, formatted the same way."""
    assert "babel" not in app.extensions
    with app.test_request_context(headers={"Accept-Language": "de"}):
        assert i18n.gettext("Cancel") == "Cancel"
        assert i18n.gettext("Connected %(email)s.", email="a@b.example") == "Connected a@b.example."
        new = ("%(num)d new message.", "%(num)d new messages.")
        assert i18n.ngettext(*new, 1) == "1 new message."
        assert i18n.ngettext(*new, 3) == "3 new messages."
        assert str(i18n.lazy_gettext("Port")) == "Port"
        assert i18n.gettext("100% sure") == "100% sure"  # no variables: no formatting
    # Outside any app, too (the CLI, import time).
    assert i18n.gettext("Key %(key)s", key="x") == "Key x"


def test_without_flask_babel_installed_strings_pass_through(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The package without the ``babel`` extra (flask_babel not importable: ``Domain`` is
    ``None``), even on an app that registered Babel-like state: English, formatted."""
    app = _babel_app("de")
    monkeypatch.setattr(i18n, "Domain", None)
    with app.test_request_context():
        assert i18n.gettext("Save folders") == "Save folders"
        assert i18n.gettext("Connected %(email)s.", email="x@y.example") == "Connected x@y.example."
        assert i18n.current_locale() == "en"


def test_template_helpers_escape_values_and_keep_the_host_underscore(app: Flask) -> None:
    """``_mc`` fills values escaped (the catalogue's own markup is kept); the host's ``_`` is
    not ours to define."""
    assert "_" not in app.jinja_env.globals
    with app.test_request_context():
        html = render_template_string(
            '{{ _mc("Connected %(email)s.", email=e) }}|'
            '{{ _mc("To connect, try again and choose <strong>Allow</strong>.") }}|'
            '{{ _mc_n("%(num)d account", "%(num)d accounts", 2) }}',
            e="<script>x</script>",
        )
    assert html == (
        "Connected &lt;script&gt;x&lt;/script&gt;.|"
        "To connect, try again and choose <strong>Allow</strong>.|2 accounts"
    )


def test_lazy_strings_translate_when_used() -> None:
    """A module-level label follows the locale of the request that prints it."""
    label = i18n.lazy_gettext("Save folders")
    german, english = _babel_app("de"), _babel_app("en")
    with german.test_request_context():
        assert str(label) == "Ordner speichern"
        assert label == "Ordner speichern" and "Ordner" in label
    with english.test_request_context():
        assert str(label) == "Save folders"
    assert str(label) == "Save folders"
    # Printed in a template, a lazy string is text: escaped, never markup.
    assert str(escape(i18n.LazyString(lambda: "a < b"))) == "a &lt; b"


@pytest.mark.parametrize(
    ("lang", "heading", "lede"),
    [
        ("de", "E-Mail-Konto verbinden", "Geben Sie Ihre Adresse ein"),
        ("nl", "E-mailaccount koppelen", "Voer uw adres in"),
    ],
)
def test_connect_page_in_the_locale(lang: str, heading: str, lede: str) -> None:
    app = _babel_app(lang)
    client = app.test_client()
    login(client, 1)
    page = client.get("/email/connect").get_data(as_text=True)
    assert heading in page and lede in page
    assert "Connect an email account" not in page
    # The script's words come in the page's language too.
    assert '"enter_email": "' in page
    with app.test_request_context():
        assert i18n.gettext("Enter an email address such as name@example.com.") in page


def test_force_locale_switches_our_strings_too() -> None:
    """A host rendering something in another language (an email to a Dutch colleague from a
    German page) gets our strings in that language, and its own again afterwards."""
    from flask_babel import force_locale

    with _babel_app("de").test_request_context():
        assert i18n.gettext("Save folders") == "Ordner speichern"
        with force_locale("nl"):
            assert i18n.gettext("Save folders") == "Mappen opslaan"
        assert i18n.gettext("Save folders") == "Ordner speichern"


def test_english_locale_with_babel_is_the_source_text() -> None:
    app = _babel_app("en")
    client = app.test_client()
    login(client, 1)
    assert "Connect an email account" in client.get("/email/connect").get_data(as_text=True)


def test_form_labels_errors_and_flash_in_german() -> None:
    """An admin adds a provider in German: labels, choices, a validation error and the flash."""
    app = _babel_app("de")
    client = app.test_client()
    login(client, 3)
    page = client.get("/email/admin/providers/new").get_data(as_text=True)
    assert "Anbieter hinzufügen" in page  # heading
    assert "Vollständige E-Mail-Adresse" in page  # a choice
    assert "Nutzern angeboten" in page  # a label
    form = {
        "csrf_token": _csrf(client, "/email/admin/providers/new"),
        "name": "Acme Mail", "enabled": "y", "service_type": "imap_smtp", "sends": "y",
        "receives": "y", "smtp_host": "smtp.acme.example", "smtp_port": "99999",
        "smtp_security": "starttls", "imap_host": "imap.acme.example", "imap_port": "993",
        "imap_security": "ssl", "login_format": "email", "auth_method": "password",
        "domains": "acme.example",
    }  # fmt: skip
    refused = client.post("/email/admin/providers/new", data=form)
    assert refused.status_code == 422
    assert "Geben Sie eine Portnummer zwischen 1 und 65535 ein." in refused.get_data(as_text=True)
    form["smtp_port"] = "587"
    saved = client.post("/email/admin/providers/new", data=form)
    assert saved.status_code == 302
    with client.session_transaction() as session:
        flashes = [text for _category, text in session.get("_flashes", [])]
    assert flashes == ["Anbieter Acme Mail gespeichert."]
    with app.app_context():
        assert hostapp.db.session.query(MailProvider).count() == 1


def _csrf(client: Any, url: str) -> str:
    page = client.get(url).get_data(as_text=True)
    found = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
        r'name="csrf_token" type="hidden" value="([^"]+)"', page
    )
    assert found, "no CSRF token in the page"
    return found.group(1)


def test_host_catalogue_overrides_one_string(tmp_path: Path) -> None:
    """A host ships ``<its translations>/de/LC_MESSAGES/flask_mailconnect.mo`` with the one
    string it wants worded differently; every other string still comes from ours."""
    catalogue = Catalog(locale="de", domain="flask_mailconnect")
    catalogue.add("Cancel", "Lieber nicht")
    target = tmp_path / "de" / "LC_MESSAGES"
    target.mkdir(parents=True)
    with (target / "flask_mailconnect.mo").open("wb") as handle:
        write_mo(handle, catalogue)
    app = _babel_app("de", BABEL_TRANSLATION_DIRECTORIES=str(tmp_path))
    with app.test_request_context():
        assert i18n.gettext("Cancel") == "Lieber nicht"
        assert i18n.gettext("Save folders") == "Ordner speichern"


def test_stock_messages_are_translated_where_shown() -> None:
    """Codes' messages are made (and stored) in English; pages translate them by code, with the
    provider's advice after them, and leave any other text alone."""
    from flask_mailconnect import codes
    from flask_mailconnect.accounts.oauth import NO_GRAPH
    from flask_mailconnect.oauth.refresh import REVOKED_SAID
    from flask_mailconnect.providers.model import app_password_hint
    from flask_mailconnect.views.common import localize

    english = codes.message_for(codes.AUTH_FAILED, {codes.AUTH_FAILED: "Ask the help desk."})
    assert english.startswith("The server rejected the login or password.")
    with _babel_app("de").test_request_context():
        assert localize(codes.AUTH_FAILED, english) == (
            "Der Server hat den Benutzernamen oder das Passwort abgelehnt. Prüfen Sie beides und "
            "versuchen Sie es erneut. Ask the help desk."
        )
        assert localize(codes.TIMEOUT, "A server's own words.") == "A server's own words."
        assert localize(codes.SMTP_AUTH_DISABLED, NO_GRAPH).startswith(
            "Das Senden über SMTP (SMTP AUTH) ist für dieses Postfach deaktiviert."
        )
        assert localize(None, None) == ""
        # A provider's advice with values in it, and a stored OAuth remedy naming the provider.
        yahoo = codes.message_for(codes.AUTH_FAILED, app_password_hint("Yahoo", "https://y.test"))
        assert localize(codes.AUTH_FAILED, yahoo).endswith(
            "Yahoo verlangt hier ein App-Passwort statt Ihres normalen Passworts: Erstellen Sie "
            "eines unter https://y.test und fügen Sie es stattdessen ein."
        )
        revoked = REVOKED_SAID % {"provider": "Acme Mail"}
        assert localize("token_revoked", revoked).startswith(
            "Acme Mail akzeptiert die Anmeldung dieses Kontos nicht mehr"
        )
    with _babel_app("en").test_request_context():
        assert localize(codes.AUTH_FAILED, english) == english


def test_status_words_cover_every_status_label() -> None:
    """Templates print ``_mc(account.status_label)``: each label is a msgid (views/common.py)."""
    from flask_mailconnect.models import AccountStatus
    from flask_mailconnect.views.common import STATUS_WORDS

    assert set(AccountStatus.LABELS.values()) <= set(STATUS_WORDS)


@pytest.mark.parametrize(("babel", "lang"), [(False, "en"), (True, "nl")])
def test_standalone_page_declares_its_language(babel: bool, lang: str) -> None:
    app, _ext = hostapp.create_app(MAILCONNECT_BASE_TEMPLATE="mailconnect/standalone.html")
    if babel:
        Babel(app, locale_selector=lambda: "nl")
    client = app.test_client()
    login(client, 1)
    page = client.get("/email/").get_data(as_text=True)
    assert f'<html lang="{lang}">' in page


def test_flask_wtf_csrf_reason_is_translated() -> None:
    app = _babel_app("de")
    client = app.test_client()
    login(client, 1)
    answer = client.post("/email/connect/test", headers={"Accept": "application/json"})
    assert answer.status_code == 400
    assert answer.get_json()["message"] == "Das CSRF-Token fehlt."


def test_flash_survives_the_redirect_in_the_locale() -> None:
    """Flashed texts are translated when flashed (the request's locale), not when shown."""
    app = _babel_app("nl")
    with app.test_request_context():
        flash(i18n.gettext("No new mail."))
        assert get_flashed_messages() == ["Geen nieuwe e-mail."]


# -- nothing left unwrapped ----------------------------------------------------------------------

#: Words only English text has (in German and Dutch pages they mean an untranslated string).
_ENGLISH = re.compile(
    r"\b(the|your|and|with|this|that|other|never|from|which|will|been|has|have|cannot|could)\b",
    re.IGNORECASE,
)


class _VisibleText(HTMLParser):
    """The text a person reads or hears: text nodes and read attributes, scripts left out."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._skip += tag in ("script", "style")
        self.parts += [v for k, v in attrs if k in _READ_ATTRIBUTES and v]

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("script", "style") and self._skip > 0

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.parts.append(data.strip())


@pytest.mark.parametrize("lang", LANGUAGES)
def test_pages_in_the_locale_show_no_english(lang: str) -> None:
    """Every page of a person and of an admin, rendered in ``lang`` with an account (in
    error, with a stored English message) and an audit event: no English sentence in what is
    read, host navigation and addresses aside."""
    app = _babel_app(lang)
    with app.app_context():
        account = MailAccount(
            owner_kind="user", owner_id="3", provider="other", email="ana@example.org",
            username="ana@example.org", password="secret", smtp_host="smtp.example.org",
            smtp_port=587, smtp_security="starttls", imap_host="imap.example.org",
            imap_port=993, imap_security="ssl", status="error", is_default=True,
            last_error_code=codes.AUTH_FAILED, last_error_message=codes.message_for("auth_failed"),
        )  # fmt: skip
        hostapp.db.session.add(account)
        hostapp.db.session.add(AuditEvent(
            action="disconnect", outcome="ok", actor_id="3", actor_label="admin@example.test",
            account_email="old@example.org", owner_kind="user", owner_id="1",
        ))  # fmt: skip
        hostapp.db.session.commit()
        ident = account.id
    client = app.test_client()
    login(client, 3)
    pages = [
        "/email/", "/email/connect", "/email/connect?email=ana@yahoo.com",
        f"/email/accounts/{ident}", f"/email/accounts/{ident}/reconnect",
        f"/email/accounts/{ident}/disconnect", "/email/scopes/organization/",
        "/email/admin/accounts", "/email/admin/providers", "/email/admin/providers/new",
        "/email/admin/audit", "/email/admin/users",
    ]  # fmt: skip
    found = {}
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, path
        reader = _VisibleText()
        reader.feed(response.get_data(as_text=True))
        english = [
            text for text in reader.parts
            if _ENGLISH.search(text) and "@" not in text and text != "Host navigation"
        ]  # fmt: skip
        if english:
            found[path] = english
    assert found == {}


# -- nothing left unwrapped (sources) ------------------------------------------------------------

#: Attributes people read (or hear, through a screen reader).
_READ_ATTRIBUTES = {"aria-label", "title", "placeholder", "alt", "aria-description", "label"}
#: Names that are the same in every language.
_NAMES = re.compile(r"\bOAuth\b")
_JINJA = re.compile(r"{{.*?}}|{%.*?%}|{#.*?#}", re.S)
#: A word people read: protocol names in capitals (SMTP, IMAP) are the same in every language.
_WORD = re.compile(r"\b[A-Za-z]*[a-z][A-Za-z]*[a-z][A-Za-z]*\b")


class _TextFinder(HTMLParser):
    """English words in text nodes and read attributes, once Jinja tags are taken out."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "svg", "code", "pre"):
            self._skip += 1
        for name, value in attrs:
            if name in _READ_ATTRIBUTES and value and _WORD.search(value):
                self.found.append(f'{name}="{value}"')

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "svg", "code", "pre") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and _WORD.search(_NAMES.sub("", data)):
            self.found.append(data.strip())


def _unwrapped(source: str) -> list[str]:
    finder = _TextFinder()
    finder.feed(_JINJA.sub(" ", source))
    # Strings written in Jinja expressions ({{ "Save" if x else "..." }}) without _mc(.
    for expression in re.findall(r"{{(.*?)}}|{%(.*?)%}", source, re.S):
        code = "".join(expression)
        for literal in re.findall(r"\"([^\"]*)\"|'([^']*)'", code):
            text = "".join(literal)
            if _sentence(text) and "_mc" not in code:
                finder.found.append(text)
    return finder.found


def _sentence(text: str) -> bool:
    """Two or more words, not a list of CSS classes or identifiers (``mc-btn mc-btn--primary``)."""
    words = text.split()
    return (
        len(words) > 1
        and bool(re.search(r"[A-Za-z]{2,} [a-z]{2,}", text))
        and not all("-" in w or "_" in w for w in words)
    )


def _templates() -> list[Path]:
    return sorted(TEMPLATES.rglob("*.html"))


def test_templates_have_no_text_outside_mc() -> None:
    """Every word a person reads in our templates goes through ``_mc``."""
    problems = {}
    for path in _templates():
        name = str(path.relative_to(TEMPLATES))
        found = _unwrapped(path.read_text())
        if found and name not in PENDING_TEMPLATES:
            problems[name] = found[:5]
        if not found and name in PENDING_TEMPLATES:
            problems[name] = ["wrapped now: remove it from PENDING_TEMPLATES"]
    assert not problems, problems


def test_the_template_scan_finds_unwrapped_text() -> None:
    """The scan above can fail: plain text, a read attribute and a literal in an expression."""
    assert _unwrapped("<p>Save the form</p>") == ["Save the form"]
    assert _unwrapped('<nav aria-label="Main menu"></nav>') == ['aria-label="Main menu"']
    assert _unwrapped('{{ "Not set yet" if x }}') == ["Not set yet"]
    assert _unwrapped('<p>{{ _mc("Save the form") }} › {{ n }}</p>') == []
    assert _unwrapped("<code>MAILCONNECT_KEY</code><svg><title>x</title></svg>") == []
    assert _unwrapped("<dd>{{ name }} (OAuth 2.0) · SMTP</dd>") == []


_JS_CALL = re.compile(r't\("(\w+)",\s*"((?:[^"\\]|\\.)*)"', re.S)


def test_script_words_come_from_the_catalogue() -> None:
    """Each ``t(key, english)`` in mailconnect.js has its key in ``_js_strings.html`` with the
    same English (the msgid), and the script shows no other English sentence."""
    script = SCRIPT.read_text()
    listed = dict(
        re.findall(
            r'"(\w+)": _mc\("([^"]*)"\)',
            (TEMPLATES / "mailconnect" / "_js_strings.html").read_text(),
        )
    )
    used = {key: english.encode().decode("unicode_escape") for key, english in _JS_CALL.findall(
        re.sub(r'"\s*\+\s*"', "", script))}  # fmt: skip
    assert used and set(used) <= set(listed), set(used) - set(listed)
    assert {k: listed[k] for k in used} == used
    code = re.sub(r"/\*.*?\*/|//[^\n]*", "", script, flags=re.S)
    code = _JS_CALL.sub("", code)
    sentences = [s for s in re.findall(r'"([^"]*)"', code) if re.search(r"[A-Z][a-z]+ [a-z]+", s)]
    assert sentences == []


def _python_problems(path: Path) -> list[str]:
    """``flash("...")``, ``ValidationError("...")`` and WTForms ``...Field("...")`` labels
    written as plain strings (or f-strings) instead of through :mod:`flask_mailconnect.i18n`."""
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        if name in ("flash", "ValidationError") or name.endswith("Field"):
            first = node.args[0]
            if isinstance(first, ast.JoinedStr) or (
                isinstance(first, ast.Constant) and isinstance(first.value, str)
            ):
                found.append(f"{path.name}:{node.lineno} {name}")
    return found


def test_python_messages_go_through_gettext() -> None:
    problems = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = str(path.relative_to(PACKAGE))
        found = _python_problems(path)
        if found and name not in PENDING_MODULES:
            problems[name] = found[:5]
        if not found and name in PENDING_MODULES:
            problems[name] = ["wrapped now: remove it from PENDING_MODULES"]
    assert not problems, problems
