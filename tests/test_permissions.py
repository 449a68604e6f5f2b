"""The permission matrix: every route and every public method taking an actor, for each actor
against each scope's account, generated from the two tables below. Read a table row as "this
request, made by each of the six actors, against the user's / the organisation's / project 7's
account, gets exactly this".

Actors (tests/scopehost.py): ``owner`` alice (owns the personal account), ``other`` bob,
``member`` carol (member of project 7), ``manager`` dave (manager of project 7), ``admin``,
``anon`` (not signed in: 401, since the test host has no login view; with one it redirects, see
test_views.py). Accounts: alice's personal account, the organisation's, project 7's.

The policy these rows follow (docs/scopes.rst):

- user account: owner view/use/read/manage; admin view/manage/admin (never use, never read:
  an admin managing it for them does not read their mail); others nothing.
- organisation account: every signed-in user view/use; admin also read/manage/admin.
- project account: ``can_use`` (member, manager) view/use; ``can_manage`` (manager)
  read/manage; admin view/read/manage/admin (not use: admins are not project members here).
- a hand-over (an account awaiting authorization) is completed by its owner alone, with
  ``MAILCONNECT_USERS_CAN_MANAGE_OWN`` on or off; never by an admin (HANDOVER_TABLE).

Refusals answer 404 so ids reveal nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from flask_mailconnect import (
    ConnectionTestFailed,
    MailAccount,
    MailConnect,
    NoSenderAccount,
    PermissionDenied,
    ServerSettings,
)
from flask_mailconnect.models import MailProvider, MailProviderDomain
from tests.hostapp import User, db
from tests.scopehost import ADMIN, ALICE, BOB, CAROL, DAVE, add_account, setup_scopes

ACTORS = ("owner", "other", "member", "manager", "admin", "anon")
ACTOR_IDS = {"owner": ALICE, "other": BOB, "member": CAROL, "manager": DAVE, "admin": ADMIN}
SCOPES = ("user", "org", "project")
OWNERS = {"user": ("user", "1"), "org": ("organization", "main"), "project": ("project", "7")}
KINDS = {"user": "user", "org": "organization", "project": "project"}

# -- routes ----------------------------------------------------------------------------------
# {a}: the account id; {k}/{o}: the owner's kind and id. Expected codes per actor, in ACTORS
# order: owner other member manager admin anon.
#
# route                     account  owner other membr mngr  admin anon
ROUTE_TABLE = """
GET account                user     200   404   404   404   200   401
GET account                org      200   200   200   200   200   401
GET account                project  404   404   200   200   200   401

POST account               user     302   404   404   404   302   401
POST account               org      404   404   404   404   302   401
POST account               project  404   404   404   302   302   401

GET reconnect              user     200   404   404   404   200   401
GET reconnect              org      404   404   404   404   200   401
GET reconnect              project  404   404   404   200   200   401

POST reconnect             user     422   404   404   404   422   401
POST reconnect             org      404   404   404   404   422   401
POST reconnect             project  404   404   404   422   422   401

POST reconnect_test        user     422   404   404   404   422   401
POST reconnect_test        org      404   404   404   404   422   401
POST reconnect_test        project  404   404   404   422   422   401

GET disconnect             user     200   404   404   404   200   401
GET disconnect             org      404   404   404   404   200   401
GET disconnect             project  404   404   404   200   200   401

POST disconnect            user     302   404   404   404   302   401
POST disconnect            org      404   404   404   404   302   401
POST disconnect            project  404   404   404   302   302   401

GET scope_connect          user     404   404   404   404   404   401
GET scope_connect          org      404   404   404   404   200   401
GET scope_connect          project  404   404   404   200   200   401

POST scope_connect         user     404   404   404   404   404   401
POST scope_connect         org      404   404   404   404   200   401
POST scope_connect         project  404   404   404   200   200   401

POST scope_connect_test    user     404   404   404   404   404   401
POST scope_connect_test    org      404   404   404   404   422   401
POST scope_connect_test    project  404   404   404   422   422   401

GET scope                  user     404   404   404   404   404   401
GET scope                  org      200   200   200   200   200   401
GET scope                  project  404   404   200   200   200   401

GET scope_disconnect_all   user     404   404   404   404   404   401
GET scope_disconnect_all   org      404   404   404   404   200   401
GET scope_disconnect_all   project  404   404   404   200   200   401

