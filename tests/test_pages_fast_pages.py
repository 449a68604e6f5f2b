"""The settings and account pages' fast paths against what they replace (issue 13).

- the account page builds its links from the account's own URL: each equals ``url_for``;
- the settings page loads only the cards' columns (``account_cards``, plain rows): the same
  accounts in the same order as ``accounts_for``, and a host's own card may still show any
  other column;
- ``load_account`` runs a prebuilt statement: the same 404s and the same object;
- the text fields are written without WTForms' ``dir(flags)`` and ``Markup.format``: the
  same HTML as WTForms' own widgets, flags included.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from flask import Flask, url_for
from markupsafe import Markup, escape
from wtforms import Form, StringField, TextAreaField
from wtforms.validators import DataRequired, Length
from wtforms.widgets import TextArea, TextInput
from wtforms.widgets.core import html_params as wtforms_html_params

from flask_mailconnect import accounts
from flask_mailconnect.forms import FastTextArea, FastTextInput, html_params
from flask_mailconnect.models import MailAccount
from flask_mailconnect.views.common import load_account
from tests import hostapp
from tests.conftest import login, override_templates
from tests.scopehost import add_account


def _add(app: Flask, email: str, **extra: Any) -> int:
    """An account of Alice's stored directly, ``extra`` over the defaults."""
    fields: dict[str, Any] = {
        "owner_kind": "user", "owner_id": "1", "provider": "other", "email": email,
        "username": email, "smtp_host": "smtp.example.test", "smtp_port": 587,
        "smtp_security": "starttls", "is_default": True, **extra,
    }  # fmt: skip
    with app.app_context():
        account = MailAccount(**fields)
        hostapp.db.session.add(account)
        hostapp.db.session.commit()
        return int(account.id)


def _links(app: Flask, account_id: int, *, script_name: str = "") -> list[str]:
    """The URLs the account page links to, as url_for makes them."""
    base = {"SCRIPT_NAME": script_name} if script_name else {}
    with app.test_request_context(environ_overrides=base):
        return [
            url_for(f"mailconnect.{endpoint}", account_id=account_id)
            for endpoint in ("disconnect", "reconnect", "folders", "notifications", "sync")
        ] + [url_for("mailconnect.index")]


@pytest.mark.parametrize("script_name", ["", "/mounted"])
def test_account_page_links_equal_url_for(app: Flask, script_name: str) -> None:
    """A password account that receives mail: every link and form action of its page is what
    url_for makes, also for an app mounted under a prefix (SCRIPT_NAME)."""
    add_account(app, ("user", "1"), "first@example.test")
    account_id = add_account(
        app, ("user", "1"), "alice@example.test", imap_host="imap.example.test",
        imap_port=993, imap_security="ssl",
    )  # fmt: skip
    client = app.test_client()
    login(client, 1)
    environ = {"SCRIPT_NAME": script_name} if script_name else {}
    page = client.get(f"/email/accounts/{account_id}", environ_overrides=environ)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    disconnect, reconnect, folders, notifications, sync, index = _links(
        app, account_id, script_name=script_name
    )
    assert f'href="{disconnect}"' in html and f'href="{reconnect}"' in html
    assert f'href="{folders}"' in html and f'href="{index}"' in html
    assert f'action="{notifications}"' in html and f'action="{sync}"' in html
    assert html.count(f"/accounts/{account_id}/") == 5  # nothing else points elsewhere


def test_account_page_links_keep_a_hosts_url_defaults_query(app: Flask) -> None:
    """A host whose @url_defaults add a value the rule does not take (a query string): the
    links are url_for's, never the account's URL with a suffix glued after its query."""

    @app.url_defaults
    def add_language(endpoint: str, values: dict[str, Any]) -> None:
        if endpoint.startswith("mailconnect."):
            values.setdefault("lang", "de")

    account_id = add_account(
        app, ("user", "1"), "alice@example.test", imap_host="imap.example.test",
        imap_port=993, imap_security="ssl",
    )  # fmt: skip
    client = app.test_client()
    login(client, 1)
    html = client.get(f"/email/accounts/{account_id}").get_data(as_text=True)
    disconnect, reconnect, folders, notifications, sync, _index = _links(app, account_id)
    assert disconnect.endswith("/disconnect?lang=de")
    for link in (disconnect, reconnect, folders):
        assert f'href="{escape(link)}"' in html
    assert f'action="{escape(notifications)}"' in html and f'action="{escape(sync)}"' in html
    assert "?lang=de/" not in html


def test_oauth_account_page_test_link_equals_url_for(app: Flask) -> None:
    account_id = add_account(app, ("user", "1"), "g@example.test", auth_method="oauth2")
    client = app.test_client()
    login(client, 1)
    html = client.get(f"/email/accounts/{account_id}").get_data(as_text=True)
    with app.test_request_context():
        target = url_for("mailconnect.oauth_test", account_id=account_id)
    assert f'action="{target}"' in html


