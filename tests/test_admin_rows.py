"""The admin account list writes its rows in Python (views/admin/account_rows.py): what an admin
sees must be what the Jinja row template wrote, every value from a person still escaped."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import render_template_string
from markupsafe import Markup

from flask_mailconnect import MailAccount
from tests.conftest import captured_context, cleaned_up, login
from tests.hostapp import db

#: The row template as ``mailconnect/admin/accounts.html`` had it before the rows moved to Python.
JINJA_ROWS = """
{%- set t_account, t_owner, t_provider, t_status = _mc("Account"), _mc("Owner"), _mc("Provider"), _mc("Status") %}
{%- set t_inactive, t_inactive_title = _mc("Inactive"), _mc("Deactivated by an administrator: kept, but not used for sending") %}
{%- set t_deactivate, t_reactivate, t_disconnect = _mc("Deactivate"), _mc("Reactivate"), _mc("Disconnect") %}
{%- set acc, deact, react, disc = links.account, links.deactivate, links.reactivate, links.disconnect %}
{%- for account in accounts %}{% set kind, ident = account.owner_kind, account.owner_id %}{% set found = provider_names[account.provider] %}
  <tr data-account-id="{{ account.id }}"{% if not account.active %} class="mc-row--inactive"{% endif %}>
    <td data-label="{{ t_account }}"><a class="mc-strong" href="{{ acc.head }}{{ account.id }}{{ acc.tail }}">{{ account.email }}</a>{% if account.display_name %}<br><span class="mc-muted">{{ account.display_name }}</span>{% endif %}</td>
    <td data-label="{{ t_owner }}">{% if kind == "user" %}<a href="{{ person_urls[ident] }}">{{ owner_labels[(kind, ident)] }}</a>{% else %}{{ owner_labels[(kind, ident)] }}{% endif %}{% if kind != "organization" %}<br><span class="mc-muted">{{ kind_names[kind] or kind }}</span>{% endif %}</td>
    <td data-label="{{ t_provider }}">{{ provider_titles[found.key] if found else account.provider }}</td>
    <td data-label="{{ t_status }}"><span class="mc-badge mc-badge--{{ account.status.replace('_', '-') }}"><span class="mc-badge-dot" aria-hidden="true"></span>{{ status_labels[account.status] or account.status.replace('_', ' ')|capitalize }}</span>{% if not account.active %} <span class="mc-badge mc-badge--inactive" title="{{ t_inactive_title }}">{{ t_inactive }}</span>{% endif %}</td>
    <td class="mc-row-actions">
      <form method="post" action="{% if account.active %}{{ deact.head }}{{ account.id }}{{ deact.tail }}{% else %}{{ react.head }}{{ account.id }}{{ react.tail }}{% endif %}" class="mc-inline-form">
        {{ csrf_field }}<input type="hidden" name="next" value="{{ back }}">
        <button type="submit" class="mc-btn mc-btn--secondary mc-btn--small">{{ t_deactivate if account.active else t_reactivate }}<span class="mc-sr"> {{ account.email }}</span></button>
      </form>
      <a class="mc-btn mc-btn--danger-ghost mc-btn--small" href="{{ disc.head }}{{ account.id }}{{ disc.tail }}">{{ t_disconnect }}<span class="mc-sr"> {{ account.email }}</span></a>
    </td>
  </tr>
  {% endfor %}"""  # noqa: E501

HOSTILE = "<script>alert(\"x\")</script> & 'q'"


def _row(n: int, **values: Any) -> dict[str, Any]:
    email = f"box{n}@example.com"
    row = {
        "owner_kind": "user", "owner_id": "2", "provider": "other", "auth_method": "password",
        "email": email, "username": email, "smtp_host": "smtp.example.test", "smtp_port": 587,
        "smtp_security": "starttls", "status": "connected", "active": True,
    }  # fmt: skip
    row.update(values)
    return row


def test_rows_are_what_the_template_wrote_and_escape_every_value() -> None:
    from tests import hostapp

    app, ext = hostapp.create_app()
    projects = {"7": HOSTILE, "8": "Eight"}
    ext.register_scope(
        "project",
        load=lambda ident: ident if ident in projects else None,
        label=lambda ident: projects[ident],
        list=lambda: list(projects),
        ident=str,
        can_manage=lambda user, project: False,
    )
    with cleaned_up(app):
        with app.app_context():
            db.session.execute(sa.update(hostapp.User).where(hostapp.User.id == 2).values(
                email=f"{HOSTILE}@example.com"))  # fmt: skip
            db.session.execute(sa.insert(MailAccount), [
                _row(1, display_name=HOSTILE),
                _row(2, email=f"a{HOSTILE}@example.com".replace(" ", ""), active=False),
                _row(3, owner_kind="project", owner_id="7", status="needs_reconnect"),
                _row(4, owner_kind="project", owner_id="8", provider="no-such-provider"),
                _row(5, owner_kind="organization", owner_id="main", status="some_new_state"),
                _row(6, owner_kind="user", owner_id="999", provider="gmail", active=False),
                _row(7, provider="google", auth_method="oauth2", status="pending_authorization"),
            ])  # fmt: skip
            db.session.commit()
        client = app.test_client()
        login(client, 3)  # the admin
        with captured_context(app) as captured:
            page = client.get("/email/admin/accounts?q=").get_data(as_text=True)
        assert page.count("<tr data-account-id=") == 7
        assert "<script>" not in page and "&lt;script&gt;alert(&#34;x&#34;)" in page
        with app.test_request_context("/email/admin/accounts?q="):
            expected = render_template_string(JINJA_ROWS, **captured)
        assert isinstance(captured["rows_html"], Markup)
        assert str(captured["rows_html"]) == expected
        assert expected in page