POST scope_disconnect_all  user     404   404   404   404   404   401
POST scope_disconnect_all  org      404   404   404   404   200   401
POST scope_disconnect_all  project  404   404   404   200   200   401

POST oauth_start           user     302   404   404   404   302   401
POST oauth_start           org      404   404   404   404   302   401
POST oauth_start           project  404   404   404   302   302   401

POST oauth_test            user     302   404   404   404   302   401
POST oauth_test            org      404   404   404   404   302   401
POST oauth_test            project  404   404   404   302   302   401

GET folders                user     200   404   404   404   200   401
GET folders                org      404   404   404   404   200   401
GET folders                project  404   404   404   200   200   401

POST folders               user     409   404   404   404   409   401
POST folders               org      404   404   404   404   409   401
POST folders               project  404   404   404   409   409   401

POST sync                  user     302   404   404   404   404   401
POST sync                  org      404   404   404   404   302   401
POST sync                  project  404   404   404   302   302   401

GET message                user     200   404   404   404   404   401
GET message                org      404   404   404   404   200   401
GET message                project  404   404   404   200   200   401

POST notifications         user     302   404   404   404   302   401
POST notifications         org      404   404   404   404   302   401
POST notifications         project  404   404   404   302   302   401
"""

#: How each named route is requested: (method, URL, form data or None, JSON?).
REQUESTS: dict[str, tuple[str, str, dict[str, str] | None, bool]] = {
    "GET account": ("GET", "/email/accounts/{a}", None, False),
    "POST account": ("POST", "/email/accounts/{a}", {"display_name": "Renamed",
                     "signature_html": "", "notify_email": "y", "is_default": "y"}, False),
    "GET reconnect": ("GET", "/email/accounts/{a}/reconnect", None, False),
    # An incomplete form: allowed actors get the form back with errors (422), nothing dials out.
    "POST reconnect": ("POST", "/email/accounts/{a}/reconnect", {"save": "1"}, False),
    "POST reconnect_test": ("POST", "/email/accounts/{a}/reconnect/test", {}, True),
    "GET disconnect": ("GET", "/email/accounts/{a}/disconnect", None, False),
    "POST disconnect": ("POST", "/email/accounts/{a}/disconnect", {"submit": "1"}, False),
    "GET scope_connect": ("GET", "/email/scopes/{k}/{o}/connect", None, False),
    "POST scope_connect": ("POST", "/email/scopes/{k}/{o}/connect",
                           {"continue_": "1", "email": "new@example.com"}, False),
    "POST scope_connect_test": ("POST", "/email/scopes/{k}/{o}/connect/test", {}, True),
    "GET scope": ("GET", "/email/scopes/{k}/", None, False),
    "GET scope_disconnect_all": ("GET", "/email/scopes/{k}/disconnect-all", None, False),
    "POST scope_disconnect_all": ("POST", "/email/scopes/{k}/disconnect-all", {"submit": "1"},
                                  False),
    # Connect with OAuth for an owner (owner_kind/owner_id): allowed actors go to the provider.
    "POST oauth_start": ("POST", "/email/oauth/acme/start", {"owner_kind": "{k}",
                         "owner_id": "{o}"}, False),
    # Test connection of an OAuth account ({a} is then the owner's OAuth account, see
    # OAUTH_ROUTES): allowed actors run the test (refused by the network guard, no traffic) and
    # go back to the account page.
    "POST oauth_test": ("POST", "/email/accounts/{a}/oauth/test", {}, False),
    # Edit folders ("manage"): these accounts have no IMAP server, so allowed actors get the
    # page explaining that the folders cannot be read (and a POST is refused with 409).
    "GET folders": ("GET", "/email/accounts/{a}/folders", None, False),
    "POST folders": ("POST", "/email/accounts/{a}/folders", {"inbox": "INBOX"}, False),
    # Refresh recent mail ("read", like the list on the account page): allowed actors go back
    # to the account page with the reason it could not refresh. An admin does not read a
    # person's mail, even while managing their account.
    "POST sync": ("POST", "/email/accounts/{a}/sync", {}, False),
    # One message ("read", like the list): these accounts do not receive, so allowed actors
    # get the page saying why it cannot be opened; nothing dials out.
    "GET message": ("GET", "/email/accounts/{a}/messages/INBOX/1", None, False),
    # New-mail notification settings ("manage"): saved, back to the account page.
    "POST notifications": ("POST", "/email/accounts/{a}/notifications",
                           {"notify_new_mail": "y"}, False),
}  # fmt: skip

#: Routes that need an OAuth account of the owner instead of the password account.
OAUTH_ROUTES = {"POST oauth_test"}


def parse_table(table: str, name_words: int) -> list[tuple[str, str, str, str]]:
    """``(name, scope, actor, expected)`` for every cell of a table; each (name, scope) once."""
    cells: list[tuple[str, str, str, str]] = []
    seen: set[tuple[str, str]] = set()
    for line in table.strip().splitlines():
        if not line.strip():
            continue
        words = line.split()
        name, scope = " ".join(words[:name_words]), words[name_words]
        values = words[name_words + 1 :]
        assert scope in SCOPES and len(values) == len(ACTORS) and (name, scope) not in seen, line
        seen.add((name, scope))
        cells.extend((name, scope, actor, expected) for actor, expected in zip(ACTORS, values))
    assert {s for _, s in seen} == set(SCOPES)
    return cells


@pytest.fixture
def world(app: Flask, mailconnect: MailConnect) -> dict[str, Any]:
    app.config["MAILCONNECT_EXTERNAL_URL"] = "https://crm.example.test"
    app.config["MAILCONNECT_PROVIDERS"] = {"acme": {
        "name": "Acme Mail", "auth": "oauth2", "client_id": "c", "client_secret": "s",
        "authorize_url": "https://id.acme.test/authorize", "token_url": "https://id.acme.test/token",
        "scopes": ["email"],
        "smtp": {"host": "smtp.acme.test", "port": 587, "security": "starttls"},
    }}  # fmt: skip
    setup_scopes(app, mailconnect)
    ids = {
        scope: add_account(app, OWNERS[scope], f"{scope}@example.com", display_name=scope)
        for scope in SCOPES
    }
    return {"app": app, "ext": mailconnect, "ids": ids}


def add_oauth_account(app: Flask, owner: tuple[str, str]) -> int:
    """An OAuth (``acme``) account of ``owner`` stored directly, with a token valid for an hour
    (no refresh needed) and its SMTP server on loopback: with private hosts refused, its Test
    connection fails in the network guard without any traffic."""
    with app.app_context():
        account = MailAccount(
            owner_kind=owner[0], owner_id=owner[1], provider="acme", auth_method="oauth2",
            email=f"oauth-{owner[0]}@acme.test", username=f"oauth-{owner[0]}@acme.test",
            smtp_host="127.0.0.1", smtp_port=587, smtp_security="starttls", is_default=False,
            access_token="access-token-value", refresh_token="refresh-token-value",
            token_expires_at=datetime.now(timezone.utc) + timedelta(hours=1), token_scopes="email",
        )  # fmt: skip
        db.session.add(account)
        db.session.commit()
        return account.id


def _sign_in(client: FlaskClient, actor: str) -> str:
    """Sign ``actor`` in; returns a CSRF token for the session ("" when anonymous)."""
    if actor == "anon":
        return ""
    assert client.post(f"/test-login/{ACTOR_IDS[actor]}").status_code == 200
    return client.get("/test-csrf").get_data(as_text=True)


@pytest.mark.parametrize(("route", "scope", "actor", "expected"), parse_table(ROUTE_TABLE, 2))
def test_route(
    world: dict[str, Any], client: FlaskClient, route: str, scope: str, actor: str, expected: str
) -> None:
    method, url, data, as_json = REQUESTS[route]
    kind, owner_id = OWNERS[scope]
    account_id = world["ids"][scope]
    if route in OAUTH_ROUTES:
        account_id = add_oauth_account(world["app"], OWNERS[scope])
    url = url.format(a=account_id, k=kind, o=owner_id)
    token = _sign_in(client, actor)
    if method == "GET":
        response = client.get(url)
    elif as_json:
        headers = {"X-CSRFToken": token, "Accept": "application/json"}
        response = client.post(url, data=data, headers=headers)
    else:
        form = {key: value.format(k=kind, o=owner_id) for key, value in (data or {}).items()}
        response = client.post(url, data={**form, "csrf_token": token})
    assert response.status_code == int(expected), response.get_data(as_text=True)[:500]
    if route == "POST oauth_start" and expected == "302":
        assert response.location.startswith("https://id.acme.test/authorize?")
    if route == "POST disconnect" and expected == "302":
        with world["app"].app_context():
            assert db.session.get(MailAccount, world["ids"][scope]) is None
    if route == "POST oauth_test":
        with world["app"].app_context():
            tested = db.session.get(MailAccount, account_id)
            assert tested is not None
            # Allowed: the test ran (and failed in the guard); refused: it never started.
            assert (tested.last_checked_at is not None) is (expected == "302")
            assert tested.status == ("error" if expected == "302" else "connected")
        if expected == "302":
            assert response.location == f"/email/accounts/{account_id}"
    if route == "GET account" and expected == "200":
        # The recent-mail list (and its Refresh button) is shown to those who may "read".
        shown = "data-mc-recent" in response.get_data(as_text=True)
        assert shown is (READ[(scope, actor)] == "true")
    if route == "POST scope_disconnect_all" and expected == "200":
        page = response.get_data(as_text=True)
        assert f"disconnected {scope}@example.com" in page


# -- admin pages (views/admin/) -----------------------------------------------------------
# Account-level admin actions follow the same table layout; the admin's own pages (no account
# involved) have one row each. Admin pages answer 403 (a page saying an administrator is
# needed) to everyone signed in but admins.
#
# route                     account  owner other membr mngr  admin anon
ADMIN_ROUTE_TABLE = """
POST admin_account_deactivate user   403   403   403   403   302   401
POST admin_account_deactivate org    403   403   403   403   302   401
POST admin_account_deactivate project 403  403   403   403   302   401

