"""Microsoft: Microsoft 365 (work and school) and personal accounts through one sign-in.

IMAP and SMTP with OAuth need the Outlook resource scopes; where a tenant turned SMTP AUTH off,
mail is sent through Microsoft Graph (``Mail.Send``, a token of its own: Microsoft issues one
access token per resource). Anyone may type any address into a Microsoft profile, so the address
is trusted only with the ``xms_edov`` claim (domain owner verified), and accounts are bound to
``tid:oid``. Refresh tokens lapse after 90 days unused; there is no revocation endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ...i18n import N_
from ..model import IdentityRules, Provider, Server

LOGIN = "https://login.microsoftonline.com"

PROVIDER = Provider(
    key="microsoft",
    aliases=("microsoft365",),
    name="Microsoft",
    long_name="Microsoft 365",
    icon="microsoft",
    mx_suffixes=("protection.outlook.com", "outlook.com"),
    smtp=Server("smtp.office365.com", 587, "starttls"),
    imap=Server("outlook.office365.com", 993, "ssl"),
    hints=MappingProxyType(
        {
            "auth_failed": N_(
                "If your organisation uses multi-factor sign-in, passwords do not work "
                "for mail clients: connect with Microsoft instead."
            ),
        }
    ),
    help_url="https://learn.microsoft.com/exchange/clients-and-mobile-in-exchange-online/authenticated-client-smtp-submission",
    keeps_sent_copy=True,
    userinfo_url="https://graph.microsoft.com/oidc/userinfo",
    scopes=(
        "openid",
        "email",
        "offline_access",
        "https://outlook.office.com/IMAP.AccessAsUser.All",
        "https://outlook.office.com/SMTP.Send",
    ),
    authorize_params={"prompt": "select_account"},
    access_settings_url="https://myapps.microsoft.com",
    graph_url="https://graph.microsoft.com/v1.0",
    graph_send_scope="https://graph.microsoft.com/Mail.Send",
    identity=IdentityRules(
        verified_claim="xms_edov", subject_claims=("tid", "oid"), tenant_claim="tid"
    ),
    refresh_sends_scope=True,
    keepalive_days=60,
)


def configure(provider: Provider, entry: Mapping[str, Any]) -> Provider:
    """The tenant (``common`` by default) is part of every endpoint URL."""
    tenant = str(entry.get("tenant") or provider.tenant or "common")
    if provider.authorize_url and provider.tenant and not entry.get("tenant"):
        return provider  # configured already (an alias entry naming only servers)
    base = f"{LOGIN}/{tenant}/oauth2/v2.0"
    values: dict[str, Any] = {"tenant": tenant}
    for name, url in (("authorize_url", f"{base}/authorize"), ("token_url", f"{base}/token")):
        values[name] = entry.get(name) or url
    if not entry.get("authorize_url"):
        # Multi-tenant issuers carry the tenant id, checked against the token's tid claim.
        values["issuer"] = entry.get("issuer") or f"{LOGIN}/{{tenantid}}/v2.0"
        values["jwks_uri"] = entry.get("jwks_uri") or f"{LOGIN}/{tenant}/discovery/v2.0/keys"
    else:
        values["issuer"] = entry.get("issuer") or None
        values["jwks_uri"] = entry.get("jwks_uri") or None
    return provider.with_changes(**values)
