"""The user pages: layout, permissions, CSRF, and connect/test/update/disconnect against real
servers (aiosmtpd with STARTTLS and Dovecot on 127.0.0.1, one login for both)."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from flask_mailconnect import (
    AuditEvent,
    MailAccount,
    account_connected,
    account_disconnected,
    account_updated,
)
from flask_mailconnect.codes import MESSAGES
from tests.conftest import login
from tests.peers import MAILBOX_PASSWORD, MAILBOX_USER

EMAIL = "alice@example.com"  # the account's address (email_validator refuses .test)
USER = MAILBOX_USER  # the login both servers accept
PASSWORD = MAILBOX_PASSWORD  # must never show up in a page or log


# -- helpers ---------------------------------------------------------------------------------


def csrf_token(client: FlaskClient, url: str = "/email/connect") -> str:
    page = client.get(url).get_data(as_text=True)
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert match, "no CSRF token in the page"
    return match.group(1)


def make_account(app: Flask, db: Any, owner_id: str = "1", email: str = EMAIL) -> int:
    """An account stored directly (no network): for permission and CSRF tests."""
    with app.app_context():
        account = MailAccount(
            owner_kind="user", owner_id=owner_id, provider="other", email=email,
            username=email, password="stored-secret", smtp_host="smtp.example.test",
            smtp_port=587, smtp_security="starttls", display_name="Alice", is_default=True,
        )  # fmt: skip
        db.session.add(account)
        db.session.commit()
        return account.id


def count(app: Flask, db: Any, model: Any) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def get_account(app: Flask, db: Any, account_id: int) -> MailAccount | None:
    with app.app_context():
        account = db.session.get(MailAccount, account_id)
        if account is not None:
            db.session.expunge(account)
        return account


class Recorder:
    """A signal receiver that remembers each call's keyword arguments."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, sender: Any, **extra: Any) -> None:
        self.calls.append(extra)


# -- layout and access -----------------------------------------------------------------------


def test_index_renders_inside_host_layout(client: FlaskClient) -> None:
    login(client, 1)
    response = client.get("/email/")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'id="host-nav"' in page
    assert '<div class="mailconnect">' in page and "Email accounts - Host</title>" in page
    assert "Connect an email account" in page and "/email/connect" in page
    assert response.headers["Cache-Control"] == "no-store"
    with client.get("/email/static/mailconnect/mailconnect.css") as css:
        assert css.status_code == 200


@pytest.mark.parametrize("asset", ["mailconnect.css", "mailconnect.js"])
def test_static_assets_stay_cacheable(client: FlaskClient, asset: str) -> None:
    login(client, 1)
    with client.get(f"/email/static/mailconnect/{asset}") as response:
        assert response.status_code == 200
        assert "no-store" not in response.headers.get("Cache-Control", "")
    # Pages keep no-store.
    assert client.get("/email/").headers["Cache-Control"] == "no-store"


def test_index_lists_own_accounts_only(app: Flask, db: Any, client: FlaskClient) -> None:
    make_account(app, db, "1", "alice@example.com")
    make_account(app, db, "2", "bob@example.com")
    login(client, 1)
    page = client.get("/email/").get_data(as_text=True)
    assert "alice@example.com" in page and "bob@example.com" not in page
    assert "Connected" in page and "Default" in page and "just now" not in page


@pytest.mark.parametrize("url", ["/email/", "/email/connect", "/email/accounts/1"])
def test_anonymous_is_refused(client: FlaskClient, url: str) -> None:
    # The host's LoginManager has no login_view, so Flask-Login answers 401.
    assert client.get(url).status_code in (401, 302)


def test_anonymous_redirects_to_login_view(app: Flask, client: FlaskClient) -> None:
    app.login_manager.login_view = "home"  # type: ignore[attr-defined]
    response = client.get("/email/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/?next=")


def test_content_block_and_standalone_base(app: Flask, client: FlaskClient) -> None:
    loader = app.jinja_loader.loaders[0]  # type: ignore[union-attr]
    loader.mapping["alt.html"] = '<div id="alt">{% block main %}{% endblock %}</div>'
    app.config.update(MAILCONNECT_BASE_TEMPLATE="alt.html", MAILCONNECT_CONTENT_BLOCK="main")
    login(client, 1)
    assert '<div id="alt">\n<div class="mailconnect">' in client.get("/email/").get_data(True)


