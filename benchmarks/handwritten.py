"""The same three pages as a host developer would write them by hand: a reference point.

``bench_pages`` measures our settings page, account page and admin list against a bare page.
These reference pages answer another question: what does a page cost that shows the same
data, in the same host layout and markup, written directly with Flask-SQLAlchemy, Jinja and
Flask-WTF (one ORM query per page as a host writes it, a ``FlaskForm`` for the settings,
``url_for`` per link, ``csrf_token()`` in each POST form), but without what the extension adds
on top (translations, per-partial templates, permission checks, provider look-ups, the
no-store headers)? Their requests per second over the bare page's are printed as
informational rows: what the stack gives a page of that kind without our code, so a goal
against the bare page can be read against it (a page may beat it: the admin list, which
writes its rows in Python, does).

Mounted by :func:`install` on the benchmark's app under ``/bench/hand/...``.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

PAGES = {
    "hand-written settings": "/bench/hand/settings",
    "hand-written account": "/bench/hand/accounts/{account}",
    "hand-written admin list": "/bench/hand/admin",
}

_LAYOUT = """{% extends "host_layout.html" %}{% block title %}TITLE{% endblock %}
{% block content %}<div class="mailconnect">
<link rel="stylesheet" href="{{ url_for('mailconnect.static', filename='mailconnect/mailconnect.css') }}">
<script src="{{ url_for('mailconnect.static', filename='mailconnect/mailconnect.js') }}" defer></script>
<div class="mc-page">
{% for category, message in get_flashed_messages(with_categories=true) %}<p class="mc-alert mc-alert--{{ category }}">{{ message }}</p>{% endfor %}
BODY
</div></div>{% endblock %}"""  # noqa: E501

SETTINGS = """<header class="mc-header"><div><h1 class="mc-title">Email accounts</h1>
<p class="mc-lede">Mail you send from this app goes out through the accounts you connect here.</p></div></header>
<ul class="mc-cards" aria-label="Your email accounts">
{% for account in accounts %}<li>
<article class="mc-card" data-account-id="{{ account.id }}">
  <span class="mc-avatar" aria-hidden="true">{{ (account.display_name or account.email)[:1]|upper }}</span>
  <div class="mc-card-text">
    <h2 class="mc-card-title">
      <a href="{{ url_for('mailconnect.account', account_id=account.id) }}">{{ account.display_name or account.email }}</a>
      {% if account.is_default %}<span class="mc-tag">Default</span>{% endif %}
    </h2>
    <p class="mc-card-sub">{{ account.email }} · {% if account.auth_method == "oauth2" %}Connected with {{ account.provider }}{% else %}{{ account.provider }}{% endif %}</p>
    <p class="mc-card-meta">Last successful check:
      {% if account.last_success_at %}<time datetime="{{ account.last_success_at.isoformat() }}">{{ account.last_success_at }}</time>{% else %}never{% endif %}
    </p>
  </div>
  <div class="mc-card-side">
    <span class="mc-badge mc-badge--{{ account.status|replace('_', '-') }}"><span class="mc-badge-dot" aria-hidden="true"></span>{{ account.status_label }}</span>
    {%- if not account.active %} <span class="mc-badge mc-badge--inactive" title="Deactivated by an administrator: kept, but not used for sending">Inactive</span>{% endif %}
    <a class="mc-btn mc-btn--secondary mc-btn--small" href="{{ url_for('mailconnect.account', account_id=account.id) }}">Manage<span class="mc-sr"> {{ account.email }}</span></a>
  </div>
</article></li>{% endfor %}
</ul>
<section class="mc-panel mc-connect-options"><h2 class="mc-section-title">Connect another account</h2>
<ul class="mc-options"><li><a class="mc-option" href="{{ url_for('mailconnect.connect') }}"><strong>Email address and password</strong>
<span>Gmail, iCloud, Yahoo, Microsoft 365 or your own server (IMAP and SMTP)</span></a></li></ul></section>"""  # noqa: E501

ACCOUNT = """<nav class="mc-crumbs" aria-label="Breadcrumb"><a href="{{ url_for('mailconnect.index') }}">Email accounts</a></nav>
<header class="mc-header mc-header--account">
  <span class="mc-avatar mc-avatar--large" aria-hidden="true">{{ (account.display_name or account.email)[:1]|upper }}</span>
  <div class="mc-header-text"><div class="mc-title-row"><h1 class="mc-title">{{ account.display_name or account.email }}</h1>
  <span class="mc-badge mc-badge--{{ account.status|replace('_', '-') }}">{{ account.status_label }}</span></div>
  <p class="mc-lede">{{ account.email }} · {{ account.provider }}</p></div>
