"""Flask-WTF forms of the admin pages: providers, hand-over, the list filters.

The provider's OAuth client secret is a :class:`PasswordField` that is never rendered back: the
page says whether one is set, and a value typed in replaces it (empty keeps the stored one).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

from flask import current_app
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    PasswordField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, ValidationError

from .. import codes
from ..forms import MULTI_LINE, SINGLE_LINE, host_name
from ..i18n import gettext, lazy_gettext
from ..transport.http import HTTPGuardError, check_url
from ..transport.settings import SECURITY_CHOICES, SECURITY_LABELS
from ..validation import control_chars, parse_int

try:  # WTForms 3.3 deprecates (value, label) tuples in favour of SelectChoice
    from wtforms import SelectChoice as _Choice
except ImportError:  # pragma: no cover - WTForms < 3.3

    def _Choice(value: str, label: str) -> Any:  # noqa: N802
        return (value, label)


# Protocol names stay as they are; "None" (no encryption) is a word.
_SECURITY_LABELS: dict[str, Any] = {**SECURITY_LABELS, "none": lazy_gettext("None")}
SECURITY = [_Choice(key, _SECURITY_LABELS[key]) for key in SECURITY_CHOICES]
SERVICE_TYPES = [
    _Choice("imap_smtp", "IMAP + SMTP"),
    _Choice("graph", lazy_gettext("IMAP + Microsoft Graph for sending")),
]
LOGIN_FORMATS = [
    _Choice("email", lazy_gettext("Full email address")),
    _Choice("local_part", lazy_gettext("Mailbox name (before @)")),
    _Choice("manual", lazy_gettext("Entered by hand")),
]
AUTH_METHODS = [_Choice("password", lazy_gettext("Password")), _Choice("oauth2", "OAuth 2.0")]
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def parse_domains(text: str) -> list[str]:
    """Domains typed one per line or separated by commas/spaces, lower-cased, de-duplicated."""
    found = [d.strip().lower().rstrip(".").removeprefix("@") for d in re.split(r"[\s,;]+", text)]
    return list(dict.fromkeys(d for d in found if d))


def _port(form: Any, field: Any) -> None:
    value = (field.data or "").strip()
    if value and parse_int(value, 1, 65535) is None:
        raise ValidationError(gettext("Enter a port number between 1 and 65535."))


def _security(form: Any, field: Any) -> None:
    if field.data not in SECURITY_CHOICES:
        raise ValidationError(
            gettext(
                "Unknown security %(value)r: choose SSL/TLS, STARTTLS or None.", value=field.data
            )
        )


def _url(form: Any, field: Any) -> None:
    """A full ``https://`` URL. The client secret, codes and tokens travel to these addresses,
    so plain ``http://`` is refused, except with ``MAILCONNECT_ALLOW_PRIVATE_HOSTS`` (a local
    test provider)."""
    if not field.data or control_chars(field.data):
        return  # SINGLE_LINE says what is wrong; no lookup of such a name
    parts = urlsplit(field.data)
    if not _URL.match(field.data) or not parts.hostname or parts.username or parts.password:
        raise ValidationError(gettext("Enter a full URL starting with https://"))
    allow_private = bool(current_app.config.get("MAILCONNECT_ALLOW_PRIVATE_HOSTS"))
    if parts.scheme.lower() != "https" and not allow_private:
        raise ValidationError(
            gettext(
                "Use an https:// address: the client secret and tokens are sent to it. (http:// "
                "is accepted only with MAILCONNECT_ALLOW_PRIVATE_HOSTS, for local testing.)"
            )
        )
    _public_url(field.data, allow_private)


def _public_url(url: str, allow_private: bool) -> None:
    """The network guard's verdict now, at save time (it judges again at every request).

    A name that does not resolve right now is accepted: DNS may be down for a moment, and the
    guard refuses it later anyway if it then points somewhere private.
    """
    timeout = float(current_app.config.get("MAILCONNECT_CONNECT_TIMEOUT") or 10)
    try:
        check_url(url, allow_private_hosts=allow_private, timeout=min(timeout, 5.0))
    except HTTPGuardError as exc:
        if exc.code == codes.BLOCKED_ADDRESS:
            host = urlsplit(url).hostname or ""
            if exc.address and not _is_ip(host):
                message = gettext(
                    "This address points to a private or internal network (%(host)s resolves "
                    "to %(address)s); use the provider's public URL.",
                    host=host,
                    address=exc.address,
                )
            else:
                message = gettext(
                    "This address points to a private or internal network (%(host)s); use the "
                    "provider's public URL.",
                    host=host,
                )
            raise ValidationError(message) from None
        if exc.code == codes.PORT_NOT_ALLOWED:
            raise ValidationError(
                gettext(
                    "Use the standard https port (443): other ports are accepted only with "
                    "MAILCONNECT_ALLOW_PRIVATE_HOSTS."
                )
            ) from None
        if exc.refused:
            raise ValidationError(exc.message) from None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class ProviderForm(FlaskForm):
    name = StringField(
        lazy_gettext("Name"), [DataRequired(), Length(max=200), SINGLE_LINE], filters=[_strip]
    )
    enabled = BooleanField(lazy_gettext("Offered to users"), default=True)
    service_type = SelectField(
        lazy_gettext("Service type"), choices=SERVICE_TYPES, default="imap_smtp"
    )
    sends = BooleanField(lazy_gettext("Send mail"), default=True)
    receives = BooleanField(lazy_gettext("Receive mail"), default=True)
    smtp_host = StringField(
        lazy_gettext("SMTP server"), [Length(max=253), SINGLE_LINE, host_name], filters=[_strip]
    )
    smtp_port = StringField(
        lazy_gettext("Port"), [SINGLE_LINE, _port], filters=[_strip], default="587"
    )
    smtp_security = SelectField(
        lazy_gettext("Security"), choices=SECURITY, default="starttls", validate_choice=False,
        validators=[_security],
    )  # fmt: skip
    imap_host = StringField(
        lazy_gettext("IMAP server"), [Length(max=253), SINGLE_LINE, host_name], filters=[_strip]
    )
    imap_port = StringField(
        lazy_gettext("Port"), [SINGLE_LINE, _port], filters=[_strip], default="993"
    )
    imap_security = SelectField(
        lazy_gettext("Security"), choices=SECURITY, default="ssl", validate_choice=False,
        validators=[_security],
    )  # fmt: skip
    login_format = SelectField(lazy_gettext("Login"), choices=LOGIN_FORMATS, default="email")
    auth_method = SelectField(
        lazy_gettext("Authentication"), choices=AUTH_METHODS, default="password"
    )
    client_id = StringField(
        lazy_gettext("Client ID"), [Length(max=255), SINGLE_LINE], filters=[_strip]
    )
    client_secret = PasswordField(lazy_gettext("Client secret"), [Length(max=2000), SINGLE_LINE])
    server_metadata_url = StringField(
        lazy_gettext("Metadata URL"), [Length(max=2000), SINGLE_LINE, _url], filters=[_strip],
        description=lazy_gettext(
            "OpenID Connect discovery document; or fill in the endpoints below."),
    )  # fmt: skip
    authorize_url = StringField(
        lazy_gettext("Authorization URL"), [Length(max=2000), SINGLE_LINE, _url], filters=[_strip]
    )
    token_url = StringField(
        lazy_gettext("Token URL"), [Length(max=2000), SINGLE_LINE, _url], filters=[_strip]
    )
    revoke_url = StringField(
        lazy_gettext("Revocation URL"), [Length(max=2000), SINGLE_LINE, _url], filters=[_strip]
    )
    userinfo_url = StringField(
        lazy_gettext("Userinfo URL"), [Length(max=2000), SINGLE_LINE, _url], filters=[_strip],
        description=lazy_gettext(
            "Where the sign-in learns the address (OpenID Connect userinfo endpoint). "
            "Needed unless a metadata URL is given."
        ),
    )  # fmt: skip
    scopes = StringField(
        lazy_gettext("Extra scopes"), [Length(max=2000), SINGLE_LINE], filters=[_strip],
        description=lazy_gettext("Space-separated, added to openid and email."),
    )  # fmt: skip
    domains = TextAreaField(
        lazy_gettext("Email domains"), [Length(max=20_000), MULTI_LINE],
        description=lazy_gettext("One per line. Addresses at these domains pick this provider."),
    )  # fmt: skip
    submit = SubmitField(lazy_gettext("Save provider"))

    def __init__(self, *args: Any, has_secret: bool = False, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.has_secret = has_secret

    def validate(self, extra_validators: Any = None) -> bool:
        ok = super().validate(extra_validators)
        if self.sends.data and self.service_type.data == "imap_smtp" and not self.smtp_host.data:
            self.smtp_host.errors = [*self.smtp_host.errors, gettext("Enter the SMTP server.")]
            ok = False
        if self.sends.data and not self.smtp_port.data and self.service_type.data == "imap_smtp":
            self.smtp_port.errors = [*self.smtp_port.errors, gettext("Enter the SMTP port.")]
            ok = False
        if self.receives.data and not self.imap_host.data:
            self.imap_host.errors = [*self.imap_host.errors, gettext("Enter the IMAP server.")]
            ok = False
        if self.receives.data and not self.imap_port.data:
            self.imap_port.errors = [*self.imap_port.errors, gettext("Enter the IMAP port.")]
            ok = False
        if not self.sends.data and not self.receives.data:
            self.sends.errors = [gettext("A provider sends, receives or both.")]
            ok = False
        if self.auth_method.data == "oauth2":
            if not self.client_id.data:
                self.client_id.errors = [*self.client_id.errors, gettext("Enter the client ID.")]
                ok = False
            if not self.client_secret.data and not self.has_secret:
                self.client_secret.errors = [gettext("Enter the client secret.")]
                ok = False
            if not self.server_metadata_url.data and not (
                self.authorize_url.data and self.token_url.data
            ):
                self.server_metadata_url.errors = [
                    *self.server_metadata_url.errors,
                    gettext("Enter a metadata URL, or the authorization and token URLs."),
                ]
                ok = False
            elif not self.server_metadata_url.data and not self.userinfo_url.data:
                # Without a discovery document the flow has no other way to learn (and have
                # the provider vouch for) the address being connected.
                self.userinfo_url.errors = [
                    *self.userinfo_url.errors,
                    gettext(
                        "Enter the userinfo URL (or a metadata URL): without it the sign-in "
                        "cannot learn the email address."
                    ),
                ]
                ok = False
        for domain in parse_domains(self.domains.data or ""):
            if not _DOMAIN.match(domain):
                self.domains.errors = [
                    *self.domains.errors,
                    gettext("%(domain)r is not a domain name.", domain=domain),
                ]
                ok = False
        return ok


class HandoverForm(FlaskForm):
    """The admin names the provider and the address; the user completes the consent."""

    provider = SelectField(lazy_gettext("Provider"), choices=[])
    email = EmailField(
        lazy_gettext("Email address"),
        [DataRequired(), Length(max=320), SINGLE_LINE],
        filters=[_strip],
    )
    submit = SubmitField(lazy_gettext("Create and hand over"))


class ActionForm(FlaskForm):
    """A button with a CSRF token (deactivate, reactivate, enable, disable, delete)."""

    submit = SubmitField(lazy_gettext("Confirm"))
