"""List pages run a constant number of SQL queries however many rows they show.

Queries are counted with SQLAlchemy's ``before_cursor_execute`` event around one request, at 10
and at 1,000 rows; the two counts must be equal (no query per row) and small.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from flask_mailconnect import MailAccount, MailConnect
from tests.account_rows import account_rows, insert_rows
from tests.conftest import count_queries, login
from tests.hostapp import db
from tests.scopehost import ADMIN, ALICE, DAVE, setup_scopes


def _count(app: Flask, client: FlaskClient, url: str, marker: str, rows: int) -> int:
    with count_queries(app) as statements:
        response = client.get(url)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert page.count(marker) == rows, f"{url}: expected {rows} rows"
    return len(statements)


def _user_index(app: Flask, mailconnect: MailConnect, rows: int) -> int:
    insert_rows(app, account_rows([("user", str(ALICE))], per_owner=rows))
    client = app.test_client()
    login(client, ALICE)
    return _count(app, client, "/email/", 'class="mc-card"', rows)


def _project_page(app: Flask, mailconnect: MailConnect, rows: int, actor: int) -> int:
    projects = setup_scopes(app, mailconnect, count=rows)
    insert_rows(app, account_rows([("project", k) for k in projects]))
    client = app.test_client()
    login(client, actor)
    visible = rows if actor == ADMIN else rows - 1  # dave does not manage project 8 (Zephyr)
    return _count(app, client, "/email/scopes/project/", 'class="mc-scope-row"', visible)


def _organization_page(app: Flask, mailconnect: MailConnect, rows: int) -> int:
    insert_rows(app, account_rows([("organization", "main")], per_owner=rows))
    client = app.test_client()
    login(client, ADMIN)
    return _count(app, client, "/email/scopes/organization/", 'class="mc-scope-account"', rows)


def _disconnect_all_confirm(app: Flask, mailconnect: MailConnect, rows: int) -> int:
    projects = setup_scopes(app, mailconnect, count=rows)
    insert_rows(app, account_rows([("project", k) for k in projects]))
    client = app.test_client()
    login(client, ADMIN)
    url = "/email/scopes/project/disconnect-all"
    return _count(app, client, url, "@example.com</li>", rows)


PAGES = {
    "user index": _user_index,
    "project settings (manager)": lambda app, ext, n: _project_page(app, ext, n, DAVE),
    "project settings (admin)": lambda app, ext, n: _project_page(app, ext, n, ADMIN),
    "organization accounts": _organization_page,
    "disconnect all (confirm)": _disconnect_all_confirm,
}


def counts_at_10_and_1000(
    page: str, measure: Callable[[Flask, MailConnect, int], int]
) -> dict[int, int]:
    """``{rows: queries}``: ``measure`` run on a fresh host app with 10, then 1,000 rows."""
    from tests import hostapp

    counts = {}
    for rows in (10, 1000):
        app, ext = hostapp.create_app()
        try:
            counts[rows] = measure(app, ext, rows)
        finally:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
    print(f"{page}: {counts[10]} queries at 10 rows, {counts[1000]} at 1,000")
    return counts


@pytest.mark.parametrize("page", PAGES)
def test_queries_do_not_grow_with_rows(page: str) -> None:
    counts = counts_at_10_and_1000(page, PAGES[page])
    # Signed-in user, the page's accounts, and little else: the same at 10 and 1,000 rows.
    assert counts[10] == counts[1000], counts
    assert counts[10] <= 4, counts


# -- admin lists: one owner per row (M8) ------------------------------------------------------


def _people(app: Flask, rows: int) -> list[str]:
    """``rows`` host users (ids from 100), each the owner of one account below."""
    from tests.hostapp import User

    with app.app_context():
        db.session.execute(
            sa.insert(User),
            [{"id": 100 + n, "email": f"person{n}@example.test"} for n in range(rows)],
        )
        db.session.commit()
    return [str(100 + n) for n in range(rows)]


def _batched(app: Flask, ext: MailConnect) -> None:
    """The host's batched callback: one query for all the people on a page."""
    from tests.hostapp import User

    @ext.users_getter
    def users(ids: list[str]) -> dict[str, Any]:
        found = db.session.scalars(sa.select(User).where(User.id.in_([int(i) for i in ids])))
        return {str(user.id): user for user in found}