def test_cards_load_the_same_accounts_as_accounts_for(app: Flask) -> None:
    ids = [add_account(app, ("user", "1"), f"a{n}@example.test") for n in range(3)]
    add_account(app, ("user", "2"), "bob@example.test")
    with app.app_context():
        state = app.extensions["mailconnect"]
        for account_id in ids:  # the second is the default: it comes first
            state.session.get(MailAccount, account_id).is_default = account_id == ids[1]
        state.session.commit()
        full = [a.id for a in accounts.accounts_for(state, ("user", "1"))]
        state.session.expunge_all()
        cards = [a.id for a in accounts.account_cards(state, ("user", "1"))]
    assert cards == full == [ids[1], ids[0], ids[2]]


def test_cards_read_like_the_accounts_and_see_unflushed_changes(app: Flask) -> None:
    """Cards are plain rows: the model's ``owner``, ``receives`` and ``status_label`` give the
    same answers, and a change the host's session holds but has not flushed is in them, as in
    any query of that session."""
    ids = [add_account(app, ("user", "1"), f"c{n}@example.test") for n in range(2)]
    with app.app_context():
        state = app.extensions["mailconnect"]
        first = state.session.get(MailAccount, ids[0])
        first.display_name = "Not yet flushed"
        first.imap_host = None
        cards = accounts.account_cards(state, ("user", "1"))
        models = accounts.accounts_for(state, ("user", "1"))
        assert [c.id for c in cards] == [m.id for m in models]
        for card, model in zip(cards, models, strict=True):
            assert not isinstance(card, MailAccount)
            for name in ("owner", "receives", "status_label", "display_name", "email", "status"):
                assert getattr(card, name) == getattr(model, name), name
        assert cards[0].display_name == "Not yet flushed" and cards[0].receives is False
        state.session.rollback()


def test_a_hosts_own_card_still_reads_any_column(app: Flask) -> None:
    """A host's ``_account_card.html`` showing columns the cards do not load (the SMTP server,
    the plain-text signature, when it was created) still shows the stored values."""
    add_account(
        app, ("user", "1"), "alice@example.test", signature_text="Regards, Alice",
        last_success_at=datetime(2024, 5, 6, 7, 8, tzinfo=timezone.utc),
    )  # fmt: skip
    card = (
        "<p class=own>{{ account.email }} via {{ account.smtp_host }}:{{ account.smtp_port }}"
        " / {{ account.signature_text }} / {{ account.last_success_at.year }}</p>"
    )
    override_templates(app, {"mailconnect/_account_card.html": card})
    client = app.test_client()
    login(client, 1)
    html = client.get("/email/").get_data(as_text=True)
    assert (
        "<p class=own>alice@example.test via smtp.example.test:587 / Regards, Alice / 2024</p>"
        in html
    )


def test_load_account_answers_as_session_get(app: Flask) -> None:
    """Yours: the account (the session's own object when it already holds it); someone else's
    or none: 404, the same for both."""
    from werkzeug.exceptions import NotFound

    mine = add_account(app, ("user", "1"), "alice@example.test")
    theirs = add_account(app, ("user", "2"), "bob@example.test")
    client = app.test_client()
    login(client, 1)
    assert client.get(f"/email/accounts/{mine}").status_code == 200
    assert client.get(f"/email/accounts/{theirs}").status_code == 404
    assert client.get("/email/accounts/999999").status_code == 404
    with app.test_request_context():
        from flask import g

        from flask_mailconnect.owners import Actor

        state = app.extensions["mailconnect"]
        alice = state.session.get(hostapp.User, 1)
        g.mailconnect_actor = Actor(user=alice, id="1", label="alice", is_admin=False)
        held = state.session.get(MailAccount, mine)
        assert load_account(mine, "view") is held
        with pytest.raises(NotFound):
            load_account(theirs, "view")


