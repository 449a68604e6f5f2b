"""One type for everything about one email provider: :class:`Provider`.

A provider is where an address's mail lives and how to sign in there: the domains and MX hosts
that identify it, its SMTP and IMAP servers and login format, its OAuth 2.0 endpoints, scopes and
authorization parameters when it has them, how it vouches for an address (identity rules), its
refresh and keep-alive rules, whether it files a copy of sent mail itself, whether it can send
through Microsoft Graph, and the advice shown when a login fails. Built-in providers are one
module each under ``providers/builtin/``; hosts declare more in ``MAILCONNECT_PROVIDERS`` and
admins in the admin pages. The catalogue (:mod:`.catalog`) merges the three.

Pure data: no Flask, no database, no network.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Literal

from ..i18n import N_
from ..transport.settings import Security

LoginFormat = Literal["email", "local_part", "manual"]
#: Where a provider comes from: a built-in module, ``MAILCONNECT_PROVIDERS``, or an admin row.
Source = Literal["builtin", "config", "admin"]


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    security: Security

    def as_dict(self) -> dict[str, object]:
        return {"host": self.host, "port": self.port, "security": self.security}


@dataclass(frozen=True)
class IdentityRules:
    """How a provider vouches that the address it returns belongs to the person.

    ``verified_claim``: the claim that must be true for the address to be trusted
    (``email_verified``; Microsoft's ``xms_edov``, because anyone may type any address into a
    Microsoft profile). ``None``: trusted unless ``email_verified`` says false.
    ``subject_claims``: the claims joined (``":"``) into the stable identity an account is bound
    to; the first that is missing falls back to ``sub``.
    ``tenant_claim``: the ID-token claim that must equal a configured tenant GUID, and fills an
    issuer template's ``{tenantid}``.
    """

    verified_claim: str | None = None
    subject_claims: tuple[str, ...] = ("sub",)
    tenant_claim: str | None = None


@dataclass(frozen=True)
class Provider:
    key: str  #: stored on accounts; config key; URL segment ``/oauth/<key>/...``
    name: str  #: shown on its button ("Connect with {name}")
    #: Shown where providers are listed ("Gmail / Google Workspace"); default: ``name``.
    long_name: str = ""
    domains: tuple[str, ...] = ()
    #: MX host suffixes that mean "hosted here" (matched on whole labels).
    mx_suffixes: tuple[str, ...] = ()
    smtp: Server | None = None
    imap: Server | None = None
    login_format: LoginFormat = "email"
    #: Advice per error code, appended to the generic message (app passwords, ...).
    hints: Mapping[str, str] = field(default_factory=dict)
    help_url: str | None = None
    #: The provider files a copy of sent mail itself: no IMAP APPEND to Sent.
    keeps_sent_copy: bool = False
    #: Older keys accounts may carry for this provider (``"gmail"`` for Google).
    aliases: tuple[str, ...] = ()
    source: Source = "builtin"
    #: Offered to people (admin rows can be switched off; their accounts keep working).
    enabled: bool = True
    #: Button artwork: a partial ``mailconnect/icons/<icon>.html`` (``""``: the generic one).
    icon: str = ""
    # -- OAuth 2.0 (all empty for password-only providers) -------------------------------
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    authorize_url: str | None = None
    token_url: str | None = None
    revoke_url: str | None = None
    userinfo_url: str | None = None
    server_metadata_url: str | None = None
    #: ID-token issuer and signing keys when known without a discovery document.
    issuer: str | None = None
    jwks_uri: str | None = None
    scopes: tuple[str, ...] = ()
    #: Extra parameters on the authorization request (Google: offline access and consent).
    authorize_params: Mapping[str, str] = field(default_factory=dict)
    #: Fixed redirect URI registered at the provider; else built from MAILCONNECT_EXTERNAL_URL.
    redirect_uri: str | None = None
    #: Where a person removes the app's access when the provider cannot revoke tokens.
    access_settings_url: str | None = None
    token_endpoint_auth_method: str = "client_secret_post"
    #: A tenant (``common``, ``organizations``, a domain or a GUID) where the provider has them.
    tenant: str | None = None
    identity: IdentityRules = IdentityRules()
    #: Send the scopes again on refresh (Microsoft's v2 endpoint wants them; RFC 6749 does not).
    refresh_sends_scope: bool = False
    #: Microsoft Graph base URL when the provider can send through Graph, and the scope that
    #: lets it send (a token of its own: one resource per access token).
    graph_url: str | None = None
    graph_send_scope: str | None = None
    #: Days a refresh token may stay unused before a keep-alive refresh (``None``: never);
    #: ``MAILCONNECT_KEEPALIVE_DAYS`` overrides per key.
    keepalive_days: float | None = 60

    # -- what the rest of the package asks ------------------------------------------------

    @property
    def offers_oauth(self) -> bool:
        """Configured well enough to run the consent flow (credentials and endpoints)."""
        return bool(
            self.client_id
            and self.client_secret
            and (self.server_metadata_url or (self.authorize_url and self.token_url))
        )

    @property
    def title(self) -> str:
        return self.long_name or self.name

    def matches(self, key: str | None) -> bool:
        return bool(key) and (key == self.key or key in self.aliases)

    def login_for(self, email: str) -> str:
        if self.login_format == "local_part":
            return email.split("@", 1)[0]
        if self.login_format == "manual":
            return ""
        return email

    def hosted_at(self, mx_host: str) -> bool:
        name = mx_host.lower().rstrip(".")
        return any(name == s or name.endswith("." + s) for s in self.mx_suffixes)

    def with_changes(self, **changes: Any) -> Provider:
        return replace(self, **changes)

    def as_dict(self) -> dict[str, object]:
        """What the connect page's script needs (never a secret)."""
        return {
            "key": self.key,
            "name": self.title,
            "smtp": self.smtp.as_dict() if self.smtp else None,
            "imap": self.imap.as_dict() if self.imap else None,
            "login_format": self.login_format,
            "help_url": self.help_url,
            "oauth": self.offers_oauth,
        }


#: Advice with values in it: made in English like every code's wording (the transport appends
#: it, in worker threads), translated where a page shows it (``views.common.localize`` finds
#: the values again by this pattern).
APP_PASSWORD = N_(
    "%(name)s needs an app password here, not your normal password: create one at %(url)s "
    "and paste it instead."
)
HINT_TEMPLATES = (APP_PASSWORD,)


def app_password_hint(name: str, url: str) -> Mapping[str, str]:
    """The ``auth_failed`` advice of providers that refuse normal passwords from mail apps."""
    return MappingProxyType({"auth_failed": APP_PASSWORD % {"name": name, "url": url}})


#: The provider of accounts whose servers were typed by hand.
OTHER = Provider(key="other", name="Other (IMAP / SMTP)")