def test_standalone_base_is_a_complete_page(client: FlaskClient) -> None:
    app = client.application
    app.config["MAILCONNECT_BASE_TEMPLATE"] = "mailconnect/standalone.html"
    login(client, 1)
    page = client.get("/email/").get_data(as_text=True)
    assert page.startswith("<!doctype html>") and 'name="viewport"' in page
    assert "<title>Email accounts</title>" in page


def test_templates_are_overridable_by_path(app: Flask, client: FlaskClient) -> None:
    loader = app.jinja_loader.loaders[0]  # type: ignore[union-attr]
    loader.mapping["mailconnect/_connect_options.html"] = "<p>host connect options</p>"
    login(client, 1)
    assert "<p>host connect options</p>" in client.get("/email/").get_data(as_text=True)


# -- CSRF ------------------------------------------------------------------------------------


def test_posts_without_csrf_token_are_refused(app: Flask, db: Any, client: FlaskClient) -> None:
    assert app.config.get("WTF_CSRF_ENABLED", True) is True
    account_id = make_account(app, db)
    login(client, 1)
    base = f"/email/accounts/{account_id}"
    posts = {
        "/email/connect": {"email": EMAIL, "password": "x", "save": "Save account"},
        "/email/connect/test": {"email": EMAIL, "password": "x"},
        base: {"display_name": "Changed", "submit": "Save settings"},
        f"{base}/reconnect": {"password": "x", "save": "Save and reconnect"},
        f"{base}/reconnect/test": {"password": "x"},
        f"{base}/disconnect": {"submit": "Disconnect"},
    }
    for url, data in posts.items():
        assert client.post(url, data=data).status_code == 400, url
        bad = {**data, "csrf_token": "forged"}
        assert client.post(url, data=bad, headers={"X-CSRFToken": "forged"}).status_code == 400
    answer = client.post("/email/connect/test", data={}, headers={"Accept": "application/json"})
    assert answer.status_code == 400 and answer.get_json()["error"] == "csrf"
    account = get_account(app, db, account_id)
    assert account is not None and account.display_name == "Alice"
    assert count(app, db, MailAccount) == 1 and count(app, db, AuditEvent) == 0


# -- permissions -----------------------------------------------------------------------------


def test_other_users_account_is_404(app: Flask, db: Any, client: FlaskClient) -> None:
    account_id = make_account(app, db, "1")
    login(client, 2)  # bob
    token = csrf_token(client)
    base = f"/email/accounts/{account_id}"
    for url in (base, f"{base}/disconnect", f"{base}/reconnect"):
        assert client.get(url).status_code == 404, url
    posts = {
        base: {"display_name": "Bob was here", "submit": "Save settings"},
        f"{base}/disconnect": {"submit": "Disconnect"},
        f"{base}/reconnect": {"password": "x", "save": "Save and reconnect"},
        f"{base}/reconnect/test": {"password": "x"},
    }
    for url, data in posts.items():
        assert client.post(url, data={**data, "csrf_token": token}).status_code == 404, url
    assert client.get("/email/accounts/9999").status_code == 404
    account = get_account(app, db, account_id)
    assert account is not None and account.display_name == "Alice"
    assert count(app, db, AuditEvent) == 0


