"""OAuth settings read from MAILCONNECT_PROVIDERS: built-ins, overrides, generic, errors."""

from __future__ import annotations

import pytest

from flask_mailconnect.exceptions import OAuthConfigError
from flask_mailconnect.providers import build_catalog
from tests import hostapp


def oauth_providers(config: dict) -> dict:
    return build_catalog({"MAILCONNECT_PROVIDERS": config}).oauth()


def test_google_preset_needs_only_credentials_and_asks_for_offline_access() -> None:
    google = oauth_providers({"google": {"client_id": "id", "client_secret": "s3"}})["google"]
    assert google.token_url == "https://oauth2.googleapis.com/token"
    assert google.revoke_url == "https://oauth2.googleapis.com/revoke"
    assert "https://mail.google.com/" in google.scopes and "openid" in google.scopes
    assert google.authorize_params == {"access_type": "offline", "prompt": "consent"}
    assert google.smtp.host == "smtp.gmail.com"  # one provider: servers and sign-in
    assert build_catalog({}).get("gmail") is not None  # older accounts' key still resolves
    assert "google" not in build_catalog({}).oauth()  # no credentials: password only
    assert "s3" not in repr(google)


def test_microsoft_preset_uses_the_tenant_and_outlook_scopes() -> None:
    entry = {"client_id": "id", "client_secret": "s", "tenant": "contoso.example"}
    ms = oauth_providers({"microsoft": entry})["microsoft"]
    assert ms.authorize_url == (
        "https://login.microsoftonline.com/contoso.example/oauth2/v2.0/authorize"
    )
    assert ms.revoke_url is None and ms.access_settings_url
    assert {"offline_access", "https://outlook.office.com/IMAP.AccessAsUser.All",
            "https://outlook.office.com/SMTP.Send"} <= set(ms.scopes)  # fmt: skip
    common = oauth_providers({"microsoft": {"client_id": "i", "client_secret": "s"}})["microsoft"]
    assert "/common/" in common.token_url


def test_endpoints_can_be_overridden_and_scopes_extended() -> None:
    entry = {
        "client_id": "id",
        "client_secret": "s",
        "token_url": "http://127.0.0.1:9/token",
        "scopes": ["https://www.googleapis.com/auth/calendar.readonly"],
    }
    google = oauth_providers({"google": entry})["google"]
    assert google.token_url == "http://127.0.0.1:9/token"
    assert google.scopes[-1] == "https://www.googleapis.com/auth/calendar.readonly"
    assert "https://mail.google.com/" in google.scopes


def test_a_generic_provider_is_both_an_oauth_provider_and_a_server_preset() -> None:
    config = {
        "acme": {
            "name": "Acme Mail",
            "auth": "oauth2",
            "client_id": "id",
            "client_secret": "s",
            "server_metadata_url": "https://id.acme.example/.well-known/openid-configuration",
            "scopes": ["offline_access"],
            "smtp": {"host": "smtp.acme.example", "port": 587, "security": "starttls"},
            "imap": {"host": "imap.acme.example", "port": 993, "security": "ssl"},
            "domains": ["acme.example"],
        },
        "google": {"client_id": "g", "client_secret": "s"},
    }
    acme = oauth_providers(config)["acme"]
    assert acme.name == "Acme Mail"
    assert acme.scopes == ("openid", "email", "offline_access")
    catalog = build_catalog({"MAILCONNECT_PROVIDERS": config})
    assert catalog.get("acme").smtp.host == "smtp.acme.example"
    assert catalog.for_domain("acme.example") is acme or catalog.for_domain("acme.example") == acme
    assert [p.key for p in catalog].count("google") == 1  # credentials configure the built-in


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"auth": "oauth2", "client_id": "x",
          "smtp": {"host": "s.example", "port": 587, "security": "starttls"}},
         "client_id and client_secret"),
        ({"auth": "oauth2", "client_id": "x", "client_secret": "y",
          "smtp": {"host": "s.example", "port": 587, "security": "starttls"}},
         "server_metadata_url"),
        ({"auth": "oauth2", "client_id": "x", "client_secret": "y",
          "authorize_url": "https://a.example/auth", "token_url": "https://a.example/token"},
         "smtp"),
    ],
)  # fmt: skip
def test_broken_oauth_entries_fail_at_start_up(entry, message) -> None:
    with pytest.raises((OAuthConfigError, ValueError), match=message):
        hostapp.create_app(MAILCONNECT_PROVIDERS={"acme": entry})