def _admin_accounts(app: Flask, mailconnect: MailConnect, rows: int) -> int:
    setup_scopes(app, mailconnect)
    _batched(app, mailconnect)
    people = _people(app, rows)
    insert_rows(app, account_rows([("user", ident) for ident in people]))
    app.config["MAILCONNECT_ADMIN_PAGE_SIZE"] = rows
    client = app.test_client()
    login(client, ADMIN)
    page = client.get("/email/admin/accounts").get_data(as_text=True)
    assert "person0@example.test" in page and f"person{rows - 1}@example.test" in page
    return _count(app, client, "/email/admin/accounts", "data-account-id=", rows)


def _admin_audit(app: Flask, mailconnect: MailConnect, rows: int) -> int:
    from flask_mailconnect.models import AuditEvent

    setup_scopes(app, mailconnect)
    _batched(app, mailconnect)
    people = _people(app, rows)
    with app.app_context():
        events = [
            {"action": "disconnect", "outcome": "ok", "actor_id": str(ADMIN),
             "actor_label": "admin@example.test", "account_email": f"p{ident}@example.com",
             "owner_kind": "user", "owner_id": ident, "detail": ""}
            for ident in people
        ]  # fmt: skip
        db.session.execute(sa.insert(AuditEvent), events)
        db.session.commit()
    app.config["MAILCONNECT_ADMIN_PAGE_SIZE"] = rows
    client = app.test_client()
    login(client, ADMIN)
    page = client.get("/email/admin/audit").get_data(as_text=True)
    assert f"person{rows - 1}@example.test&#39;s account" in page
    return _count(app, client, "/email/admin/audit", "data-event=", rows)


def _admin_accounts_default(app: Flask, mailconnect: MailConnect, rows: int) -> int:
    """No ``@users_getter``: the people on the page come from one query on the host's user
    model (the signed-in admin's class), not one ``@user_getter`` call per person."""
    setup_scopes(app, mailconnect)  # registers @user_getter only
    assert mailconnect.hooks.users_getter is None
    people = _people(app, rows)
    insert_rows(app, account_rows([("user", ident) for ident in people]))
    app.config["MAILCONNECT_ADMIN_PAGE_SIZE"] = rows
    client = app.test_client()
    login(client, ADMIN)
    page = client.get("/email/admin/accounts").get_data(as_text=True)
    assert "person0@example.test" in page and f"person{rows - 1}@example.test" in page
    return _count(app, client, "/email/admin/accounts", "data-account-id=", rows)


def _admin_audit_default(app: Flask, mailconnect: MailConnect, rows: int) -> int:
    from flask_mailconnect.models import AuditEvent

    setup_scopes(app, mailconnect)
    people = _people(app, rows)
    with app.app_context():
        events = [
            {"action": "connect", "outcome": "ok", "actor_id": ident,
             "actor_label": f"person{n}@example.test", "account_email": f"p{ident}@example.com",
             "owner_kind": "user", "owner_id": people[(n + 1) % rows], "detail": ""}
            for n, ident in enumerate(people)
        ]  # fmt: skip
        db.session.execute(sa.insert(AuditEvent), events)
        db.session.commit()
    app.config["MAILCONNECT_ADMIN_PAGE_SIZE"] = rows
    client = app.test_client()
    login(client, ADMIN)
    page = client.get("/email/admin/audit").get_data(as_text=True)
    assert f"person{rows - 1}@example.test&#39;s account" in page
    return _count(app, client, "/email/admin/audit", "data-event=", rows)