POST admin_account_reactivate user   403   403   403   403   302   401
POST admin_account_reactivate org    403   403   403   403   302   401
POST admin_account_reactivate project 403  403   403   403   302   401
"""

# route                                owner other membr mngr  admin anon
ADMIN_PAGE_TABLE = """
GET admin_index                        403   403   403   403   302   401
GET admin_providers                    403   403   403   403   200   401
GET admin_provider_new                 403   403   403   403   200   401
GET admin_accounts                     403   403   403   403   200   401
GET admin_users                        403   403   403   403   200   401
GET admin_user                         403   403   403   403   200   401
GET admin_user_connect                 403   403   403   403   200   401
GET admin_audit                        403   403   403   403   200   401
GET admin_provider                     403   403   403   403   200   401
POST admin_provider                    403   403   403   403   302   401
POST admin_provider_toggle             403   403   403   403   302   401
GET admin_provider_delete              403   403   403   403   200   401
POST admin_provider_delete             403   403   403   403   302   401
POST admin_user_handover               403   403   403   403   302   401
POST admin_user_connect                403   403   403   403   200   401
POST admin_user_connect_test           403   403   403   403   422   401
GET detect                             200   200   200   200   200   401
"""

#: The admin-entered provider the provider rows act on ({p}); it has no accounts.
PROVIDER_FORM = {
    "name": "Beta Mail Renamed", "enabled": "y", "service_type": "imap_smtp", "sends": "y",
    "receives": "y", "smtp_host": "smtp.beta.example", "smtp_port": "587",
    "smtp_security": "starttls", "imap_host": "imap.beta.example", "imap_port": "993",
    "imap_security": "ssl", "login_format": "email", "auth_method": "password",
    "domains": "beta.example",
}  # fmt: skip

ADMIN_REQUESTS: dict[str, tuple[str, str, dict[str, str] | None]] = {
    "POST admin_account_deactivate": ("POST", "/email/admin/accounts/{a}/deactivate", {}),
    "POST admin_account_reactivate": ("POST", "/email/admin/accounts/{a}/reactivate", {}),
    "GET admin_index": ("GET", "/email/admin/", None),
    "GET admin_providers": ("GET", "/email/admin/providers", None),
    "GET admin_provider_new": ("GET", "/email/admin/providers/new", None),
    "GET admin_accounts": ("GET", "/email/admin/accounts", None),
    "GET admin_users": ("GET", "/email/admin/users", None),
    "GET admin_user": ("GET", "/email/admin/users/1", None),  # alice's page
    "GET admin_user_connect": ("GET", "/email/admin/users/1/connect", None),
    "GET admin_audit": ("GET", "/email/admin/audit", None),
    "GET admin_provider": ("GET", "/email/admin/providers/{p}", None),
    "POST admin_provider": ("POST", "/email/admin/providers/{p}", PROVIDER_FORM),
    "POST admin_provider_toggle": ("POST", "/email/admin/providers/{p}/toggle", {}),
    "GET admin_provider_delete": ("GET", "/email/admin/providers/{p}/delete", None),
    "POST admin_provider_delete": ("POST", "/email/admin/providers/{p}/delete", {}),
    # A hand-over of an OAuth (acme) account for alice: the admin goes back to her page.
    "POST admin_user_handover": ("POST", "/email/admin/users/1/handover",
                                 {"provider": "acme", "email": "handed@acme.test"}),
    # The address step of connect-on-behalf: the admin gets the details form (no network).
    "POST admin_user_connect": ("POST", "/email/admin/users/1/connect",
                                {"continue_": "1", "email": "new@example.com"}),
    # JSON Test connection with an incomplete form: 422 with field errors, nothing dials out.
    "POST admin_user_connect_test": ("POST", "/email/admin/users/1/connect/test", {}),
    # Provider detection for the connect page's script: any signed-in person.
    "GET detect": ("GET", "/email/detect?email=someone@beta.example", None),
}  # fmt: skip

#: Sent as JSON requests (CSRF in the header), like the connect page's script does.
ADMIN_JSON = {"POST admin_user_connect_test"}


def _add_provider(app: Flask) -> int:
    """An admin-entered password provider ``beta`` (domain beta.example) with no accounts."""
    with app.app_context():
        provider = MailProvider(
            key="beta", name="Beta Mail", smtp_host="smtp.beta.example", smtp_port=587,
            smtp_security="starttls", imap_host="imap.beta.example", imap_port=993,
        )  # fmt: skip
        provider.domains.append(MailProviderDomain(domain="beta.example"))
        db.session.add(provider)
        db.session.commit()
        return provider.id


def _admin_cells() -> list[tuple[str, str, str, str]]:
    cells = parse_table(ADMIN_ROUTE_TABLE, 2)
    for line in ADMIN_PAGE_TABLE.strip().splitlines():
        method, endpoint, *values = line.split()
        assert len(values) == len(ACTORS), line
        cells.extend((f"{method} {endpoint}", "user", a, v) for a, v in zip(ACTORS, values))
    return cells


@pytest.mark.parametrize(("route", "scope", "actor", "expected"), _admin_cells())
def test_admin_route(
    world: dict[str, Any], client: FlaskClient, route: str, scope: str, actor: str, expected: str
) -> None:
    if "mailconnect.admin_index" not in world["app"].view_functions:
        pytest.skip("admin pages are not in this version")
    app = world["app"]
    method, url, data = ADMIN_REQUESTS[route]
    provider_id = _add_provider(app)
    url = url.format(a=world["ids"][scope], p=provider_id)
    token = _sign_in(client, actor)
    if method == "GET":
        response = client.get(url)
    elif route in ADMIN_JSON:
        headers = {"X-CSRFToken": token, "Accept": "application/json"}
        response = client.post(url, data=data, headers=headers)
    else:
        response = client.post(url, data={**(data or {}), "csrf_token": token})
    assert response.status_code == int(expected), response.get_data(as_text=True)[:500]
    allowed = expected in ("200", "302")
    with app.app_context():
        provider = db.session.get(MailProvider, provider_id)
        handed = db.session.scalars(
            sa.select(MailAccount).where(MailAccount.email == "handed@acme.test")
        ).one_or_none()
    # Each POST did its work for the admin only, and changed nothing for anyone else.
    if route == "POST admin_provider":
        assert provider is not None
        assert (provider.name == "Beta Mail Renamed") is allowed
    if route == "POST admin_provider_toggle":
        assert provider is not None and provider.enabled is not allowed
    if route == "POST admin_provider_delete":
        assert (provider is None) is allowed
    if route == "POST admin_user_handover":
        assert (handed is not None) is allowed
        if handed is not None:
            assert handed.owner == ("user", "1") and handed.status == "pending_authorization"
            assert response.location == "/email/admin/users/1"
    if route == "POST admin_user_connect" and allowed:
        assert 'name="smtp_host"' in response.get_data(as_text=True)
    if route == "GET detect" and allowed:
        assert response.get_json()["provider"] == "beta"
    if route == "POST admin_account_deactivate" and expected == "302":
        with world["app"].app_context():
            account = db.session.get(MailAccount, world["ids"][scope])
            assert account is not None and account.active is False


def test_route_table_covers_every_route(app: Flask) -> None:
    """A new route, admin pages included, must get a row in one of the tables above."""
    covered = {name.split()[1] for name in (*REQUESTS, *ADMIN_REQUESTS)}
    ours = {
        rule.endpoint.split(".", 1)[1]
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("mailconnect.")
    }
    assert any(".views.admin." in app.view_functions[f"mailconnect.{e}"].__module__ for e in ours)
    # Pages about the signed-in person's own accounts only (no other owner to check against),
    # tested for anonymous access in test_views.py, and static files.
    # The OAuth callback answers only the person who started the flow (state in their
    # session): oauth_flow/test_oauth_flow.py covers it (another person's flow is refused).
    own = {"index", "connect", "test_connection", "static", "organization", "oauth_callback"}
    assert ours - own - covered == set()
    # Every row names a real route (a renamed one must not leave a stale row behind).
    assert covered - ours == set()


# -- public methods with an actor ------------------------------------------------------------
# "ok": allowed (the call went past the permission check), "denied": PermissionDenied,
# "nosend": NoSenderAccount, "true"/"false": the answer of can(). In the Python API "anon" is
# actor=None: trusted host code, which is always allowed (views never pass None).
#
# method           account  owner   other   member  manager admin   anon
METHOD_TABLE = """
connect_manual    user     ok      denied  denied  denied  ok      ok
connect_manual    org      denied  denied  denied  denied  ok      ok
connect_manual    project  denied  denied  denied  ok      ok      ok

