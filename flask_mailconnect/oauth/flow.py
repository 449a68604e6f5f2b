"""The consent flow: send the person to the provider, take the answer back, hand out a grant.

Authlib's Flask client does the protocol (:mod:`.client`); who signed in is read by
:mod:`.identity`.

Where things live during a flow:

- Authlib keeps the PKCE ``code_verifier``, the OpenID ``nonce`` and the redirect URI in our
  table ``mailconnect_oauth_state`` (:mod:`.state`, encrypted, taken once); the Flask session
  holds only ``_state_mailconnect_<key>_<state>: {"exp": ...}``. The callback of provider
  ``<key>`` looks only under its own name, so a state issued for one provider never completes
  at another's callback (mix-up defence), and a replayed older cookie finds nothing.
- Our own part, under ``session["mailconnect.oauth"][state]``: the provider key, the owner the
  account is for, who started the flow, the account being signed in again and the ``next``
  target. Both entries are removed the first time the callback sees the state: used once.

Nothing here writes the database: :mod:`flask_mailconnect.accounts` turns an :class:`OAuthGrant`
into an account.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from flask import request as flask_request
from flask import session

from ..exceptions import OAuthFlowError
from ..owners import Owner
from ..providers import Provider, current_catalog
from .client import client_for, http_detail, redirect_uri, safe_next
from .identity import identity

SESSION_KEY = "mailconnect.oauth"
#: Flows started but not finished, per session; older ones are dropped beyond this.
MAX_PENDING = 5
#: Seconds a person has at the provider before the state expires.
FLOW_TTL = 900


@dataclass(frozen=True)
class OAuthGrant:
    """What the provider granted: the address it vouched for and the tokens (never in repr)."""

    provider: Provider
    email: str
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: datetime | None
    scopes: str  #: space-separated, as granted (or as requested when the provider is silent)
    #: The provider's stable id of the person (Microsoft ``tid:oid``, else ``sub``), bound to
    #: the account at first consent; ``None`` only for plain OAuth 2.0 servers without one.
    subject: str | None = None
    issuer: str | None = None  #: the ID token's ``iss`` (informational)

    @property
    def graph_send(self) -> bool:
        """Sending through Graph was granted (sending without SMTP AUTH)."""
        wanted = self.provider.graph_send_scope
        return bool(wanted) and str(wanted).lower() in self.scopes.lower().split()


@dataclass(frozen=True)
class PendingFlow:
    """Our part of a flow, kept in the session between start and callback."""

    provider: str
    owner: Owner
    actor_id: str
    account_id: int | None = None
    next: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "owner": list(self.owner),
            "actor": self.actor_id,
            "account_id": self.account_id,
            "next": self.next,
            "exp": time.time() + FLOW_TTL,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PendingFlow:
        kind, ident = data["owner"]
        return cls(
            provider=str(data["provider"]),
            owner=(str(kind), str(ident)),
            actor_id=str(data["actor"]),
            account_id=data.get("account_id"),
            next=safe_next(data.get("next")),
        )


# -- start -------------------------------------------------------------------------------------


def _pending() -> dict[str, Any]:
    flows = session.get(SESSION_KEY)
    return dict(flows) if isinstance(flows, Mapping) else {}


def begin(
    provider: Provider,
    *,
    owner: Owner,
    actor_id: str,
    account_id: int | None = None,
    next_url: str | None = None,
    login_hint: str | None = None,
) -> str:
    """Prepare an authorization request; returns the provider URL to redirect to.

    ``state`` and the PKCE verifier (S256) are new for every request. Raises
    :class:`OAuthFlowError` (``config`` or ``unreachable``).
    """
    import requests  # where used: not at the host's start-up

    uri = redirect_uri(provider)
    client = client_for(provider)
    extra: dict[str, str] = {}
    if login_hint:
        extra["login_hint"] = login_hint
    try:
        rv = client.create_authorization_url(uri, **extra)
    except requests.RequestException as exc:  # the discovery document could not be read
        raise OAuthFlowError("unreachable", http_detail(exc), provider=provider) from None
    # The verifier, nonce and redirect URI; not the URL itself (it would only fatten the cookie).
    client.save_authorize_data(redirect_uri=uri, **{k: v for k, v in rv.items() if k != "url"})
    flows = _pending()
    now = time.time()
    live = sorted(  # oldest first (the session may not keep insertion order)
        (k for k, v in flows.items() if isinstance(v, Mapping) and v.get("exp", 0) > now),
        key=lambda k: float(flows[k]["exp"]),
    )
    keep = set(live[len(live) - MAX_PENDING + 1 :] if len(live) >= MAX_PENDING else live)
    providers = current_catalog().oauth(include_disabled=True)
    for old in [k for k in flows if k not in keep]:  # expired or too many: forget both halves
        data = flows.pop(old)
        other = providers.get(str(data.get("provider"))) if isinstance(data, Mapping) else None
        if other is not None:
            client_for(other).framework.clear_state_data(session, old)
    pending = PendingFlow(provider.key, owner, actor_id, account_id, safe_next(next_url))
    flows[rv["state"]] = pending.as_dict()
    session[SESSION_KEY] = flows
    return str(rv["url"])


# -- callback ----------------------------------------------------------------------------------


def take_pending(provider: Provider) -> PendingFlow:
    """Our half of the flow for the callback's ``state``, removed from the session (used once).

    Authlib's half (verifier, nonce) is removed by :func:`finish`; both must be present.
    """
    state = flask_request.args.get("state") or ""
    flows = _pending()
    data = flows.pop(state, None) if state else None
    session[SESSION_KEY] = flows
    if not isinstance(data, Mapping) or data.get("provider") != provider.key:
        raise OAuthFlowError("state", provider=provider)
    if float(data.get("exp", 0)) < time.time():
        raise OAuthFlowError("state", "expired", provider=provider)
    return PendingFlow.from_dict(data)


def discard(provider: Provider) -> None:
    """Forget Authlib's half of the callback's flow (after our half was refused)."""
    state = flask_request.args.get("state") or ""
    if state:
        client_for(provider).framework.clear_state_data(session, state)


def _expires_at(token: Mapping[str, Any]) -> datetime | None:
    value = token.get("expires_at")
    if value is None and token.get("expires_in") is not None:
        value = time.time() + float(token["expires_in"])
    if value is None:
        return None
    return datetime.fromtimestamp(int(value), tz=timezone.utc)


def finish(provider: Provider, pending: PendingFlow) -> OAuthGrant:
    """Exchange the callback's code for tokens and read the address; raises
    :class:`OAuthFlowError` for every way this can end without a usable grant."""
    # Authlib (and requests) are loaded by client_for (built on first use, for start-up time):
    # import their errors here rather than at module level.
    import requests
    from authlib.integrations.base_client import MismatchingStateError, OAuthError

    client = client_for(provider)
    state = flask_request.args.get("state") or ""
    state_data = client.framework.get_state_data(session, state)
    client.framework.clear_state_data(session, state)  # used once, whatever happens next
    error = flask_request.args.get("error")
    if error:
        code = (
            "access_denied" if error in ("access_denied", "consent_required") else "provider_error"
        )
        raise OAuthFlowError(code, error[:64], provider=provider)
    if not state_data:
        raise OAuthFlowError("state", provider=provider)
    params = {"code": flask_request.args.get("code"), "state": state}
    if not params["code"]:
        raise OAuthFlowError("provider_error", "no code", provider=provider)
    try:
        params = client._format_state_params(state_data, params)
        token = client.fetch_access_token(**params)
    except MismatchingStateError:
        raise OAuthFlowError("state", provider=provider) from None
    except OAuthError as exc:  # the token endpoint said no (invalid_grant, invalid_client...)
        raise OAuthFlowError(
            "provider_error", str(exc.error or "")[:64], provider=provider
        ) from None
    except requests.RequestException as exc:
        raise OAuthFlowError("unreachable", http_detail(exc), provider=provider) from None
    except ValueError as exc:  # an answer that is not a token (HTML error page, bad JSON)
        raise OAuthFlowError("provider_error", type(exc).__name__, provider=provider) from None
    if not token.get("access_token"):
        raise OAuthFlowError("provider_error", "no access token", provider=provider)
    email, issuer, subject = identity(provider, client, token, state_data.get("nonce"))
    refresh = token.get("refresh_token")
    if not refresh:
        raise OAuthFlowError("no_refresh_token", provider=provider)
    scope = token.get("scope")
    scopes = " ".join(scope) if isinstance(scope, (list, tuple)) else str(scope or "")
    return OAuthGrant(
        provider=provider,
        email=email,
        access_token=str(token["access_token"]),
        refresh_token=str(refresh),
        expires_at=_expires_at(token),
        scopes=scopes or " ".join(provider.scopes),
        subject=subject,
        issuer=issuer,
    )