def _admin_accounts_mixed(app: Flask, mailconnect: MailConnect, rows: int) -> int:
    """Every row another owner of every kind: people, projects (one per row), the
    organisation; a third of the accounts OAuth."""
    projects = setup_scopes(app, mailconnect, count=rows)
    people = _people(app, rows)
    owners = [
        ("user", people[n]) if n % 3 == 0 else ("project", list(projects)[n]) if n % 3 == 1
        else ("organization", "main")
        for n in range(rows)
    ]  # fmt: skip
    accounts = account_rows(owners[:1]) + [
        {**row, "email": f"m{n}@example.com", "auth_method": ("password", "oauth2")[n % 2],
         "provider": ("other", "google")[n % 2]}
        for n, row in enumerate(account_rows(owners[1:]))
    ]  # fmt: skip
    insert_rows(app, accounts)
    # The host's project loader is in memory here: count its calls instead of queries.
    scope = mailconnect.hooks.scopes["project"]
    loads: list[str] = []
    mailconnect.hooks.scopes["project"] = replace(
        scope, load=lambda ident: loads.append(ident) or scope.load(ident)
    )
    app.config["MAILCONNECT_ADMIN_PAGE_SIZE"] = rows
    client = app.test_client()
    login(client, ADMIN)
    page = client.get("/email/admin/accounts").get_data(as_text=True)
    assert "Project: Project " in page and "Organization" in page
    assert loads == [], f"{len(loads)} projects loaded one by one"
    return _count(app, client, "/email/admin/accounts", "data-account-id=", rows)


def _admin_person(app: Flask, mailconnect: MailConnect, rows: int) -> int:
    """A person's admin page lists their accounts: the same queries for 10 or 1,000."""
    setup_scopes(app, mailconnect)
    insert_rows(app, account_rows([("user", str(ALICE))], per_owner=rows))
    client = app.test_client()
    login(client, ADMIN)
    return _count(app, client, f"/email/admin/users/{ALICE}", "<tr data-account-id=", rows)


ADMIN_PAGES = {
    "admin accounts": _admin_accounts,
    "admin audit trail": _admin_audit,
    "admin accounts, no users_getter": _admin_accounts_default,
    "admin audit trail, no users_getter": _admin_audit_default,
    "admin accounts, people, projects, organisation": _admin_accounts_mixed,
    "admin person page": _admin_person,
}


@pytest.mark.parametrize("page", ADMIN_PAGES)
def test_admin_lists_load_owners_in_one_call(page: str) -> None:
    """Every row has another owner: their names come from one ``@users_getter`` call, or
    without it from one query on the host's user model (never one ``@user_getter`` call per
    person); the projects among them from one ``list()``."""
    counts = counts_at_10_and_1000(page, ADMIN_PAGES[page])
    assert counts[10] == counts[1000], counts
    assert counts[10] <= 5, counts


# -- OAuth accounts: the provider catalogue is read once per request ---------------------------

#: Google's built-in provider, configured (credentials only), and an admin-entered OAuth provider:
#: the catalogue merges both; the admin row comes from the database once per request.
OAUTH_CONFIG = {"google": {"client_id": "id", "client_secret": "s3cret"}}


def _oauth_accounts(app: Flask, rows: int) -> None:
    from flask_mailconnect.models import MailProvider

    with app.app_context():
        db.session.add(
            MailProvider(
                key="acme-mail", name="Acme Mail", auth_method="oauth2", client_id="acme",
                client_secret="acme-s3cret", has_client_secret=True,
                authorize_url="https://id.acme.example/authorize",
                token_url="https://id.acme.example/token",
                userinfo_url="https://id.acme.example/userinfo",
                smtp_host="smtp.acme.example", smtp_port=587, smtp_security="starttls",
            )
        )  # fmt: skip
        db.session.commit()
    accounts = account_rows([("user", str(ALICE))], per_owner=rows)
    for n, row in enumerate(accounts):
        # Google (by key and by the older "gmail" alias) and the admin provider, in turn.
        row.update(auth_method="oauth2", provider=("google", "gmail", "acme-mail")[n % 3])
    insert_rows(app, accounts)


def _oauth_user_index(app: Flask, mailconnect: MailConnect, rows: int) -> int:
    _oauth_accounts(app, rows)
    client = app.test_client()
    login(client, ALICE)
    page = client.get("/email/").get_data(as_text=True)
    assert "Acme Mail" in page  # the admin provider is named on its accounts
    return _count(app, client, "/email/", 'class="mc-card"', rows)


def _oauth_account_page(app: Flask, mailconnect: MailConnect, rows: int) -> int:
    _oauth_accounts(app, rows)
    client = app.test_client()
    login(client, ALICE)
    return _count(app, client, "/email/accounts/2", "data-mc-connected-with", 1)  # "gmail"


OAUTH_PAGES = {"user index": _oauth_user_index, "account page": _oauth_account_page}


