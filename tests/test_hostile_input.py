"""Issue 9, "Nothing breaks": hostile input gets a 404, a form error or is ignored, never a 500.

One test per finding of the fuzzing run, each on SQLite and on every database in
``MAILCONNECT_TEST_DATABASE_URLS`` (real app, real databases, CSRF on):

1. ids larger than the databases hold (SQLite raised OverflowError) in paths, forms and
   query strings;
2. ``str.isdigit()`` then ``int()``: "²" (``isdigit`` true, ``int`` refuses), "٣" (``int``
   reads 3) and 5,000 digits (``int`` refuses over 4,300);
3. a 60,000-character search reaching the host's ``@user_search`` (SQLite: "LIKE pattern too
   complex"), and the example app's own id parsing (``get_user``, ``load_project``);
4. NUL and CR/LF stored by the admin provider form (PostgreSQL refuses NUL in text);
11. ``connect_manual`` for an owner kind nobody declared (a typo makes orphan accounts).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from example_app.models import Project
from example_app.models import db as example_db
from flask_mailconnect import (
    AuditEvent,
    MailAccount,
    MailConnect,
    ServerSettings,
    UnknownOwner,
)
from flask_mailconnect.models import MailProvider
from tests import hostapp
from tests.conftest import cleaned_up, database_urls, db_label, login
from tests.examplehost import example_app_on, sign_in
from tests.scopehost import ADMIN, ALICE, add_account, setup_scopes

HUGE = str(2**63)  # past the largest id SQLite holds: it raised OverflowError
INT4 = str(2**31)  # past PostgreSQL's INTEGER: "integer out of range"
HUGER = "9" * 40
DIGITS_5000 = "7" * 5000
SUPERSCRIPT = "\u00b2"  # "²": isdigit() is true, int() raises
ARABIC_3 = "\u0663"  # "٣": int() reads 3


@pytest.fixture(params=database_urls(), ids=db_label)
def host(request: pytest.FixtureRequest) -> Iterator[tuple[Flask, MailConnect]]:
    """The test host with a ``project`` scope, on each database."""
    app, ext = hostapp.create_app(request.param)
    setup_scopes(app, ext)
    searched: list[str] = []
    app.config["searched"] = searched

    @ext.user_search
    def search(query: str, limit: int) -> list[Any]:
        searched.append(query)
        pattern = f"%{query.lower()}%"  # a host that trusts its input, as the example did
        found = sa.select(hostapp.User).where(sa.func.lower(hostapp.User.email).like(pattern))
        return list(hostapp.db.session.scalars(found.limit(limit)))

    with cleaned_up(app):
        yield app, ext


def _token(client: FlaskClient) -> str:
    return client.get("/test-csrf").get_data(as_text=True)


def _count(app: Flask, model: Any) -> int:
    with app.app_context():
        return int(hostapp.db.session.scalar(sa.select(sa.func.count()).select_from(model)) or 0)


# -- 1. integer overflow -----------------------------------------------------------------------


def test_1_ids_beyond_the_database_range_are_not_found(host: tuple[Flask, MailConnect]) -> None:
    app, _ = host
    account = add_account(app, ("user", str(ALICE)), "alice@example.com")
    client = app.test_client()
    login(client, ADMIN)
    token = _token(client)
    for big in (INT4, str(2**63 - 1), HUGE, HUGER, DIGITS_5000, "0", "-1", "00"):
        for path in ("", "/folders", "/reconnect", "/disconnect"):
            assert client.get(f"/email/accounts/{big}{path}").status_code == 404, (big, path)
        for path in ("/sync", "/oauth/test", "/reconnect/test"):
            response = client.post(f"/email/accounts/{big}{path}", data={"csrf_token": token})
            assert response.status_code == 404, (big, path)
        for action in ("deactivate", "reactivate"):
            url = f"/email/admin/accounts/{big}/{action}"
            assert client.post(url, data={"csrf_token": token}).status_code == 404
        for action in ("", "/toggle", "/delete"):
            url = f"/email/admin/providers/{big}{action}"
            assert client.post(url, data={"csrf_token": token}).status_code == 404
    # The largest id every database holds is an ordinary "no such account".
    assert client.get(f"/email/accounts/{2**31 - 1}").status_code == 404
    # OAuth start naming a huge account to sign in again.
    app.config["MAILCONNECT_PROVIDERS"] = {"google": {"client_id": "c", "client_secret": "s"}}
    for big in (INT4, HUGE, HUGER, DIGITS_5000):
        data = {"csrf_token": token, "account_id": big}
        assert client.post("/email/oauth/google/start", data=data).status_code == 404
    # Keyset pages: a cursor out of range is no cursor: the first page.
    for arg in ("before", "after"):
        for big in (INT4, HUGE, HUGER, DIGITS_5000):
            response = client.get(f"/email/admin/accounts?{arg}={big}")
            assert response.status_code == 200 and "alice@example.com" in response.text
            assert client.get(f"/email/admin/audit?{arg}={big}").status_code == 200
    # The ordinary id still works.
    assert client.get(f"/email/accounts/{account}").status_code == 200


# -- 2. isdigit() then int() -------------------------------------------------------------------


def test_2_unicode_digits_are_not_numbers(host: tuple[Flask, MailConnect]) -> None:
    app, _ = host
    add_account(app, ("user", str(ALICE)), "alice@example.com")
    client = app.test_client()
    login(client, ADMIN)
    token = _token(client)
    for odd in (SUPERSCRIPT, ARABIC_3, "1" + SUPERSCRIPT, DIGITS_5000, "1.0", "0x1", "-5"):
        response = client.get("/email/admin/accounts", query_string={"after": odd})
        assert response.status_code == 200 and "alice@example.com" in response.text, odd
        assert client.get("/email/admin/accounts", query_string={"before": odd}).status_code == 200
        response = client.get("/email/admin/audit", query_string={"account": odd})
        assert response.status_code == 200, odd
    # "٣" is not account 3 (werkzeug's int converter would read it so).
    assert client.get(f"/email/accounts/{ARABIC_3}").status_code == 404
    assert client.get(f"/email/admin/providers/{ARABIC_3}").status_code == 404
    # A provider port "²", "٣" or 5,000 digits is a form error, not a crash.
    for odd in (SUPERSCRIPT, ARABIC_3, DIGITS_5000):
        data = {
            "csrf_token": token, "name": "Acme", "enabled": "y", "service_type": "imap_smtp",
            "sends": "y", "receives": "y", "smtp_host": "smtp.acme.org", "smtp_port": odd,
            "smtp_security": "starttls", "imap_host": "imap.acme.org", "imap_port": odd,
            "imap_security": "ssl", "login_format": "email", "auth_method": "password",
        }  # fmt: skip
        response = client.post("/email/admin/providers/new", data=data)
        assert response.status_code == 422, odd
        assert "Enter a port number between 1 and 65535." in response.text
    # The connect form's ports too (IntegerField read "٣" as port 3).
    login(client, ALICE)
    for odd in (SUPERSCRIPT, ARABIC_3, DIGITS_5000):
        data = {
            "csrf_token": token, "email": "alice@example.com", "provider": "other",
            "username": "alice", "password": "pw", "smtp_host": "smtp.example.com",
            "smtp_port": odd, "smtp_security": "starttls", "imap_host": "imap.example.com",
            "imap_port": "993", "imap_security": "ssl", "receives": "y", "save": "1",
        }  # fmt: skip
        response = client.post("/email/connect", data=data)
        assert response.status_code == 422, odd
        assert "Enter a port number between 1 and 65535." in response.text
    assert _count(app, MailProvider) == 0


# -- 3. unbounded search, the example app's ids -------------------------------------------------


def test_3_search_text_is_capped_before_the_hosts_search(host: tuple[Flask, MailConnect]) -> None:
    app, _ = host
    add_account(app, ("user", str(ALICE)), "alice@example.com")
    client = app.test_client()
    login(client, ADMIN)
    huge = "a%_" * 20_000  # 60,000 characters, LIKE wildcards included
    for url in ("/email/admin/users", "/email/admin/accounts"):
        response = client.get(url, query_string={"q": huge})
        assert response.status_code == 200, url
    for name in ("actor", "account", "action"):
        assert client.get("/email/admin/audit", query_string={name: huge}).status_code == 200
    searched = app.config["searched"]
    assert searched and all(len(q) <= 200 for q in searched)
    # NUL in a filter never reaches a query (PostgreSQL refuses it): the rest is searched.
    response = client.get("/email/admin/accounts", query_string={"q": "alice\x00"})
    assert response.status_code == 200 and "alice@example.com" in response.text
    assert all("\x00" not in q for q in searched)


@pytest.fixture(params=database_urls(), ids=db_label)
def example(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    """The example host app on each database (CSRF on, as in production)."""
    with example_app_on(request.param, tmp_path) as app:
        yield app


def test_3_example_app_parses_ids_and_checks_before_loading(example: Flask) -> None:
    client = example.test_client()
    sign_in(client, "admin@demo.test", "admin")
    for odd in (SUPERSCRIPT, ARABIC_3, INT4, HUGE, DIGITS_5000, "0", "x"):
        # get_user: a person's admin page; load_project: a project's connect page.
        assert client.get(f"/email/admin/users/{odd}").status_code == 404, odd
        assert client.get(f"/email/scopes/project/{odd}/connect").status_code == 404, odd
    huge = "%_" * 30_000
    assert client.get("/email/admin/users", query_string={"q": huge}).status_code == 200
    page = client.get("/email/admin/users", query_string={"q": "ada"}).get_data(as_text=True)
    assert "Ada Admin" in page
    # The session's user id is parsed the same way (Flask-Login's user_loader).
    with client.session_transaction() as session:
        session["_user_id"] = SUPERSCRIPT
    assert client.get("/").status_code == 302  # signed out, not a 500
    # A member of a project who does not manage it: 404 before anything of the project shows.
    sign_in(client, "alice@demo.test", "alice")
    with example.app_context():
        ids = {p.name: p.id for p in example_db.session.scalars(sa.select(Project))}
    assert client.get(f"/email/scopes/project/{ids['Apollo launch']}/connect").status_code == 404
    managed = client.get(f"/email/scopes/project/{ids['Website redesign']}/connect")
    assert managed.status_code == 200 and "Website redesign" in managed.text


# -- 4. NUL and line breaks in text fields -------------------------------------------------------


def _provider_data(token: str, **over: str) -> dict[str, str]:
    data = {
        "csrf_token": token, "name": "Acme", "enabled": "y", "service_type": "imap_smtp",
        "sends": "y", "receives": "y", "smtp_host": "smtp.acme.org", "smtp_port": "587",
        "smtp_security": "starttls", "imap_host": "imap.acme.org", "imap_port": "993",
        "imap_security": "ssl", "login_format": "email", "auth_method": "password",
        "domains": "acme.org",
    }  # fmt: skip
    data.update(over)
    return data


def test_4_control_characters_are_refused_by_the_forms(host: tuple[Flask, MailConnect]) -> None:
    app, _ = host
    client = app.test_client()
    login(client, ADMIN)
    token = _token(client)
    hostile = ("smtp.acme.org\x00", "smtp.acme.org\r\nX: y", "smtp\nacme.org", "smtp.\tacme.org")
    for field in ("smtp_host", "imap_host", "name", "client_id", "scopes", "smtp_port"):
        for value in hostile:
            response = client.post(
                "/email/admin/providers/new", data=_provider_data(token, **{field: value})
            )
            assert response.status_code == 422, (field, value)
            assert "control characters are not allowed here." in response.text, (field, value)
    # Host names are host names or IP literals.
    for bad in ("smtp acme.org", "smtp_acme.org", "http://smtp.acme.org", "-smtp.acme.org"):
        response = client.post(
            "/email/admin/providers/new", data=_provider_data(token, smtp_host=bad)
        )
        assert response.status_code == 422 and "Enter a server name" in response.text, bad
    assert _count(app, MailProvider) == 0
    data = _provider_data(
        token, smtp_host="192.0.2.1", imap_host="2001:db8::1", domains="a.org\r\nb.org"
    )
    assert client.post("/email/admin/providers/new", data=data).status_code == 302
    with app.app_context():
        saved = hostapp.db.session.scalars(sa.select(MailProvider)).one()
        assert (saved.smtp_host, saved.imap_host) == ("192.0.2.1", "2001:db8::1")
    # The manual connect form: a form error, nothing stored or tried.
    login(client, ALICE)
    for field in ("username", "password", "smtp_host", "email", "display_name"):
        data = {
            "csrf_token": token, "email": "alice@example.com", "provider": "other",
            "username": "alice", "password": "pw", "smtp_host": "smtp.example.com",
            "smtp_port": "587", "smtp_security": "starttls", "imap_host": "imap.example.com",
            "imap_port": "993", "imap_security": "ssl", "receives": "y", "save": "1",
        }  # fmt: skip
        data[field] = data.get(field, "Alice") + "\x00"
        response = client.post("/email/connect", data=data)
        assert response.status_code == 422, field
    assert _count(app, MailAccount) == 0  # nothing connected, no connection test ran
    with app.app_context():
        actions = set(hostapp.db.session.scalars(sa.select(AuditEvent.action)))
        assert "test" not in actions and "connect" not in actions
    # The signature editor is multi-line: newlines and tabs stay, NUL is refused.
    account = add_account(app, ("user", str(ALICE)), "alice@example.com")
    url = f"/email/accounts/{account}"
    signature = "<p>Alice</p>\r\n<p>\tExample Ltd</p>"
    data = {"csrf_token": token, "display_name": "Alice", "signature_html": signature}
    assert client.post(url, data=data).status_code == 302
    with app.app_context():
        stored = hostapp.db.session.get(MailAccount, account)
        assert stored is not None and "\n" in stored.signature_html
    data["signature_html"] = "<p>Alice\x00</p>"
    response = client.post(url, data=data)
    assert response.status_code == 422 and "Control characters are not allowed" in response.text
    data["signature_html"] = signature
    data["display_name"] = "Alice\r\nBcc: x@example.com"
    assert client.post(url, data=data).status_code == 422


# -- 11. owners nobody declared ------------------------------------------------------------------


def test_11_an_undeclared_owner_kind_is_refused(host: tuple[Flask, MailConnect]) -> None:
    app, ext = host
    settings = ServerSettings(
        email="orphan@example.com", username="orphan", password="pw",
        smtp_host="smtp.example.com", smtp_port=587, smtp_security="starttls",
    )  # fmt: skip
    with app.test_request_context():
        admin = hostapp.db.session.get(hostapp.User, ADMIN)
        undeclared = [("galaxy", "1"), ("projct", "7"), ("organization", "other")]
        unstorable = [("user", "x" * 65), ("user", "1\x00"), ("project", "7\r\n")]
        for owner in undeclared:
            # A hand-over is for people only: refused as a ValueError (UnknownOwner is one).
            with pytest.raises(ValueError):
                ext.create_handover(owner=owner, provider="google", email="o@example.com")
        for owner in undeclared + unstorable:
            with pytest.raises(UnknownOwner):
                ext.connect_manual(owner=owner, settings=settings, actor=admin)
            with pytest.raises(UnknownOwner):
                ext.connect_manual(owner=owner, settings=settings)  # trusted host code too
            with pytest.raises(UnknownOwner):
                ext.accounts_for(owner)
            with pytest.raises(UnknownOwner):
                ext.default_account(owner)
            with pytest.raises(UnknownOwner):
                ext.accounts_for_owners([owner])
            with pytest.raises(UnknownOwner):
                ext.resolve_sender(actor=admin, owner=owner)
        with pytest.raises(UnknownOwner) as caught:
            ext.connect_manual(owner=("galaxy", "1"), settings=settings, actor=admin)
        assert "galaxy" in str(caught.value) and caught.value.owner == ("galaxy", "1")
        # Declared kinds still work.
        assert ext.accounts_for(("project", "7")) == []
        assert ext.accounts_for(("organization", "main")) == []
    assert _count(app, MailAccount) == 0 and _count(app, AuditEvent) == 0
    # The admin pages never let one through: OAuth start on an undeclared kind is a 404.
    app.config["MAILCONNECT_PROVIDERS"] = {"google": {"client_id": "c", "client_secret": "s"}}
    client = app.test_client()
    login(client, ADMIN)
    token = _token(client)
    for kind, ident in (("galaxy", "1"), ("projct", "7"), ("user", "1\x00"), ("user", "x" * 65)):
        data = {"csrf_token": token, "owner_kind": kind, "owner_id": ident}
        assert client.post("/email/oauth/google/start", data=data).status_code == 404
    assert client.get("/email/scopes/galaxy/1/connect").status_code == 404
    assert client.get("/email/scopes/galaxy/").status_code == 404
    # An orphan left from before (a kind no longer declared) is still cleaned up by an admin.
    orphan = add_account(app, ("galaxy", "1"), "orphan@example.com")
    data = {"csrf_token": token, "submit": "1"}
    assert client.post(f"/email/accounts/{orphan}/disconnect", data=data).status_code == 302
    assert _count(app, MailAccount) == 0
