"""The local OAuth provider speaks Google's and Microsoft's parameter and error shapes.

These are the behaviours the extension's OAuth client (and its error pages) rely on, so they are
pinned here against the real HTTP endpoints.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from example_app.oauth_provider import pkce_pair
from tests.peers.oauth import (
    CLIENT_ID,
    CLIENT_SECRET,
    GOOGLE,
    MICROSOFT,
    REDIRECT_URI,
    authorize_and_exchange,
    jwt_claims,
    refresh,
)

FLAVOURS = [GOOGLE, MICROSOFT]


def _auth_params(**changes: Any) -> dict[str, str]:
    _verifier, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid email",
        "state": "s-42",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(changes)
    return {k: v for k, v in params.items() if v is not None}


def _redirect_query(response: requests.Response) -> dict[str, list[str]]:
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?")
    return parse_qs(urlparse(location).query)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_consent_page_shows_scopes_and_prefilled_account(oauth_provider: Any, flavour: str) -> None:
    params = _auth_params(scope="openid email https://mail.google.com/")
    page = requests.get(oauth_provider.urls(flavour).authorize_url, params=params, timeout=5)
    assert page.status_code == 200
    assert "https://mail.google.com/" in page.text
    assert f"value='{oauth_provider.default_user}'" in page.text
    assert "Allow</button>" in page.text and "Deny</button>" in page.text


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize(
    "pkce",
    [
        {"code_challenge": None, "code_challenge_method": None},
        {"code_challenge_method": "plain"},
        {"code_challenge_method": None},
    ],
    ids=["no-pkce", "plain", "no-method"],
)
def test_pkce_s256_is_required(oauth_provider: Any, flavour: str, pkce: dict[str, Any]) -> None:
    response = requests.get(
        oauth_provider.urls(flavour).authorize_url,
        params=_auth_params(**pkce),
        allow_redirects=False,
        timeout=5,
    )
    query = _redirect_query(response)
    assert query["error"] == ["invalid_request"]
    assert query["state"] == ["s-42"]
    assert "code" not in query


def test_wrong_code_verifier_is_invalid_grant(oauth_provider: Any) -> None:
    urls = oauth_provider.google
    consent = requests.post(
        urls.authorize_url,
        params=_auth_params(),
        data={"email": "alice@example.test", "action": "allow"},
        allow_redirects=False,
        timeout=5,
    )
    code = _redirect_query(consent)["code"][0]
    wrong_verifier, _challenge = pkce_pair()
    answer = requests.post(
        urls.token_url,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "code_verifier": wrong_verifier,
        },
        timeout=5,
    )
    assert answer.status_code == 400
    assert answer.json() == {"error": "invalid_grant", "error_description": "Bad Request"}


def test_unregistered_redirect_uri_shows_an_error_page_and_never_redirects(
    oauth_provider: Any,
) -> None:
    response = requests.get(
        oauth_provider.google.authorize_url,
        params=_auth_params(redirect_uri="https://evil.example/cb"),
        allow_redirects=False,
        timeout=5,
    )
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "Error 400" in response.text


def test_redirect_uris_can_be_registered_at_runtime(oauth_provider: Any) -> None:
    uri = "http://127.0.0.1:5999/mailconnect/oauth/google/callback"
    oauth_provider.add_redirect_uri(CLIENT_ID, uri)
    answer = authorize_and_exchange(oauth_provider, GOOGLE, redirect_uri=uri)
    assert answer.status_code == 200


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_code_exchange_returns_the_providers_token_shape(oauth_provider: Any, flavour: str) -> None:
    answer = authorize_and_exchange(oauth_provider, flavour, email="carol@example.test")
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    token = answer.json()
    expected = {"access_token", "expires_in", "refresh_token", "scope", "token_type", "id_token"}
    if flavour == MICROSOFT:
        expected.add("ext_expires_in")
    assert set(token) == expected
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 3600
    assert oauth_provider.token_requests == 1


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_id_token_is_signed_and_carries_the_email(oauth_provider: Any, flavour: str) -> None:
    token = authorize_and_exchange(oauth_provider, flavour, email="dave@example.test").json()
    urls = oauth_provider.urls(flavour)
    metadata = requests.get(urls.metadata_url, timeout=5).json()
    assert metadata["issuer"] == urls.issuer
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert ("revocation_endpoint" in metadata) is (flavour == GOOGLE)
    keys = KeySet.import_key_set(requests.get(metadata["jwks_uri"], timeout=5).json())
    decoded = jwt.decode(token["id_token"], keys, algorithms=["RS256"])
    claims = decoded.claims
    assert claims["iss"] == urls.issuer
    assert claims["aud"] == CLIENT_ID
    assert claims["email"] == "dave@example.test"
    # Google vouches with email_verified; Microsoft with the optional claim xms_edov.
    assert claims["email_verified" if flavour == GOOGLE else "xms_edov"] is True
    userinfo = requests.get(
        metadata["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {token['access_token']}"},
        timeout=5,
    ).json()
    assert userinfo["email"] == "dave@example.test"
    assert userinfo["sub"] == claims["sub"]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_omit_email_leaves_it_out_of_id_token_and_userinfo(
    oauth_provider: Any, flavour: str
) -> None:
    oauth_provider.omit_email = True
    token = authorize_and_exchange(oauth_provider, flavour).json()
    assert "email" not in jwt_claims(token["id_token"])
    userinfo = requests.get(
        oauth_provider.urls(flavour).userinfo_url,
        headers={"Authorization": f"Bearer {token['access_token']}"},
        timeout=5,
    ).json()
    assert "email" not in userinfo and "preferred_username" not in userinfo


def test_omit_refresh_token(oauth_provider: Any) -> None:
    oauth_provider.omit_refresh_token = True
    token = authorize_and_exchange(oauth_provider, GOOGLE).json()
    assert "refresh_token" not in token and token["access_token"]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_deny_redirects_with_access_denied(oauth_provider: Any, flavour: str) -> None:
    response = requests.post(
        oauth_provider.urls(flavour).authorize_url,
        params=_auth_params(),
        data={"email": "alice@example.test", "action": "deny"},
        allow_redirects=False,
        timeout=5,
    )
    query = _redirect_query(response)
    assert query["error"] == ["access_denied"]
    assert query["state"] == ["s-42"]
    assert "code" not in query
    if flavour == MICROSOFT:
        assert query["error_description"][0].startswith("AADSTS65004:")


def test_refresh_rotates_and_the_old_refresh_token_is_invalid_grant_microsoft(
    oauth_provider: Any,
) -> None:
    first = authorize_and_exchange(oauth_provider, MICROSOFT).json()
    second = refresh(oauth_provider, first["refresh_token"], MICROSOFT)
    assert second.status_code == 200
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    assert rotated["access_token"] != first["access_token"]
    assert "ext_expires_in" in rotated
    assert oauth_provider.refresh_requests == 1

    reuse = refresh(oauth_provider, first["refresh_token"], MICROSOFT)
    assert reuse.status_code == 400
    body = reuse.json()
    assert set(body) == {
        "error",
        "error_description",
        "error_codes",
        "timestamp",
        "trace_id",
        "correlation_id",
        "error_uri",
    }
    assert body["error"] == "invalid_grant"
    assert body["error_description"].startswith("AADSTS70000: ")
    assert body["error_codes"] == [70000]
    # The newest refresh token still works.
    assert refresh(oauth_provider, rotated["refresh_token"], MICROSOFT).status_code == 200


def test_google_does_not_rotate_by_default_but_can(oauth_provider: Any) -> None:
    first = authorize_and_exchange(oauth_provider, GOOGLE).json()
    again = refresh(oauth_provider, first["refresh_token"], GOOGLE).json()
    assert "refresh_token" not in again  # Google keeps the old one valid
    assert refresh(oauth_provider, first["refresh_token"], GOOGLE).status_code == 200

    oauth_provider.rotate_refresh_tokens[GOOGLE] = True
    rotated = refresh(oauth_provider, first["refresh_token"], GOOGLE).json()
    assert rotated["refresh_token"] != first["refresh_token"]
    reuse = refresh(oauth_provider, first["refresh_token"], GOOGLE)
    assert reuse.status_code == 400
    assert reuse.json() == {
        "error": "invalid_grant",
        "error_description": "Token has been expired or revoked.",
    }


def test_google_revocation_kills_refresh_and_access_tokens(oauth_provider: Any) -> None:
    token = authorize_and_exchange(oauth_provider, GOOGLE).json()
    fresh = refresh(oauth_provider, token["refresh_token"], GOOGLE).json()
    revoked = requests.post(
        oauth_provider.google.revoke_url, data={"token": token["refresh_token"]}, timeout=5
    )
    assert revoked.status_code == 200
    assert not oauth_provider.token_active(token["access_token"])
    assert not oauth_provider.token_active(fresh["access_token"])
    again = refresh(oauth_provider, token["refresh_token"], GOOGLE)
    assert again.json()["error_description"] == "Token has been expired or revoked."
    twice = requests.post(
        oauth_provider.google.revoke_url, data={"token": token["refresh_token"]}, timeout=5
    )
    assert twice.status_code == 400
    assert twice.json()["error"] == "invalid_token"


def test_microsoft_has_no_revocation_endpoint(oauth_provider: Any) -> None:
    assert oauth_provider.microsoft.revoke_url is None
    base = oauth_provider.microsoft.token_url.rsplit("/", 1)[0]
    assert requests.post(f"{base}/revoke", data={"token": "x"}, timeout=5).status_code == 404


def test_revoke_user_turns_refresh_into_invalid_grant(oauth_provider: Any) -> None:
    token = authorize_and_exchange(oauth_provider, MICROSOFT, email="erin@example.test").json()
    assert oauth_provider.revoke_user("erin@example.test") >= 1
    assert refresh(oauth_provider, token["refresh_token"], MICROSOFT).json()["error"] == (
        "invalid_grant"
    )


@pytest.mark.parametrize("status", [500, 503])
def test_token_endpoint_can_fail_with_5xx(oauth_provider: Any, status: int) -> None:
    token = authorize_and_exchange(oauth_provider, GOOGLE).json()
    oauth_provider.fail_token_endpoint_with(status)
    assert refresh(oauth_provider, token["refresh_token"], GOOGLE).status_code == status
    oauth_provider.fail_token_endpoint_with(None)
    assert refresh(oauth_provider, token["refresh_token"], GOOGLE).status_code == 200
    assert oauth_provider.refresh_requests == 2


def test_introspection_active_inactive_and_client_authenticated(
    oauth_provider: Any, oauth_introspection: Any
) -> None:
    token = authorize_and_exchange(oauth_provider, GOOGLE, email="frank@example.test").json()
    answer = oauth_introspection.check(token["access_token"])
    assert answer["active"] is True
    assert answer["username"] == "frank@example.test"
    assert "https://mail.google.com/" in answer["scope"]
    assert oauth_introspection.check("ya29.unknown") == {"active": False}

    anonymous = requests.post(
        oauth_introspection.url, data={"token": token["access_token"]}, timeout=5
    )
    assert anonymous.status_code == 401

    oauth_provider.expire_access_tokens("frank@example.test")
    assert oauth_introspection.check(token["access_token"]) == {"active": False}
    # The refresh token is still good after the access token expired.
    refreshed = oauth_introspection.check(token["refresh_token"])
    assert refreshed["active"] is True

    oauth_provider.revoke_user("frank@example.test")
    assert oauth_introspection.check(token["refresh_token"]) == {"active": False}


def test_expires_in_knob(oauth_provider: Any) -> None:
    oauth_provider.expires_in = 5
    token = authorize_and_exchange(oauth_provider, MICROSOFT).json()
    assert token["expires_in"] == 5 and token["ext_expires_in"] == 5


def test_tokens_never_logged(oauth_provider: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    token = authorize_and_exchange(oauth_provider, MICROSOFT).json()
    rotated = refresh(oauth_provider, token["refresh_token"], MICROSOFT).json()
    for value in (token["access_token"], token["refresh_token"], rotated["access_token"]):
        assert value[:30] not in caplog.text