reconnect_manual  user     ok      denied  denied  denied  ok      ok
reconnect_manual  org      denied  denied  denied  denied  ok      ok
reconnect_manual  project  denied  denied  denied  ok      ok      ok

update_account    user     ok      denied  denied  denied  ok      ok
update_account    org      denied  denied  denied  denied  ok      ok
update_account    project  denied  denied  denied  ok      ok      ok

disconnect        user     ok      denied  denied  denied  ok      ok
disconnect        org      denied  denied  denied  denied  ok      ok
disconnect        project  denied  denied  denied  ok      ok      ok

disconnect_all    user     error   error   error   error   error   error
disconnect_all    org      denied  denied  denied  denied  ok      ok
disconnect_all    project  denied  denied  denied  ok      ok      ok

resolve_sender    user     ok      nosend  nosend  nosend  nosend  ok
resolve_sender    org      ok      ok      ok      ok      ok      ok
resolve_sender    project  nosend  nosend  ok      ok      nosend  ok

can_view          user     true    false   false   false   true    false
can_view          org      true    true    true    true    true    false
can_view          project  false   false   true    true    true    false

can_use           user     true    false   false   false   false   false
can_use           org      true    true    true    true    true    false
can_use           project  false   false   true    true    false   false

can_read          user     true    false   false   false   false   false
can_read          org      false   false   false   false   true    false
can_read          project  false   false   false   true    true    false