</header>
<section class="mc-panel"><h2 class="mc-section-title">Connection</h2>
  <dl class="mc-facts">
    <div><dt>Status</dt><dd>{{ account.status_label }}</dd></div>
    <div><dt>Last successful check</dt><dd>{{ account.last_success_at or "never" }}</dd></div>
    <div><dt>Sending (SMTP)</dt><dd>{{ account.smtp_host }}:{{ account.smtp_port }} · {{ account.smtp_security }}</dd></div>
    <div><dt>Receiving (IMAP)</dt><dd>{% if account.imap_host %}{{ account.imap_host }}:{{ account.imap_port }} · {{ account.imap_security }}{% else %}Off (send only){% endif %}</dd></div>
    <div><dt>Login</dt><dd>{{ account.username }}</dd></div>
  </dl>
  <div class="mc-actions">
    <form method="post" action="{{ url_for('mailconnect.oauth_test', account_id=account.id) }}" class="mc-inline-form">
      <input type="hidden" name="csrf_token" value="{{ csrf_token() }}">
      <button type="submit" class="mc-btn mc-btn--secondary">Test connection</button>
    </form>
    <a class="mc-btn mc-btn--danger-ghost" href="{{ url_for('mailconnect.disconnect', account_id=account.id) }}">Disconnect</a>
  </div>
  <p class="mc-help"><a href="{{ url_for('mailconnect.folders', account_id=account.id) }}">Edit folders</a> (inbox, sent, archive, trash)</p>
</section>
<section class="mc-panel mc-recent"><div class="mc-title-row"><h2 class="mc-section-title">Recent mail</h2>
  <form method="post" action="{{ url_for('mailconnect.sync', account_id=account.id) }}" class="mc-inline-form">
    <input type="hidden" name="csrf_token" value="{{ csrf_token() }}">
    <button type="submit" class="mc-btn mc-btn--secondary mc-btn--small">Refresh</button>
  </form></div>
  <p class="mc-help">Not synced yet: Refresh shows the newest messages of the inbox.</p>
</section>
{% macro check(field, help) %}<div class="mc-check" data-field="{{ field.name }}">
  {{ field(class_="mc-check-input", aria_describedby=field.id ~ "-help") }}
  <div>{{ field.label(class_="mc-check-label") }}<p class="mc-help" id="{{ field.id }}-help">{{ help }}</p></div>
</div>{% endmacro %}
<form method="post" class="mc-panel mc-form"><h2 class="mc-section-title">Settings</h2>
  {{ form.csrf_token }}
  <fieldset class="mc-fieldset">
    <div class="mc-field" data-field="display_name">{{ form.display_name.label(class_="mc-label") }}
      {{ form.display_name(class_="mc-input", placeholder="Name shown to recipients") }}</div>
    <div class="mc-field">{{ form.signature_html.label(class_="mc-label") }}
      {{ form.signature_html(class_="mc-input mc-textarea", rows=5) }}
      <p class="mc-help">Bold, italic and links are kept; scripts, remote images and other unsafe content are removed when you save.</p></div>
    <div class="mc-checks">
      {{ check(form.notify_email, "Health alerts: sign-in refused, server unreachable. New mail has its own setting below.") }}
      {{ check(form.mute_mobile, "Keep these alerts off my phone.") }}
      {{ check(form.is_default, "Send from this account unless I pick another.") }}
    </div>
    <div class="mc-actions">{{ form.submit(class_="mc-btn mc-btn--primary") }}</div>
  </fieldset>
</form>
<form method="post" action="{{ url_for('mailconnect.notifications', account_id=account.id) }}" class="mc-panel mc-form">
  <h2 class="mc-section-title">New mail notifications</h2>
  {{ notify.csrf_token }}
  <div class="mc-checks">
    {{ check(notify.notify_new_mail, "When new messages arrive in the inbox.") }}
    {{ check(notify.mute_new_mail_mobile, "Notifications stay on this computer, not on my phone.") }}
  </div>
  <div class="mc-actions">{{ notify.submit_notifications(class_="mc-btn mc-btn--secondary") }}</div>
