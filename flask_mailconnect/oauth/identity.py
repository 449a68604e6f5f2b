"""Who the provider says signed in: the validated ID token (or the userinfo endpoint), checked
against the provider's :class:`~flask_mailconnect.providers.IdentityRules`.

The address is trusted only when the provider vouches for it (its ``verified_claim``), and the
account is bound to the provider's stable id of the person (its ``subject_claims``), so that an
address typed into someone else's profile never takes over an account (nOAuth).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..exceptions import OAuthFlowError
from ..providers import Provider
from .client import http_detail

if TYPE_CHECKING:
    from authlib.integrations.flask_client import FlaskOAuth2App

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _claims_options(provider: Provider, issuer: str) -> dict[str, Any]:
    """What an ID token must say: our ``aud``, the known issuer (a multi-tenant issuer template
    filled with the token's own tenant claim), and a configured tenant GUID's tenant claim."""
    options: dict[str, Any] = {"aud": {"essential": True, "values": [provider.client_id]}}
    if "{tenantid}" in issuer:
        template_claim = provider.identity.tenant_claim or "tid"

        def matches(claims: Mapping[str, Any], value: Any) -> bool:
            tid = str(claims.get(template_claim) or "")
            return bool(tid) and value == issuer.replace("{tenantid}", tid)

        options["iss"] = {"essential": True, "validate": matches}
    else:
        options["iss"] = {"essential": True, "values": [issuer]}
    tenant_claim = provider.identity.tenant_claim
    if tenant_claim and provider.tenant and _GUID.match(provider.tenant):
        options[tenant_claim] = {"essential": True, "values": [provider.tenant.lower()]}
    return options


def _id_token_claims(
    provider: Provider, client: FlaskOAuth2App, token: Any, nonce: str | None
) -> Mapping[str, Any]:
    """The validated ID token's claims; ``{}`` when there is none or no issuer to check it
    against (then the userinfo endpoint, over TLS with our access token, says who it is)."""
    metadata = client.load_server_metadata()
    issuer = metadata.get("issuer")
    if "id_token" not in token or not issuer:
        return {}
    if not (metadata.get("jwks_uri") or metadata.get("jwks")):
        return {}
    import requests  # loaded with Authlib's client already; not at the host's start-up

    try:
        claims = client.parse_id_token(
            token, nonce=nonce, claims_options=_claims_options(provider, str(issuer))
        )
    except requests.RequestException as exc:
        raise OAuthFlowError("unreachable", http_detail(exc), provider=provider) from None
    except Exception as exc:  # joserfc / authlib claim errors: a forged or stale token
        raise OAuthFlowError("id_token", type(exc).__name__, provider=provider) from None
    tenant_claim = provider.identity.tenant_claim
    if (
        tenant_claim
        and provider.tenant
        and _GUID.match(provider.tenant)
        and str(claims.get(tenant_claim) or "").lower() != provider.tenant.lower()
    ):
        raise OAuthFlowError("id_token", tenant_claim, provider=provider)
    return claims or {}


def identity(
    provider: Provider, client: FlaskOAuth2App, token: Any, nonce: str | None
) -> tuple[str, str | None, str | None]:
    """(address, issuer, subject) from the validated ID token, else the userinfo endpoint.

    Raises ``no_email``, ``unverified_email`` (the provider does not vouch for the address:
    Google ``email_verified`` not true, Microsoft ``xms_edov`` not true) or ``id_token``.
    """
    # The client is Authlib's, so Authlib (and requests) are loaded already (built on first
    # use, see client.py).
    import requests
    from authlib.integrations.base_client import OAuthError

    metadata = client.load_server_metadata()
    claims: dict[str, Any] = dict(_id_token_claims(provider, client, token, nonce))
    if not isinstance(claims.get("email"), str) and metadata.get("userinfo_endpoint"):
        try:
            info = client.userinfo(token=token)
        except requests.RequestException as exc:
            raise OAuthFlowError("unreachable", http_detail(exc), provider=provider) from None
        except OAuthError as exc:
            raise OAuthFlowError("provider_error", exc.error or "", provider=provider) from None
        if claims.get("sub") and info.get("sub") != claims["sub"]:
            raise OAuthFlowError("id_token", "userinfo sub", provider=provider)
        claims = {**dict(info), **claims}
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email.strip():
        raise OAuthFlowError("no_email", provider=provider)
    email = email.strip()
    if not _verified(provider, claims):
        raise OAuthFlowError("unverified_email", email, provider=provider)
    return email, _str(claims.get("iss")), _subject(provider, claims)


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _verified(provider: Provider, claims: Mapping[str, Any]) -> bool:
    """Whether the provider vouches that the address belongs to this person.

    Microsoft lets anyone put any address in a profile's ``email`` (nOAuth): only the optional
    claim ``xms_edov`` (domain owner verified) makes it trustworthy; ``preferred_username`` is
    never used. Google: ``email_verified`` must be true. Others: refused when they say false.
    """
    claim = provider.identity.verified_claim
    if claim:
        return _truthy(claims.get(claim))
    return claims.get("email_verified") not in (False, "false")


def _str(value: Any) -> str | None:
    return str(value)[:255] if isinstance(value, (str, int)) and str(value) else None


def _subject(provider: Provider, claims: Mapping[str, Any]) -> str | None:
    """Microsoft: ``tid:oid`` (oid is stable across apps within a tenant); else ``sub``."""
    names = provider.identity.subject_claims
    values = [_str(claims.get(name)) for name in names]
    if len(names) > 1 and all(values):
        return ":".join(v for v in values if v)[:255]
    return _str(claims.get("sub"))