can_manage        user     true    false   false   false   true    false
can_manage        org      false   false   false   false   true    false
can_manage        project  false   false   false   true    true    false

can_admin         user     false   false   false   false   true    false
can_admin         org      false   false   false   false   true    false
can_admin         project  false   false   false   false   true    false
"""


def _settings(email: str) -> ServerSettings:
    # Loopback with private hosts refused: an allowed call fails its test without any traffic.
    return ServerSettings(
        email=email, username="u", password="p", smtp_host="127.0.0.1", smtp_port=587,
        smtp_security="starttls",
    )  # fmt: skip


CALLS: dict[str, Callable[[MailConnect, Any, MailAccount, str], Any]] = {
    "connect_manual": lambda ext, user, acct, kind: ext.connect_manual(
        owner=acct.owner, settings=_settings("brand-new@example.com"), actor=user
    ),
    "reconnect_manual": lambda ext, user, acct, kind: ext.reconnect_manual(
        acct, settings=_settings(acct.email), actor=user
    ),
    "update_account": lambda ext, user, acct, kind: ext.update_account(
        acct, actor=user, display_name="Renamed"
    ),
    "disconnect": lambda ext, user, acct, kind: ext.disconnect(acct, actor=user),
    "disconnect_all": lambda ext, user, acct, kind: ext.disconnect_all(kind, actor=user),
    "resolve_sender": lambda ext, user, acct, kind: ext.resolve_sender(
        actor=user, owner=acct.owner
    ),
}


def _can(action: str) -> Callable[[MailConnect, Any, MailAccount, str], Any]:
    return lambda ext, user, acct, kind: ext.can(user, action, acct.owner)


CALLS.update(
    {f"can_{action}": _can(action) for action in ("view", "use", "read", "manage", "admin")}
)


@pytest.mark.parametrize(("method", "scope", "actor", "expected"), parse_table(METHOD_TABLE, 1))
def test_method(world: dict[str, Any], method: str, scope: str, actor: str, expected: str) -> None:
    app, ext = world["app"], world["ext"]
    # Only the given owner's accounts, so resolve_sender answers about this account alone.
    app.config["MAILCONNECT_SENDER_ORDER"] = ["scope"]
    with app.test_request_context():
        user = db.session.get(User, ACTOR_IDS[actor]) if actor != "anon" else None
        if method.startswith("can_") and user is None:
            assert ext.can(None, method[4:], OWNERS[scope]) is False
            return
        account = db.session.get(MailAccount, world["ids"][scope])
        assert account is not None
        try:
            result = CALLS[method](ext, user, account, KINDS[scope])
        except PermissionDenied:
            outcome = "denied"
        except NoSenderAccount:
            outcome = "nosend"
        except ConnectionTestFailed:
            outcome = "ok"  # past the permission check; the test itself was refused
        except ValueError:
            outcome = "error"
        else:
            if isinstance(result, bool):
                outcome = str(result).lower()
            elif method == "resolve_sender":
                outcome = "ok" if result.id == account.id else f"wrong account {result!r}"
            else:
                outcome = "ok"
        db.session.rollback()
    assert outcome == expected


#: ``(scope, actor) -> "true"/"false"``: the can_read rows of METHOD_TABLE (the account page
#: shows the recent-mail list to exactly these).
READ = {
    (scope, actor): expected
    for name, scope, actor, expected in parse_table(METHOD_TABLE, 1)
    if name == "can_read"
}


# -- hand-over completion (Policy.can_complete_handover) --------------------------------------
# "Complete authorization" of alice's account awaiting authorization (created by the admin):
# POST oauth_start with its account_id. Only alice may start the consent, whether or not people
# may manage their own accounts; an admin may not give it for her.
#
# MAILCONNECT_USERS_CAN_MANAGE_OWN       owner other membr mngr  admin anon
HANDOVER_TABLE = """
on                                     302   404   404   404   404   401
off                                    302   404   404   404   404   401
"""


def _handover_cells() -> list[tuple[str, str, str]]:
    cells = []
    for line in HANDOVER_TABLE.strip().splitlines():
        flag, *values = line.split()
        assert flag in ("on", "off") and len(values) == len(ACTORS), line
        cells.extend((flag, actor, expected) for actor, expected in zip(ACTORS, values))
    return cells


@pytest.mark.parametrize(("flag", "actor", "expected"), _handover_cells())
def test_handover_completion(
    world: dict[str, Any], client: FlaskClient, flag: str, actor: str, expected: str
) -> None:
    app, ext = world["app"], world["ext"]
    app.config["MAILCONNECT_USERS_CAN_MANAGE_OWN"] = flag == "on"
    with app.test_request_context():
        admin = db.session.get(User, ADMIN)
        pending = ext.create_handover(
            owner=("user", ALICE), provider="acme", email="handed@acme.test", actor=admin
        )
        db.session.commit()
        account_id = pending.id
    token = _sign_in(client, actor)
    if actor == "owner":  # her page offers the button (nobody else's does)
        page = client.get("/email/").get_data(as_text=True)
        assert f'name="account_id" value="{account_id}"' in page
    elif actor == "admin":
        page = client.get(f"/email/admin/users/{ALICE}").get_data(as_text=True)
        assert 'name="account_id"' not in page
    response = client.post(
        "/email/oauth/acme/start", data={"account_id": str(account_id), "csrf_token": token}
    )
    assert response.status_code == int(expected), response.get_data(as_text=True)[:500]
    if expected == "302":
        assert response.location.startswith("https://id.acme.test/authorize?")
        assert "login_hint=handed%40acme.test" in response.location


def test_handover_is_for_personal_accounts(world: dict[str, Any]) -> None:
    """Only a person completes a hand-over, so a project or the organisation cannot get one."""
    app, ext = world["app"], world["ext"]
    with app.test_request_context():
        admin = db.session.get(User, ADMIN)
        for owner in (OWNERS["org"], OWNERS["project"]):
            with pytest.raises(ValueError, match="person's own"):
                ext.create_handover(owner=owner, provider="acme", email="x@acme.test", actor=admin)