def test_admin_may_open_and_edit_alices_account(app: Flask, db: Any, client: FlaskClient) -> None:
    account_id = make_account(app, db, "1")
    login(client, 3)
    page = client.get(f"/email/accounts/{account_id}")
    assert page.status_code == 200 and EMAIL in page.get_data(as_text=True)
    token = csrf_token(client, f"/email/accounts/{account_id}")
    data = {"csrf_token": token, "display_name": "Alice M.", "notify_email": "y"}
    assert client.post(f"/email/accounts/{account_id}", data=data).status_code == 302
    account = get_account(app, db, account_id)
    assert account is not None and account.display_name == "Alice M."
    with app.app_context():
        event = db.session.scalars(sa.select(AuditEvent)).one()
    assert (event.action, event.actor_id, event.owner_id) == ("update", "3", "1")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Evil\r\nBcc: x@y", "Line breaks are not allowed in a display name."),
        ("Evil\nBcc: x@y", "Line breaks are not allowed in a display name."),
        ("Evil\x00Name", "Control characters are not allowed in a display name."),
        ("Evil\x1bName", "Control characters are not allowed in a display name."),
    ],
)
def test_account_settings_refuse_control_characters_in_display_name(
    app: Flask, db: Any, client: FlaskClient, name: str, message: str
) -> None:
    account_id = make_account(app, db)
    login(client, 1)
    token = csrf_token(client, f"/email/accounts/{account_id}")
    data = {"csrf_token": token, "display_name": name, "submit": "Save settings"}
    response = client.post(f"/email/accounts/{account_id}", data=data)
    assert response.status_code == 422  # the page again, like every refused form here
    assert message in response.get_data(as_text=True)
    account = get_account(app, db, account_id)
    assert account is not None and account.display_name == "Alice"
    assert count(app, db, AuditEvent) == 0