def _plain_form() -> Any:
    class Plain(Form):
        name = StringField("Name", [DataRequired(), Length(max=20)])
        note = TextAreaField("Note", [Length(min=2, max=500)])
        free = StringField("Free")

    return Plain(data={"name": 'Ann "A" <b>&\'', "note": "x < y & 'z'\n", "free": ""})


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"class_": "mc-input", "placeholder": 'Say "hi" <now>', "aria_invalid": "false"},
        {"data_mc_x": "", "rows": 5, "autofocus": True, "hidden": False},
        {"placeholder": Markup('<i>already</i> "safe"'), "title": 3.5},
        {"maxlength": 7, "required": False},
    ],
)
def test_fast_widgets_write_what_wtforms_writes(kwargs: dict[str, Any]) -> None:
    """Flags (required, maxlength, minlength), escaping of quotes and markup, True and False
    attributes, numbers: the fast widgets' HTML is WTForms' own."""
    form = _plain_form()
    for field in (form.name, form.free):
        assert FastTextInput()(field, **kwargs) == TextInput()(field, **kwargs)
    assert FastTextArea()(form.note, **kwargs) == TextArea()(form.note, **kwargs)
    assert html_params(**kwargs) == wtforms_html_params(**kwargs)


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"auth_method": "oauth2", "provider": "google", "status": "needs_reconnect"},
        {"auth_method": "oauth2", "provider": "google", "status": "pending_authorization"},
        {"imap_host": "imap.example.test", "imap_port": 993, "imap_security": "ssl",
         "last_error_code": "auth_failed", "last_error_message": "Sign-in refused.",
         "signature_html": "<b>Alice</b>", "signature_text": "Alice",
         "last_success_at": datetime(2024, 1, 2, tzinfo=timezone.utc)},
    ],
)  # fmt: skip
def test_account_page_reads_the_account_once(app: Flask, extra: dict[str, Any]) -> None:
    """The account page loads the columns it shows in its one query for the account: nothing
    it shows is loaded afterwards (no second statement on the account table), and no secret
    column is selected."""
    from tests.conftest import count_queries

    account_id = _add(app, "alice@example.test", **extra)
    client = app.test_client()
    login(client, 1)
    with count_queries(app) as statements:
        page = client.get(f"/email/accounts/{account_id}")
    assert page.status_code == 200
    on_accounts = [s for s in statements if "FROM mailconnect_account" in s]
    assert len(on_accounts) == 1, on_accounts
    assert "password" not in on_accounts[0] and "access_token" not in on_accounts[0]
    assert "mailconnect_account.display_name" in on_accounts[0]


def test_a_hosts_own_account_page_still_reads_any_column(app: Flask) -> None:
    """A host's ``account.html`` showing a column the page does not load (when the account
    was created, its inbox folder) still shows the stored values."""
    account_id = add_account(app, ("user", "1"), "alice@example.test", folder_inbox="Posteingang")
    page = (
        '{% extends "mailconnect/manage_layout.html" %}{% block mc_body %}'
        "<p class=own>{{ account.folder_inbox }} {{ account.created_at.year > 2000 }}</p>"
        "{% endblock %}"
    )
    override_templates(app, {"mailconnect/account.html": page})
    client = app.test_client()
    login(client, 1)
    html = client.get(f"/email/accounts/{account_id}").get_data(as_text=True)
    assert "<p class=own>Posteingang True</p>" in html


def _checkbox_pages(app: Flask, call: str, **values: Any) -> tuple[str, str]:
    """``call`` (a ``checkbox(...)`` call) written by the macro as it is (its plain case in
    Python) and by the macro's template alone (the Python helper answering "not plain")."""
    source = '{% from "mailconnect/_field.html" import checkbox with context %}' + call
    with app.test_request_context():
        template = app.jinja_env.from_string(source)
        fast = template.render(**values)
        slow = template.render(mailconnect_checkbox=lambda *args: None, **values)
    return fast, slow


@pytest.mark.parametrize(
    "call",
    [
        '{{ checkbox(form.plain, help=_mc("Keep these alerts off my phone.")) }}',
        "{{ checkbox(form.plain) }}",
        '{{ checkbox(form.ticked, help="a <b> & \\"c\\"", class_="x<y") }}',
        "{{ checkbox(form.odd) }}",
        '{{ checkbox(form.required_one, help="h") }}',
        '{{ checkbox(form.with_kw, help="h") }}',
        '{{ checkbox(form.plain, help="h", data_x="1") }}',
    ],
)
def test_checkbox_macro_fast_path_writes_what_its_template_writes(app: Flask, call: str) -> None:
    """Help or none, ticked or not, a class and a label needing escapes, and the cases the
    Python path leaves to the template (required, render_kw, extra attributes): the same HTML."""
    from flask_wtf import FlaskForm
    from wtforms import BooleanField
    from wtforms.validators import InputRequired

    class Checks(FlaskForm):
        class Meta:
            csrf = False

        plain = BooleanField('Mute <phone> & "all"')
        ticked = BooleanField("Ticked", default=True)
        odd = BooleanField("Odd's label", false_values=("no",))
        required_one = BooleanField("Required", [InputRequired()])
        with_kw = BooleanField("With render_kw", render_kw={"data-y": "2"})

    with app.test_request_context():
        form = Checks(formdata=None)
    fast, slow = _checkbox_pages(app, call, form=form)
    assert fast == slow
    assert 'class="mc-check-input"' in fast and "mc-check-label" in fast


def test_checkbox_fast_path_is_taken_for_plain_fields(app: Flask) -> None:
    """The account page's checkboxes are plain: written by the Python helper."""
    from flask_mailconnect.forms import AccountSettingsForm, checkbox_html

    with app.test_request_context():
        form = AccountSettingsForm(formdata=None, data={"notify_email": True})
        assert checkbox_html(form.notify_email, "help") is not None
        assert checkbox_html(form.display_name, "help") is None