@pytest.mark.parametrize("page", OAUTH_PAGES)
def test_oauth_accounts_cost_no_query_each(page: str) -> None:
    """With 2 or 50 OAuth accounts (built-in and admin-entered providers) a page runs the same
    queries as with password accounts: which provider each account has is answered by the
    catalogue read once per request, not one provider query per account."""
    from tests import hostapp

    counts = {}
    for rows in (2, 50):
        app, ext = hostapp.create_app(MAILCONNECT_PROVIDERS=OAUTH_CONFIG)
        try:
            counts[rows] = OAUTH_PAGES[page](app, ext, rows)
        finally:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
    print(f"OAuth {page}: {counts[2]} queries at 2 accounts, {counts[50]} at 50")
    assert counts[2] == counts[50], counts
    password = counts_at_10_and_1000("user index", _user_index)[10]
    assert counts[2] <= password + 1, (counts, password)  # + the admin providers, once


# -- the admin providers: read once per process for a few seconds, never in plaintext ------------


def _provider_queries(statements: list[str]) -> int:
    """Statements reading the admin providers (their rows, then their domains)."""
    return sum("FROM mailconnect_provider" in s for s in statements)


def test_admin_providers_are_kept_per_process_and_forgotten_on_write() -> None:
    """The settings page lists the admin's OAuth provider: the first request reads the admin
    rows, the next ones reuse this process's copy (secrets still sealed); an admin's change
    through the admin pages is seen at once; a change this process did not make (another
    worker's) is seen once MAILCONNECT_PROVIDER_CACHE_SECONDS have passed."""
    import time

    from flask_mailconnect.accounts.providers import toggle_provider
    from flask_mailconnect.columns import Sealed
    from flask_mailconnect.models import MailProvider
    from tests import hostapp

    app, ext = hostapp.create_app(
        MAILCONNECT_PROVIDERS=OAUTH_CONFIG, MAILCONNECT_PROVIDER_CACHE_SECONDS=2
    )
    try:
        _oauth_accounts(app, 3)
        client = app.test_client()
        login(client, ALICE)
        with count_queries(app) as first:
            page = client.get("/email/").get_data(as_text=True)
        assert "Connect with Acme Mail" in page
        with count_queries(app) as second:
            page = client.get("/email/").get_data(as_text=True)
        assert "Connect with Acme Mail" in page
        assert _provider_queries(first) == 2 and _provider_queries(second) == 0  # rows, domains
        assert len(second) == len(first) - _provider_queries(first)
        # What the process keeps: the rows as read, the client secret sealed (ciphertext).
        kept = app.extensions["mailconnect"].provider_rows.get("rows")
        assert kept is not None and len(kept) == 1
        secret = kept[0][1]
        assert isinstance(secret, Sealed) and "acme-s3cret" not in repr(kept)

        with app.test_request_context():  # an admin hides it, in this process
            provider = db.session.scalars(sa.select(MailProvider)).one()
            toggle_provider(app.extensions["mailconnect"], provider, actor=None)
            db.session.commit()
        assert "Connect with Acme Mail" not in client.get("/email/").get_data(as_text=True)

        with app.app_context():  # another worker offers it again: this process learns later
            db.session.execute(sa.update(MailProvider).values(enabled=True))
            db.session.commit()
        assert "Connect with Acme Mail" not in client.get("/email/").get_data(as_text=True)
        time.sleep(2.1)
        assert "Connect with Acme Mail" in client.get("/email/").get_data(as_text=True)
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def test_no_provider_cache_reads_them_per_request() -> None:
    """MAILCONNECT_PROVIDER_CACHE_SECONDS = 0: the admin rows are read on every request that
    needs them, and only then: the page of an account of a built-in provider (by its key or
    an older alias) needs none; the page of an admin provider's account one."""
    from tests import hostapp

    app, ext = hostapp.create_app(
        MAILCONNECT_PROVIDERS=OAUTH_CONFIG, MAILCONNECT_PROVIDER_CACHE_SECONDS=0
    )
    try:
        _oauth_accounts(app, 3)  # accounts 1 google, 2 gmail, 3 acme-mail
        client = app.test_client()
        login(client, ALICE)
        for _ in range(2):
            with count_queries(app) as index:
                assert client.get("/email/").status_code == 200
            assert _provider_queries(index) == 2  # the rows, then their domains
        for account, expected in ((1, 0), (2, 0), (3, 2)):
            with count_queries(app) as seen:
                page = client.get(f"/email/accounts/{account}").get_data(as_text=True)
            assert "data-mc-connected-with" in page
            assert _provider_queries(seen) == expected, (account, seen)
        assert "Connected with Acme Mail" in page
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def test_an_admin_row_never_takes_a_builtin_alias() -> None:
    """An admin row keyed like an older alias of a built-in ("gmail", written straight into
    the database: the admin pages never pick such a key) does not take over the accounts
    that still carry the alias."""
    from flask_mailconnect.providers import Provider, build_catalog

    rogue = Provider(key="gmail", name="Not Google", source="admin")
    other = Provider(key="acme", name="Acme", source="admin")
    catalog = build_catalog({}, {"gmail": rogue, "acme": other})
    assert catalog.get("gmail") is catalog.get("google")
    assert catalog.get("google") is not None and catalog.get("google").name != "Not Google"
    assert catalog.get("acme") is other
    assert [p.key for p in catalog][0] == "acme" and "Not Google" not in {p.name for p in catalog}
    lazy = build_catalog({}, lambda: {"acme": other})
    assert lazy.get("acme") is other and lazy.get("nothing") is None