def test_account_settings_show_invalid_settings_from_the_core(
    app: Flask, db: Any, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flask_mailconnect import accounts
    from flask_mailconnect.exceptions import InvalidSettings

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise InvalidSettings({"display_name": "The core said no to this name."})

    monkeypatch.setattr(accounts, "update_account", refuse)
    account_id = make_account(app, db)
    login(client, 1)
    token = csrf_token(client, f"/email/accounts/{account_id}")
    data = {"csrf_token": token, "display_name": "Alice M.", "submit": "Save settings"}
    response = client.post(f"/email/accounts/{account_id}", data=data)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'data-error-for="display_name">The core said no to this name.</p>' in page
    account = get_account(app, db, account_id)
    assert account is not None and account.display_name == "Alice"


def test_connect_form_refuses_line_breaks_in_display_name(
    app: Flask, db: Any, client: FlaskClient
) -> None:
    login(client, 1)
    data = {
        "csrf_token": csrf_token(client), "email": EMAIL, "provider": "other",
        "username": EMAIL, "password": "pw", "smtp_host": "smtp.example.com",
        "smtp_port": "587", "smtp_security": "starttls", "display_name": "Evil\r\nBcc: x@y",
        "save": "Save account",
    }  # fmt: skip
    response = client.post("/email/connect", data=data)
    assert response.status_code == 422
    assert "Line breaks are not allowed in a display name." in response.get_data(as_text=True)
    assert count(app, db, MailAccount) == 0


# -- the form without servers ----------------------------------------------------------------


def test_connect_page_starts_with_the_address(client: FlaskClient) -> None:
    login(client, 1)
    response = client.get("/email/connect")
    page = response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    assert 'name="continue_"' in page and 'id="mc-presets"' in page
    presets = json.loads(re.search(r'id="mc-presets">(.*?)</script>', page, re.S).group(1))
    assert presets["google"]["smtp"] == {"host": "smtp.gmail.com", "port": 587,
                                         "security": "starttls"}  # fmt: skip
    assert "gmail.com" in presets["google"]["domains"]
    for label in ("SSL/TLS", "STARTTLS", "None", "Receive mail (IMAP)", "Allowed ports: 143, 993."):
        assert label in page


def test_continue_without_js_prefills_from_the_preset(client: FlaskClient) -> None:
    login(client, 1)
    data = {"csrf_token": csrf_token(client), "email": "a.person@gmail.com",
            "continue_": "Continue"}  # fmt: skip
    page = client.post("/email/connect", data=data).get_data(as_text=True)
    assert 'value="smtp.gmail.com"' in page and 'value="imap.gmail.com"' in page
    assert '<option selected value="google">' in page
    assert 'name="username" spellcheck="false" type="text" value="a.person@gmail.com"' in page
    assert 'name="continue_"' not in page  # the details step is shown


def test_continue_with_a_bad_address_stays_on_the_first_step(client: FlaskClient) -> None:
    login(client, 1)
    data = {"csrf_token": csrf_token(client), "email": "not-an-address", "continue_": "Continue"}
    response = client.post("/email/connect", data=data)
    assert response.status_code == 422
    assert 'mc-field--error" data-field="email"' in response.get_data(as_text=True)


def test_port_outside_the_allowlist_is_a_field_error(app: Flask, client: FlaskClient) -> None:
    login(client, 1)
    data = form_data(csrf_token(client), smtp_port="1234", imap_port="993", test="Test")
    response = client.post("/email/connect", data=data)
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Port 1234 is not allowed here. Use one of: 25, 465, 587, 2525." in page
    assert PASSWORD not in page
    with app.app_context():
        assert count(app, client.application.extensions["mailconnect"].db, AuditEvent) == 0


def test_json_test_reports_field_errors(client: FlaskClient) -> None:
    login(client, 1)
    token = csrf_token(client)
    data = form_data(token, smtp_host="bad host!", password="")
    answer = client.post("/email/connect/test", data=data, headers=json_headers(token))
    assert answer.status_code == 422
    errors = answer.get_json()["errors"]
    assert set(errors) == {"smtp_host", "password"}


# -- against real servers --------------------------------------------------------------------


@pytest.fixture
def servers(smtp_starttls: Any, dovecot: Any) -> tuple[Any, Any]:
    """aiosmtpd (STARTTLS) and Dovecot (IMAP with STARTTLS and IMAPS) sharing one login."""
    assert (smtp_starttls.user, smtp_starttls.password) == (dovecot.user, dovecot.password)
    return smtp_starttls, dovecot


def form_data(token: str, **overrides: Any) -> dict[str, Any]:
    """The connect form as a browser would post it (placeholders where no server is needed)."""
    data = {
        "csrf_token": token, "email": EMAIL, "provider": "other", "username": USER,
        "password": PASSWORD, "smtp_host": "localhost", "smtp_port": "587",
        "smtp_security": "starttls", "receives": "y", "imap_host": "localhost",
        "imap_port": "143", "imap_security": "starttls", "display_name": "Alice Martin",
    }  # fmt: skip
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def peer_form(token: str, servers: tuple[Any, Any], **overrides: Any) -> dict[str, Any]:
    smtp, imap = servers
    ports = {"smtp_port": str(smtp.port), "imap_port": str(imap.port)}
    return form_data(token, **{**ports, **overrides})


def json_headers(token: str) -> dict[str, str]:
    return {"X-CSRFToken": token, "Accept": "application/json"}


@pytest.mark.peers
def test_connect_update_disconnect_flow(
    peer_app: Flask, db: Any, client: FlaskClient, servers: Any, caplog: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    bodies: list[str] = []

    def keep(response: Any) -> Any:
        bodies.append(response.get_data(as_text=True))
        return response

    login(client, 1)
    token = csrf_token(client)
    data = peer_form(token, servers)

    # Test connection with JS: JSON with a result per protocol and the rendered partial.
    answer = keep(client.post("/email/connect/test", data=data, headers=json_headers(token)))
    result = answer.get_json()
    assert answer.status_code == 200 and result["ok"] is True, result
    assert [(r["protocol"], r["ok"]) for r in result["results"]] == [("smtp", True),
                                                                      ("imap", True)]  # fmt: skip
    assert "Connection works" in result["html"]

    # Without JS: the same result in the page; what was typed is kept, except the password.
    page = keep(client.post("/email/connect", data={**data, "test": "Test connection"}))
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Connection works" in html
    assert f'value="{servers[0].port}"' in html and 'value="Alice Martin"' in html
    assert 'name="password" type="password" value=""' in html

    # Save: account stored, password encrypted, signal once with account and actor.
    connected = Recorder()
    with account_connected.connected_to(connected, peer_app):
        saved = keep(client.post("/email/connect", data={**data, "save": "Save account"}))
    assert saved.status_code == 302, saved.get_data(as_text=True)
    with peer_app.app_context():
        account = db.session.scalars(sa.select(MailAccount)).one()
        account_id = account.id
        assert (account.email, account.display_name, account.imap_port) == (
            EMAIL, "Alice Martin", servers[1].port)  # fmt: skip
        raw = db.session.execute(sa.text("SELECT password FROM mailconnect_account")).scalar()
    assert saved.headers["Location"] == f"/email/accounts/{account_id}"
    assert raw and PASSWORD not in raw
    assert len(connected.calls) == 1
    assert connected.calls[0]["account"].id == account_id
    assert connected.calls[0]["actor"].id == 1

    page = keep(client.get(f"/email/accounts/{account_id}"))
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Alice Martin" in html and "Connected" in html
    assert "just now" in html and "localhost:" in html

    # Update: hostile signature sanitised, signal once with the changes.
    hostile = (
        '<p onclick="steal()">Alice <b>Martin</b></p><script>alert(1)</script>'
        '<a href="javascript:alert(2)">x</a><a href="https://example.test/">site</a>'
        '<img src="https://tracker.example.test/pixel.png">'
    )
    updated = Recorder()
    settings_token = csrf_token(client, f"/email/accounts/{account_id}")
    update = {"csrf_token": settings_token, "display_name": "Alice M.",
              "signature_html": hostile, "mute_mobile": "y", "is_default": "y"}  # fmt: skip
    with account_updated.connected_to(updated, peer_app):
        assert keep(client.post(f"/email/accounts/{account_id}", data=update)).status_code == 302
    assert len(updated.calls) == 1
    assert updated.calls[0]["changes"] == {"display_name", "signature_html", "notify_email",
                                           "notify_mobile"}  # fmt: skip
    assert updated.calls[0]["actor"].id == 1
    stored = get_account(peer_app, db, account_id)
    assert stored is not None and not stored.notify_email and not stored.notify_mobile
    for bad in ("<script", "onclick", "javascript:", "tracker.example.test", "alert("):
        assert bad not in stored.signature_html
    assert "<b>Martin</b>" in stored.signature_html
    assert "https://example.test/" in stored.signature_html
    assert stored.signature_text.startswith("Alice Martin")
    html = keep(client.get(f"/email/accounts/{account_id}")).get_data(as_text=True)
    for bad in ("<script>alert", "onclick", "javascript:", "tracker.example.test"):
        assert bad not in html
    assert "<b>Martin</b>" in html  # the sanitised preview renders as HTML

    # Disconnect: confirmation page, then POST; signal once; the account is gone.
    confirm = keep(client.get(f"/email/accounts/{account_id}/disconnect"))
    assert f"Disconnect {EMAIL}?" in confirm.get_data(as_text=True)
    assert "deletes the saved password and synced mail" in confirm.get_data(as_text=True)
    disconnected = Recorder()
    token = csrf_token(client, f"/email/accounts/{account_id}/disconnect")
    with account_disconnected.connected_to(disconnected, peer_app):
        gone = keep(client.post(f"/email/accounts/{account_id}/disconnect",
                                data={"csrf_token": token}))  # fmt: skip
    assert gone.status_code == 302 and gone.headers["Location"] == "/email/"
    assert len(disconnected.calls) == 1 and disconnected.calls[0]["account"].email == EMAIL
    assert get_account(peer_app, db, account_id) is None
    assert EMAIL not in keep(client.get("/email/")).get_data(as_text=True)

    # Audit: who did what, how it ended; never the password.
    with peer_app.app_context():
        events = db.session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id)).all()
        rows = [(e.action, e.outcome, e.actor_id) for e in events]
        dump = " ".join(str(vars(e)) for e in events)
    assert rows == [("test", "ok", "1"), ("test", "ok", "1"), ("test", "ok", "1"),
                    ("connect", "ok", "1"), ("update", "ok", "1"),
                    ("disconnect", "ok", "1")]  # fmt: skip
    assert PASSWORD not in dump

    for body in bodies:
        assert PASSWORD not in body
    for record in caplog.records:
        assert PASSWORD not in record.getMessage()
        assert PASSWORD not in repr(record.args)


