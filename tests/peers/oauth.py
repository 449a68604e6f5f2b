"""The local OAuth provider (example_app/oauth_provider.py) as a test peer, plus helpers.

The SMTP peer and Dovecot check XOAUTH2 bearer tokens against its RFC 7662 introspection
endpoint, authenticating as the provider's resource-server client.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlparse

import requests

from example_app.oauth_provider import (
    GOOGLE,
    GRAPH_RESOURCE,
    MICROSOFT,
    OAuthProviderServer,
    default_scopes,
    pkce_pair,
)

from . import MAILBOX_USER

#: The OAuth client every test registers against the provider (both flavours).
CLIENT_ID = "mailconnect-tests"
CLIENT_SECRET = "client-s3cret"
#: A redirect URI registered up front; tests add their own with ``add_redirect_uri``.
REDIRECT_URI = "http://127.0.0.1/oauth/callback"


@dataclass(frozen=True)
class Introspection:
    """How a resource server (SMTP peer, Dovecot) reaches the introspection endpoint."""

    url: str
    client_id: str
    client_secret: str

    def check(self, token: str, timeout: float = 5.0) -> dict[str, Any]:
        """The RFC 7662 answer for ``token`` (``{"active": False}`` on any failure)."""
        try:
            response = requests.post(
                self.url,
                data={"token": token, "token_type_hint": "access_token"},
                auth=(self.client_id, self.client_secret),
                timeout=timeout,
                allow_redirects=False,
            )
        except requests.RequestException:
            return {"active": False}
        if response.status_code != 200:
            return {"active": False}
        data = response.json()
        if not isinstance(data, dict):
            return {"active": False}
        # A mail server accepts no token issued for Microsoft Graph (one resource per token).
        if data.get("aud") == GRAPH_RESOURCE:
            return {"active": False}
        return data


def start_oauth_server(default_user: str = MAILBOX_USER) -> OAuthProviderServer:
    server = OAuthProviderServer(default_user=default_user).start()
    server.register_client(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI])
    return server


def introspection_for(server: OAuthProviderServer) -> Introspection:
    return Introspection(
        server.introspection_url,
        server.introspection_client_id,
        server.introspection_client_secret,
    )


def mint_token(
    server: OAuthProviderServer, email: str = MAILBOX_USER, flavour: str = GOOGLE
) -> dict[str, Any]:
    """A fresh token pair for ``email`` without going through the consent page."""
    return server.issue_token(email, client_id=CLIENT_ID, flavour=flavour)


def authorize_and_exchange(
    server: OAuthProviderServer,
    flavour: str = GOOGLE,
    *,
    email: str = MAILBOX_USER,
    scope: str | None = None,
    state: str = "state-123",
    redirect_uri: str = REDIRECT_URI,
) -> requests.Response:
    """The whole code flow over HTTP, as a browser and a client would do it: consent as
    ``email``, then exchange the code with the PKCE verifier. Returns the token response."""
    urls = server.urls(flavour)
    verifier, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": redirect_uri,
        "scope": scope or " ".join(default_scopes(flavour)),
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    consent = requests.post(
        urls.authorize_url,
        params=params,
        data={"email": email, "action": "allow"},
        allow_redirects=False,
        timeout=5,
    )
    assert consent.status_code == 302, consent.text
    query = parse_qs(urlparse(consent.headers["Location"]).query)
    assert query["state"] == [state]
    return requests.post(
        urls.token_url,
        data={
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": redirect_uri,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "code_verifier": verifier,
        },
        timeout=5,
    )


def refresh(
    server: OAuthProviderServer,
    refresh_token: str,
    flavour: str = GOOGLE,
    *,
    scope: str | None = None,
) -> requests.Response:
    """POST a refresh grant (client_secret_post, as the extension does)."""
    data = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    if scope is not None:
        data["scope"] = scope
    return requests.post(server.urls(flavour).token_url, data=data, timeout=5)


def jwt_claims(token: str) -> dict[str, Any]:
    """The unverified payload of a JWT (tests verify signatures separately)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


__all__ = [
    "CLIENT_ID",
    "CLIENT_SECRET",
    "GOOGLE",
    "MICROSOFT",
    "REDIRECT_URI",
    "Introspection",
    "authorize_and_exchange",
    "introspection_for",
    "jwt_claims",
    "mint_token",
    "refresh",
    "start_oauth_server",
]
