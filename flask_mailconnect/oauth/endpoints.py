"""Talking to a provider's token service: the guarded OAuth session, the token and revocation
endpoints (from configuration or the discovery document, cached on the app's runtime), and which
provider an account's tokens belong to.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..exceptions import TokenError, TokenRefreshUnavailable
from ..models import MailAccount
from ..providers import Provider, current_catalog
from ..runtime import Runtime
from ..transport.http import HTTPGuardError, oauth2_session_class

if TYPE_CHECKING:
    from ..transport.http import GuardedOAuth2Session

#: Seconds a provider's discovery document (and its keys) are trusted before being read again.
METADATA_TTL = 3600


def oauth_session(
    state: Runtime, provider: Provider, scope: str | None = None
) -> GuardedOAuth2Session:
    """Token refresh, metadata and revocation go through the network guard (transport/http.py):
    checked addresses only, https, verified TLS (system store plus ``MAILCONNECT_CA_FILE``),
    no POST re-sent on a redirect, timeouts and a size cap on every answer."""
    return oauth2_session_class()(
        provider.client_id,
        provider.client_secret,
        token_endpoint_auth_method=provider.token_endpoint_auth_method,
        revocation_endpoint_auth_method=provider.token_endpoint_auth_method,
        scope=scope,
        transport_options=state.transport_options(),
    )


def guard_refused(provider: Provider, exc: HTTPGuardError) -> TokenError:
    """A provider URL the guard refuses will not work on retry: say what to fix."""
    where = f" ({exc.address})" if exc.address else ""
    return TokenError(
        f"{provider.name}'s OAuth endpoint is not allowed{where}: {exc.message}", error=exc.code
    )


def timeout_of(state: Runtime) -> float:
    return state.transport_options().timeout


@dataclass(frozen=True)
class Endpoints:
    token: str
    revoke: str | None


def endpoints(state: Runtime, provider: Provider) -> Endpoints:
    """The token and revocation endpoints, from config or the server metadata (cached on the
    app for :data:`METADATA_TTL` seconds per metadata URL)."""
    if provider.token_url or not provider.server_metadata_url:
        assert provider.token_url  # providers.py refuses an entry with neither
        return Endpoints(provider.token_url, provider.revoke_url)
    meta = state.oauth_metadata.get(provider.server_metadata_url)
    if meta is None:
        import requests  # where used: not at the host's start-up

        try:
            with oauth_session(state, provider) as client:
                response = client.get(
                    provider.server_metadata_url, timeout=timeout_of(state), withhold_token=True
                )
            response.raise_for_status()
            meta = response.json()
        except (requests.RequestException, ValueError) as exc:
            if isinstance(exc, HTTPGuardError) and exc.refused:
                raise guard_refused(provider, exc) from None
            raise TokenRefreshUnavailable(
                f"The server metadata of {provider.name} could not be read "
                f"({type(exc).__name__}); try again later."
            ) from None
        if not isinstance(meta, Mapping) or not meta.get("token_endpoint"):
            raise TokenError(f"The server metadata of {provider.name} names no token endpoint.")
        state.oauth_metadata.put(provider.server_metadata_url, dict(meta), METADATA_TTL)
    return Endpoints(
        str(meta["token_endpoint"]), provider.revoke_url or meta.get("revocation_endpoint")
    )


def provider_for(account: MailAccount) -> Provider:
    """The account's provider, configured for OAuth (disabled ones too: existing accounts keep
    working); raises :class:`TokenError` when its OAuth settings are gone."""
    found = current_catalog().for_account(account)
    if not found.offers_oauth:
        raise TokenError(
            f"The OAuth provider {account.provider!r} of this account is not configured "
            "(MAILCONNECT_PROVIDERS)."
        )
    return found