# -- the account page writes its checkboxes and buttons as WTForms would --------------------------


def test_account_page_inputs_are_what_wtforms_writes() -> None:
    """The account page writes its plain checkboxes and its submit buttons itself, and its text
    fields with a faster attribute writer (WTForms' attribute formatting was a good part of the
    page's time): each must be exactly what WTForms' own widget writes, checked and unchecked,
    with values that need escaping."""
    from wtforms.widgets import TextArea, TextInput

    from flask_mailconnect.forms import AccountSettingsForm
    from flask_mailconnect.views.messages import new_mail_form
    from tests import hostapp

    app, ext = hostapp.create_app()
    try:
        rows = account_rows([("user", str(ALICE))], per_owner=2)
        rows[0].update(display_name='Ann <&">', imap_host="imap.example.test", imap_port=993,
                       signature_html='<p>Ann &amp; "Co" <b>x</b></p>')  # fmt: skip
        rows[1].update(notify_email=False, notify_mobile=False, imap_host="imap.example.test",
                       imap_port=993, notify_new_mail=True)  # fmt: skip
        insert_rows(app, rows)
        client = app.test_client()
        login(client, ALICE)
        for ident in (1, 2):
            page = client.get(f"/email/accounts/{ident}").get_data(as_text=True)
            with app.test_request_context():
                acct = db.session.get(MailAccount, ident)
                form = AccountSettingsForm(
                    formdata=None,
                    data={"display_name": acct.display_name, "notify_email": acct.notify_email,
                          "mute_mobile": not acct.notify_mobile, "is_default": acct.is_default,
                          "signature_html": acct.signature_html},
                )  # fmt: skip
                notify = new_mail_form(acct)
                name, signature = form.display_name, form.signature_html
                expected = [
                    str(TextInput()(name, class_="mc-input", placeholder="Name shown to recipients",
                                    aria_describedby="display_name-error", aria_invalid="false")),
                    str(TextArea()(signature, class_="mc-input mc-textarea", rows=5,
                                   data_mc_signature_source="")),
                    *(str(f(class_="mc-check-input", aria_describedby=f"{f.id}-help"))
                      for f in (form.notify_email, form.mute_mobile, form.is_default,
                                notify.notify_new_mail, notify.mute_new_mail_mobile)),
                    str(form.submit(class_="mc-btn mc-btn--primary")),
                    str(notify.submit_notifications(class_="mc-btn mc-btn--secondary")),
                ]  # fmt: skip
                csrf = re.sub(r'value="[^"]*"', 'value="T"', str(form.csrf_token(id=False)))
            assert csrf in re.sub(r'(name="csrf_token" type="hidden") value="[^"]*"',
                                  r'\1 value="T"', page)  # fmt: skip
            assert any(" checked " in e for e in expected)
            assert any(" checked " not in e and "checkbox" in e for e in expected)
            for html in expected:
                assert html in page, html
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
