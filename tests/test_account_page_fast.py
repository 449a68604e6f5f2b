"""The account page's form macros come from ``mailconnect/_field.html`` through the app's
loader: a host's own ``_field.html`` is the one used, and the macros (Jinja keeps the imported
template's module once per app) write each request in its own language."""

from __future__ import annotations

from flask import Flask
from markupsafe import escape

from flask_mailconnect.i18n import lazy_gettext
from tests.conftest import cleaned_up, login, override_templates
from tests.i18n_host import i18n_app
from tests.scopehost import add_account

#: A host's own form macros: the stock ones' names and arguments, other markup.
OWN_FIELD = """
{% macro field(f, class_="", input_class="mc-input", help=true) -%}
<div class="own-field">{{ f.label.text }} {{ f(class=input_class, **kwargs) }}</div>
{%- endmacro %}
{% macro checkbox(f, help=None, class_="") -%}
<div class="own-check" data-name="{{ f.name }}">{{ f.label.text }}</div>
{%- endmacro %}
"""


def test_a_hosts_own_field_macros_are_used_on_the_account_page(app: Flask) -> None:
    """With ``mailconnect/_field.html`` overridden, the account page writes its display name
    and every checkbox (the settings' and the notifications') with the host's macros."""
    account_id = add_account(
        app, ("user", "1"), "alice@example.test", imap_host="imap.example.test"
    )
    override_templates(app, {"mailconnect/_field.html": OWN_FIELD})
    client = app.test_client()
    login(client, 1)
    html = client.get(f"/email/accounts/{account_id}").get_data(as_text=True)
    assert '<div class="own-field">Display name <input' in html
    for name in ("notify_email", "mute_mobile", "is_default", "notify_new_mail"):
        assert f'<div class="own-check" data-name="{name}">' in html
    assert "mc-check-input" not in html  # no stock checkbox left


def test_account_page_checkbox_labels_follow_the_language() -> None:
    """English, then German, then English again in one app: the checkbox labels the kept
    macros write are each request's words."""
    app = i18n_app()  # Flask-Babel choosing from ?lang=, one account of Alice's
    with cleaned_up(app):
        client = app.test_client()
        login(client, 1)
        with app.test_request_context("/?lang=de"):
            german = str(lazy_gettext("Use as default account"))
        assert german != "Use as default account"  # the catalogue has it
        for lang, words in (("en", "Use as default account"), ("de", german), ("en", None)):
            html = client.get(f"/email/accounts/1?lang={lang}").get_data(as_text=True)
            label = f'for="is_default">{escape(words or "Use as default account")}</label>'
            assert label in html