@pytest.mark.peers
def test_wrong_password_shows_auth_failed_and_saves_nothing(
    peer_app: Flask, db: Any, client: FlaskClient, servers: Any
) -> None:
    login(client, 1)
    data = peer_form(csrf_token(client), servers, password="wrong-password", save="Save")
    response = client.post("/email/connect", data=data)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert MESSAGES["auth_failed"] in html and "auth_failed" in html
    assert "Connection failed" in html and "wrong-password" not in html
    assert count(peer_app, db, MailAccount) == 0
    with peer_app.app_context():
        event = db.session.scalars(sa.select(AuditEvent)).one()
    assert (event.action, event.outcome) == ("test", "failed")


@pytest.mark.peers
def test_json_test_with_wrong_password(peer_app: Flask, client: FlaskClient, servers: Any) -> None:
    login(client, 1)
    token = csrf_token(client)
    data = peer_form(token, servers, password="wrong-password")
    result = client.post("/email/connect/test", data=data, headers=json_headers(token)).get_json()
    assert result["ok"] is False
    codes = {r["protocol"]: r["code"] for r in result["results"]}
    assert codes == {"smtp": "auth_failed", "imap": "auth_failed"}
    assert MESSAGES["auth_failed"] in result["html"]


@pytest.mark.peers
def test_too_many_tests_are_refused_in_json_and_in_the_page(
    peer_app: Flask, db: Any, client: FlaskClient, servers: Any
) -> None:
    peer_app.config["MAILCONNECT_TESTS_PER_HOUR"] = 1
    login(client, 1)
    token = csrf_token(client)
    data = peer_form(token, servers, password="wrong-password")
    first = client.post("/email/connect/test", data=data, headers=json_headers(token))
    assert first.status_code == 200 and first.get_json()["ok"] is False
    logins = len(servers[0].auth_attempts)
    second = client.post("/email/connect/test", data=data, headers=json_headers(token))
    assert second.status_code == 429
    assert second.get_json()["error"] == "rate_limited"
    assert "connection tests in the last hour" in second.get_json()["message"]
    # Without JavaScript: the same refusal in the page, with what was typed kept.
    page = client.post("/email/connect", data={**data, "test": "Test connection"})
    html = page.get_data(as_text=True)
    assert page.status_code == 429
    assert "connection tests in the last hour" in html
    assert f'value="{servers[0].port}"' in html and "wrong-password" not in html
    # Save runs a test too, so it is refused the same way, and nothing is stored.
    saved = client.post("/email/connect", data={**data, "password": PASSWORD, "save": "Save"})
    assert saved.status_code == 429
    assert len(servers[0].auth_attempts) == logins  # no further login reached the server
    with peer_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(MailAccount)) == 0


