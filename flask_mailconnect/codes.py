"""Stable error codes and the generic words shown to people for each.

Codes are part of the public API (hosts branch on them); messages say what to do and never
repeat a server's banner. Provider-specific advice (app passwords, SMTP AUTH disabled) is not
written here: it comes from the provider (``Provider.hints``) and is passed in as ``hints``.
A leaf module: it imports nothing of the package (the transport uses it, and the transport
imports no Flask, so not even :mod:`flask_mailconnect.i18n`).

The wording is English wherever it is produced (connection tests run in worker threads, health
checks in jobs, and ``last_error_message`` is stored); the pages translate it by code where
they show it (``views.common.localize``), in the language of the person reading.
"""

from __future__ import annotations

from collections.abc import Mapping


def N_(string: str) -> str:  # the gettext convention: pybabel extracts N_("...")
    """Marks a message for the catalogue (``make translations``); translated where it is shown."""
    return string


OK = "ok"
AUTH_FAILED = "auth_failed"
TLS_REQUIRED = "tls_required"
TLS_UNAVAILABLE = "tls_unavailable"
WRONG_SECURITY_FOR_PORT = "wrong_security_for_port"
CERTIFICATE_INVALID = "certificate_invalid"
TLS_FAILED = "tls_failed"
TIMEOUT = "timeout"
REFUSED = "refused"
HOST_NOT_FOUND = "host_not_found"
BLOCKED_ADDRESS = "blocked_address"
PORT_NOT_ALLOWED = "port_not_allowed"
AUTH_UNSUPPORTED = "auth_unsupported"
SMTP_AUTH_DISABLED = "smtp_auth_disabled"
MAILBOX_UNAVAILABLE = "mailbox_unavailable"
CONNECTION_LOST = "connection_lost"
PROTOCOL_ERROR = "protocol_error"
NETWORK_ERROR = "network_error"
TOKEN_REJECTED = "token_rejected"
GRAPH_SEND_DENIED = "graph_send_denied"
GRAPH_THROTTLED = "graph_throttled"
GRAPH_REJECTED = "graph_rejected"
INSECURE_URL = "insecure_url"
REDIRECT_REFUSED = "redirect_refused"
RESPONSE_TOO_LARGE = "response_too_large"
SMTPUTF8_UNSUPPORTED = "smtputf8_unsupported"
MESSAGE_TOO_LARGE = "message_too_large"
#: A stored password or token cannot be decrypted: the encryption key is missing or changed.
KEY_UNAVAILABLE = "key_unavailable"
#: The provider rotated the refresh token and the database refused every attempt to store the
#: new one: the account must be signed in again (not retryable; the old token is spent).
TOKEN_SAVE_FAILED = "token_save_failed"

#: Codes where trying again later, unchanged, may succeed.
RETRYABLE_CODES = frozenset(
    {TIMEOUT, REFUSED, CONNECTION_LOST, NETWORK_ERROR, GRAPH_THROTTLED, KEY_UNAVAILABLE}
)

MESSAGES: dict[str, str] = {
    OK: N_("Connected and signed in."),
    KEY_UNAVAILABLE: N_(
        "The key for stored credentials is missing or changed: an administrator must restore "
        "it (MAILCONNECT_ENCRYPTION_KEYS). Nothing was sent or changed."
    ),
    TOKEN_SAVE_FAILED: N_(
        "The sign-in for this account was renewed, but the database could not save it, so it "
        "is lost. Sign in again to reconnect the account; an administrator should check the "
        "database (its log shows why the save failed)."
    ),
    AUTH_FAILED: N_("The server rejected the login or password. Check both and try again."),
    TLS_REQUIRED: N_(
        "The server only accepts a login over an encrypted connection. "
        "Choose SSL/TLS or STARTTLS for this server."
    ),
    TLS_UNAVAILABLE: N_(
        "The server does not offer STARTTLS on this port. Check the port, or choose SSL/TLS "
        "if the server expects an encrypted connection from the start."
    ),
    WRONG_SECURITY_FOR_PORT: N_(
        "The security setting does not match this port. Port 465 (SMTP) and 993 (IMAP) "
        "need SSL/TLS; ports 587, 25 and 143 need STARTTLS."
    ),
    CERTIFICATE_INVALID: N_(
        "The server's certificate could not be verified (expired, self-signed or issued for "
        "another name). Check the host name; use the exact name your provider documents."
    ),
    TLS_FAILED: N_("The encrypted connection could not be set up. Check the security setting."),
    TIMEOUT: N_(
        "The server did not answer in time. Check the host and port, or try again later; "
        "a firewall may be dropping the connection."
    ),
    REFUSED: N_("The server refused the connection on this port. Check the host and port."),
    HOST_NOT_FOUND: N_("No server with this name exists. Check the host name for typing errors."),
    BLOCKED_ADDRESS: N_(
        "This host points to a private or local network address, which is not allowed. "
        "Use your provider's public server name."
    ),
    PORT_NOT_ALLOWED: N_("This port is not allowed here. Use one of the ports listed."),
    AUTH_UNSUPPORTED: N_(
        "The server offers no login method this app can use with a password. "
        "Check the security setting; some servers offer login only after STARTTLS."
    ),
    SMTP_AUTH_DISABLED: N_(
        "Sending through SMTP (SMTP AUTH) is turned off for this mailbox. An administrator "
        "must enable Authenticated SMTP for it, or connect with Microsoft and allow sending "
        "through Microsoft Graph."
    ),
    MAILBOX_UNAVAILABLE: N_("Signed in, but the INBOX folder could not be opened."),
    CONNECTION_LOST: N_("The server closed the connection unexpectedly. Try again in a moment."),
    PROTOCOL_ERROR: N_(
        "The server answered in a way this app does not understand. Check the port."
    ),
    NETWORK_ERROR: N_("The network failed while talking to the server. Try again in a moment."),
    TOKEN_REJECTED: N_(
        "The sign-in for this account has expired or was revoked. Sign in again to reconnect it."
    ),
    GRAPH_SEND_DENIED: N_(
        "Permission to send mail (Mail.Send) was not granted for this account. Sign in again "
        "and allow sending."
    ),
    GRAPH_THROTTLED: N_("Microsoft is limiting requests right now. The message will be retried."),
    GRAPH_REJECTED: N_("Microsoft Graph refused the message. Check the recipients and content."),
    INSECURE_URL: N_(
        "Only https:// addresses are allowed here: secrets and tokens are sent to them."
    ),
    REDIRECT_REFUSED: N_(
        "The server redirected the request to an address this app does not follow "
        "(plain http://, a sign-in request sent on, or too many hops). Use the final https:// URL."
    ),
    RESPONSE_TOO_LARGE: N_("The server's answer was larger than this app accepts. Check the URL."),
    SMTPUTF8_UNSUPPORTED: (
        "The server does not accept international addresses (SMTPUTF8), which this message "
        "needs. Nothing was sent."
    ),
    MESSAGE_TOO_LARGE: N_(
        "The message is larger than the server accepts. Send smaller attachments or a link."
    ),
}


def message_for(code: str, hints: Mapping[str, str] | None = None) -> str:
    """The sentence shown for ``code``, followed by the provider's advice for it when the
    provider has some (``hints``: :attr:`Provider.hints <flask_mailconnect.providers.Provider>`,
    carried on :class:`~flask_mailconnect.ServerSettings`)."""
    hint = (hints or {}).get(code, "")
    base = MESSAGES.get(code, MESSAGES[PROTOCOL_ERROR])
    return f"{base} {hint}" if hint else base
