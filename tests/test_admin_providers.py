"""Admin providers: CRUD with validation errors in the page, unique domains, delete refused while
accounts exist, encrypted client secret never sent back, only enabled providers offered."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from flask_mailconnect.models import MailAccount, MailProvider, MailProviderDomain
from tests.admin_forms import SECRET, create, form, oauth_form, token
from tests.conftest import login


def provider(app: Flask, db: Any, name: str = "Acme Mail") -> MailProvider:
    with app.app_context():
        found = db.session.scalars(sa.select(MailProvider).where(MailProvider.name == name)).one()
        db.session.expunge(found)
        return found


def test_non_admins_get_403(client: FlaskClient) -> None:
    login(client, 1)
    for url in ("/email/admin/providers", "/email/admin/providers/new", "/email/admin/accounts",
                "/email/admin/audit", "/email/admin/users"):  # fmt: skip
        assert client.get(url).status_code == 403, url


def test_create_edit_and_offer(client: FlaskClient, app: Flask, db: Any) -> None:
    login(client, 3)
    response = create(client)
    assert response.status_code == 302
    page = client.get("/email/admin/providers").get_data(as_text=True)
    assert "Acme Mail" in page and "acme-corp.com, acme.org" in page
    saved = provider(app, db)
    assert saved.key == "acme-mail" and saved.login_format == "local_part"
    # Users see it in the connect form and the presets JSON; detection picks it by domain.
    login(client, 1)
    page = client.get("/email/connect?email=bea@acme.org").get_data(as_text=True)
    assert '<option selected value="acme-mail">Acme Mail</option>' in page
    assert 'value="smtp.acme.org"' in page and 'value="bea"' in page
    # Edit: rename, keep the key.
    login(client, 3)
    url = f"/email/admin/providers/{saved.id}"
    data = form(name="Acme Mail EU", smtp_port="465", smtp_security="ssl")
    data["csrf_token"] = token(client, url)
    assert client.post(url, data=data).status_code == 302
    edited = provider(app, db, "Acme Mail EU")
    assert (edited.key, edited.smtp_port, edited.smtp_security) == ("acme-mail", 465, "ssl")


def test_disabled_provider_is_not_offered(client: FlaskClient, app: Flask, db: Any) -> None:
    login(client, 3)
    create(client)
    saved = provider(app, db)
    url = f"/email/admin/providers/{saved.id}/toggle"
    client.post(url, data={"csrf_token": token(client, "/email/admin/providers")})
    assert provider(app, db).enabled is False
    login(client, 1)
    page = client.get("/email/connect?email=bea@acme.org").get_data(as_text=True)
    assert "Acme Mail" not in page
    assert client.get("/email/detect?email=bea@acme.org").get_json()["provider"] == "other"


def test_validation_errors_are_shown_in_the_page(client: FlaskClient) -> None:
    login(client, 3)
    response = create(client, smtp_port="70000", imap_port="abc", imap_security="rot13")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert page.count("Enter a port number between 1 and 65535.") == 2
    assert "Unknown security &#39;rot13&#39;: choose SSL/TLS, STARTTLS or None." in page
    response = create(client, domains="not a domain!")
    assert "is not a domain name." in response.get_data(as_text=True)


def test_domain_claimed_by_another_provider(client: FlaskClient, app: Flask, db: Any) -> None:
    login(client, 3)
    create(client)
    response = create(client, name="Other Corp", domains="acme.org")
    assert response.status_code == 422
    assert "acme.org is already claimed by Acme Mail." in response.get_data(as_text=True)
    response = create(client, name="Fake Gmail", domains="gmail.com")
    assert "gmail.com is already claimed by Gmail / Google Workspace." in response.get_data(
        as_text=True
    )
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(MailProvider)) == 1


def test_delete_refused_while_accounts_exist(client: FlaskClient, app: Flask, db: Any) -> None:
    login(client, 3)
    create(client)
    saved = provider(app, db)
    with app.app_context():
        for i in range(2):
            db.session.add(MailAccount(
                owner_kind="user", owner_id="1", provider="acme-mail", email=f"u{i}@acme.org",
                username="u", smtp_host="smtp.acme.org", smtp_port=587, smtp_security="starttls",
            ))  # fmt: skip
        db.session.commit()
    url = f"/email/admin/providers/{saved.id}/delete"
    page = client.get(url).get_data(as_text=True)
    assert "cannot be deleted" in page and "2 accounts still use it" in page
    assert "/email/admin/accounts?provider=acme-mail" in page
    response = client.post(url, data={"csrf_token": token(client, "/email/admin/providers")})
    assert response.status_code == 409
    assert "2 accounts still use it" in response.get_data(as_text=True)
    with app.app_context():
        db.session.execute(sa.delete(MailAccount))
        db.session.commit()
    response = client.post(url, data={"csrf_token": token(client, "/email/admin/providers")})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(MailProvider)) == 0


def test_client_secret_encrypted_and_never_sent_back(
    client: FlaskClient, app: Flask, db: Any
) -> None:
    login(client, 3)
    response = create(
        client, auth_method="oauth2", client_id="acme-client", client_secret=SECRET,
        authorize_url="https://id.acme.org/authorize", token_url="https://id.acme.org/token",
        userinfo_url="https://id.acme.org/userinfo", scopes="mail.send",
    )  # fmt: skip
    assert response.status_code == 302
    saved = provider(app, db)
    with app.app_context():
        raw = db.session.execute(
            sa.text("SELECT client_secret FROM mailconnect_provider WHERE id = :id"),
            {"id": saved.id},
        ).scalar_one()
        assert SECRET not in raw and raw.startswith("gAAAA")  # a Fernet token
        from flask_mailconnect.providers import current_catalog

        oauth = current_catalog().oauth()["acme-mail"]
        assert oauth.client_secret == SECRET and "mail.send" in oauth.scopes
        assert SECRET not in repr(oauth) and SECRET not in repr(saved)
    url = f"/email/admin/providers/{saved.id}"
    pages = [client.get(u) for u in (url, "/email/admin/providers", "/email/admin/audit")]
    for page in pages:
        assert SECRET not in page.get_data(as_text=True)
    edit = pages[0].get_data(as_text=True)
    assert "Set" in edit and "Replace secret" in edit
    # Saving without typing a secret keeps it; typing one replaces it.
    data = form(auth_method="oauth2", client_id="acme-client", name="Acme Mail",
                authorize_url="https://id.acme.org/authorize",
                token_url="https://id.acme.org/token",
                userinfo_url="https://id.acme.org/userinfo")  # fmt: skip
    data["csrf_token"] = token(client, url)
    response = client.post(url, data=data)
    assert response.status_code == 302
    with app.app_context():
        assert current_catalog().oauth()["acme-mail"].client_secret == SECRET
    data.update(client_secret="new-secret", csrf_token=token(client, url))
    client.post(url, data=data)
    with app.app_context():
        assert current_catalog().oauth()["acme-mail"].client_secret == "new-secret"
    # An invalid form posted with a secret does not echo it back.
    response = create(client, name="Bad", auth_method="oauth2", client_secret=SECRET,
                      smtp_port="0", domains="")  # fmt: skip
    assert response.status_code == 422 and SECRET not in response.get_data(as_text=True)


def test_oauth_provider_needs_endpoints(client: FlaskClient) -> None:
    login(client, 3)
    response = create(client, auth_method="oauth2", client_id="", domains="")
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Enter the client ID." in page and "Enter the client secret." in page
    assert "Enter a metadata URL, or the authorization and token URLs." in page


def test_explicit_urls_need_a_userinfo_url(client: FlaskClient, app: Flask, db: Any) -> None:
    """Without a discovery document the flow learns the address from the userinfo endpoint
    only: the form says so instead of saving a provider that cannot connect anyone (M3)."""
    login(client, 3)
    response = create(client, **oauth_form(userinfo_url=""))
    assert response.status_code == 422
    assert "Enter the userinfo URL (or a metadata URL)" in response.get_data(as_text=True)
    # A metadata URL alone is enough (the discovery document names the endpoints).
    assert create(client, **oauth_form(
        userinfo_url="", authorize_url="", token_url="",
        server_metadata_url="https://id.acme.org/.well-known/openid-configuration",
    )).status_code == 302  # fmt: skip
    with app.app_context():
        db.session.execute(sa.delete(MailProviderDomain))
        db.session.execute(sa.delete(MailProvider))
        db.session.commit()
    assert create(client, **oauth_form()).status_code == 302
    saved = provider(app, db)
    assert saved.userinfo_url == "https://id.acme.org/userinfo"
    page = client.get(f"/email/admin/providers/{saved.id}").get_data(as_text=True)
    assert 'value="https://id.acme.org/userinfo"' in page
    with app.app_context():
        from flask_mailconnect.providers import current_catalog

        assert current_catalog().oauth()["acme-mail"].userinfo_url == saved.userinfo_url


def test_provider_urls_must_be_https(client: FlaskClient, app: Flask) -> None:
    """The client secret and tokens go to these URLs: http:// is refused with a clear message,
    except with MAILCONNECT_ALLOW_PRIVATE_HOSTS (local test providers) (M5)."""
    login(client, 3)
    plain = {
        name: url.replace("https://", "http://")
        for name, url in oauth_form(revoke_url="https://id.acme.org/revoke").items()
        if name.endswith("_url")
    }
    response = create(client, **oauth_form(**plain))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert page.count("Use an https:// address: the client secret and tokens are sent to it.") == 4
    for bad in ("https://", "https:///path", "https://user:pw@id.acme.org/token", "ftp://x.org/a"):
        response = create(client, **oauth_form(token_url=bad))
        assert response.status_code == 422, bad
        assert "Enter a full URL starting with https://" in response.get_data(as_text=True), bad
    app.config["MAILCONNECT_ALLOW_PRIVATE_HOSTS"] = True
    assert create(client, **oauth_form(**plain)).status_code == 302


def test_form_shows_the_redirect_uri_to_register(client: FlaskClient, app: Flask, db: Any) -> None:
    """The edit page shows /oauth/<key>/callback on the app's external address, built like the
    flow builds it (never from the request's Host) (L7)."""
    login(client, 3)
    new_page = client.get("/email/admin/providers/new").get_data(as_text=True)
    assert "Shown here once the provider is saved" in new_page
    create(client, **oauth_form())
    saved = provider(app, db)
    url = f"/email/admin/providers/{saved.id}"
    page = client.get(url).get_data(as_text=True)
    assert "Set MAILCONNECT_EXTERNAL_URL" in page and "/email/oauth/acme-mail/callback" in page
    app.config["MAILCONNECT_EXTERNAL_URL"] = "https://crm.example.org/"
    page = client.get(url, headers={"Host": "evil.example"}).get_data(as_text=True)
    expected = "https://crm.example.org/email/oauth/acme-mail/callback"
    assert f'readonly value="{expected}"' in page
    assert "evil.example" not in page
    with app.test_request_context():
        from flask_mailconnect.oauth.client import redirect_uri
        from flask_mailconnect.providers import current_catalog

        assert redirect_uri(current_catalog().oauth()["acme-mail"]) == expected


def test_delete_cannot_orphan_an_account_created_meanwhile(
    client: FlaskClient, app: Flask, db: Any, monkeypatch: Any
) -> None:
    """The count shown (and checked) before the delete can be stale: an account created in
    between must make the delete refuse, not leave the account without its provider (L8)."""
    from flask_mailconnect import accounts

    login(client, 3)
    create(client)
    saved = provider(app, db)
    url = f"/email/admin/providers/{saved.id}/delete"
    csrf = token(client, "/email/admin/providers")
    with app.app_context():  # another admin's user connects just after the page counted 0
        db.session.add(MailAccount(
            owner_kind="user", owner_id="1", provider="acme-mail", email="late@acme.org",
            username="u", smtp_host="smtp.acme.org", smtp_port=587, smtp_security="starttls",
        ))  # fmt: skip
        db.session.commit()
    calls: list[list[str]] = []

    def stale(state: Any, keys: list[str]) -> dict[str, int]:
        calls.append(keys)  # the request's count is stale (0); later ones are real
        return {} if len(calls) == 1 else real(state, keys)

    real = accounts.provider_account_counts
    monkeypatch.setattr(accounts, "provider_account_counts", stale)
    response = client.post(url, data={"csrf_token": csrf})
    assert response.status_code == 409
    assert "1 account still uses it" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(MailProvider, saved.id) is not None
        assert db.session.scalar(sa.select(sa.func.count()).select_from(MailProviderDomain)) == 2
    # Once unused it goes, domains included.
    monkeypatch.setattr(accounts, "provider_account_counts", real)
    with app.app_context():
        db.session.execute(sa.delete(MailAccount))
        db.session.commit()
    assert client.post(url, data={"csrf_token": csrf}).status_code == 302
    with app.app_context():
        assert db.session.get(MailProvider, saved.id) is None
        assert db.session.scalar(sa.select(sa.func.count()).select_from(MailProviderDomain)) == 0