</form>"""  # noqa: E501

ADMIN = """<header class="mc-header"><h1 class="mc-title">Email accounts</h1></header>
<table class="mc-table"><thead><tr><th>Account</th><th>Owner</th><th>Provider</th><th>Status</th><th></th></tr></thead><tbody>
{% for account in accounts %}{% set person = people.get(account.owner_id) if account.owner_kind == "user" else none %}<tr>
  <td><a href="{{ url_for('mailconnect.account', account_id=account.id) }}">{{ account.display_name or account.email }}</a><br><small>{{ account.email }}</small></td>
  <td>{% if person %}<a href="{{ url_for('mailconnect.admin_user', user_id=account.owner_id) }}">{{ person.email }}</a>{% else %}{{ account.owner_kind }} {{ account.owner_id }}{% endif %}</td>
  <td>{{ account.provider }}</td>
  <td><span class="mc-badge mc-badge--{{ account.status|replace('_', '-') }}">{{ account.status_label }}</span>{% if not account.active %} Inactive{% endif %}</td>
  <td><form method="post" action="{{ url_for('mailconnect.admin_account_deactivate' if account.active else 'mailconnect.admin_account_reactivate', account_id=account.id) }}">
    <input type="hidden" name="csrf_token" value="{{ csrf_token() }}"><input type="hidden" name="next" value="{{ request.full_path }}">
    <button type="submit" class="mc-btn mc-btn--small">{{ "Deactivate" if account.active else "Reactivate" }}</button></form>
    <a href="{{ url_for('mailconnect.disconnect', account_id=account.id, next=request.full_path) }}">Disconnect</a></td>
</tr>{% endfor %}
</tbody></table>
<nav class="mc-pager"><a href="{{ url_for(request.endpoint, after=accounts[-1].id) }}">Older</a></nav>"""  # noqa: E501


def install(app: Any, db: Any, user_model: Any) -> None:
    """Add the three hand-written pages to ``app`` (the benchmark's host app)."""
    from flask import abort, render_template
    from flask_login import current_user, login_required
    from flask_wtf import FlaskForm
    from flask_wtf.csrf import generate_csrf
    from wtforms import BooleanField, StringField, SubmitField, TextAreaField

    from flask_mailconnect.models import MailAccount

    class SettingsForm(FlaskForm):
        display_name = StringField("Display name")
        signature_html = TextAreaField("Signature")
        notify_email = BooleanField("Alert me when this account needs attention")
        mute_mobile = BooleanField("Do not send these alerts to my phone")
        is_default = BooleanField("Use as default account")
        submit = SubmitField("Save settings")

    class NotifyForm(FlaskForm):
        notify_new_mail = BooleanField("Notify me about new mail")
        mute_new_mail_mobile = BooleanField("Do not notify on my phone")
        submit_notifications = SubmitField("Save notifications")

    # What CSRFProtect(app) gives templates; the test host validates CSRF without it.
    app.jinja_env.globals.setdefault("csrf_token", generate_csrf)

    def page(title: str, body: str) -> Any:  # compiled once, like a file template
        return app.jinja_env.from_string(_LAYOUT.replace("TITLE", title).replace("BODY", body))

    settings_page = page("Email accounts", SETTINGS)
    account_page = page("{{ account.email }}", ACCOUNT)
    admin_page = page("Email accounts", ADMIN)
    mine = (
        sa.select(MailAccount)
        .where(MailAccount.owner_kind == "user", MailAccount.owner_id == sa.bindparam("owner"))
        .order_by(MailAccount.is_default.desc(), MailAccount.id)
    )
    newest = sa.select(MailAccount).order_by(MailAccount.id.desc()).limit(50)

    @app.get("/bench/hand/settings")
    @login_required
    def hand_settings() -> str:
        found = db.session.scalars(mine, {"owner": str(current_user.id)}).all()
        return render_template(settings_page, accounts=found)

    @app.get("/bench/hand/accounts/<int:account_id>")
    @login_required
    def hand_account(account_id: int) -> str:
        account = db.session.get(MailAccount, account_id)
        if account is None or account.owner_id != str(current_user.id):
            abort(404)
        form = SettingsForm(
            data={"display_name": account.display_name, "signature_html": account.signature_html,
                  "notify_email": account.notify_email, "mute_mobile": not account.notify_mobile,
                  "is_default": account.is_default},
        )  # fmt: skip
        notify = NotifyForm(
            data={"notify_new_mail": account.notify_new_mail,
                  "mute_new_mail_mobile": not account.notify_new_mail_mobile},
        )  # fmt: skip
        return render_template(account_page, account=account, form=form, notify=notify)

    @app.get("/bench/hand/admin")
    @login_required
    def hand_admin() -> str:
        if not current_user.is_admin:
            abort(403)
        found = db.session.scalars(newest).all()
        ids = {int(a.owner_id) for a in found if a.owner_kind == "user" and a.owner_id.isdigit()}
        users = db.session.scalars(sa.select(user_model).where(user_model.id.in_(ids)))
        people = {str(u.id): u for u in users}
        return render_template(admin_page, accounts=found, people=people)