@pytest.mark.peers
def test_send_only_account_connects_with_smtp_alone(
    peer_app: Flask, db: Any, client: FlaskClient, servers: Any
) -> None:
    login(client, 1)
    # Receive unticked: the IMAP fields are ignored, even when they hold nonsense.
    data = peer_form(csrf_token(client), servers, receives=None, imap_host="no such host",
                     imap_port="", save="Save")  # fmt: skip
    response = client.post("/email/connect", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)
    with peer_app.app_context():
        account = db.session.scalars(sa.select(MailAccount)).one()
        assert (account.imap_host, account.imap_port, account.receives) == (None, None, False)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Off (send only)" in page


@pytest.mark.peers
def test_reconnect_keeps_settings(
    peer_app: Flask, db: Any, client: FlaskClient, servers: Any
) -> None:
    account_id = make_account(peer_app, db, "1")
    login(client, 1)
    page = client.get(f"/email/accounts/{account_id}/reconnect").get_data(as_text=True)
    assert "readonly" in page and 'value="smtp.example.test"' in page
    token = csrf_token(client, f"/email/accounts/{account_id}/reconnect")
    data = peer_form(token, servers, email="someone.else@example.com", display_name=None)
    answer = client.post(f"/email/accounts/{account_id}/reconnect/test", data=data,
                         headers=json_headers(token))  # fmt: skip
    assert answer.get_json()["ok"] is True
    updated = Recorder()
    with account_updated.connected_to(updated, peer_app):
        response = client.post(f"/email/accounts/{account_id}/reconnect",
                               data={**data, "save": "Save"})  # fmt: skip
    assert response.status_code == 302, response.get_data(as_text=True)
    assert [c["changes"] for c in updated.calls] == [{"credentials"}]
    account = get_account(peer_app, db, account_id)
    assert account is not None
    assert (account.email, account.display_name, account.smtp_host) == (EMAIL, "Alice", "localhost")
    assert account.smtp_port == servers[0].port


def test_docs_list_every_template() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    listed = (root / "docs" / "templates.rst").read_text()
    shipped = sorted(p.name for p in (root / "flask_mailconnect/templates/mailconnect").iterdir())
    missing = [name for name in [*shipped, "_base.html"] if f"``{name}``" not in listed]
    assert missing == []
