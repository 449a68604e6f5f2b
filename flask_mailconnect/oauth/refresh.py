"""A fresh access token under the account's refresh lock (and the Graph token beside it).

Many WSGI workers and job processes may need a fresh access token for one account at the same
moment, and the provider rotates refresh tokens: spending one refresh token twice gets the second
caller ``invalid_grant`` (Microsoft and Authlib-based servers may then revoke the whole grant).
So :func:`fresh_access_token` refreshes under a lock of the account (:func:`.locks.claim`) and
re-reads the tokens after taking it: whoever waited finds the token the first holder stored and
uses it. Waiting holds no database connection.

The lock and the reads use connections of their own from the same engine (never the host's
``db.session``), because the rotated refresh token must be committed before the lock is released,
whatever the host later does with its own transaction. So this module commits only its own rows
(the account's token columns, its status on ``invalid_grant``, one audit row) and never flushes
or commits the host's pending work.

Per backend (see :mod:`.locks`): PostgreSQL, a session-level advisory lock; MariaDB / MySQL,
``GET_LOCK``; SQLite, the database write lock (several workers sharing a SQLite file: set
``connect_args={"timeout": 30}`` for the saves' busy wait; a single-connection ``StaticPool`` is
serialised by a per-app lock instead, and the refresh's commit also commits whatever the host
left pending on that one connection: only tests and demos run like that). Each look is a
statement of its own (autocommit) and each save a short READ COMMITTED transaction, so both see
what another worker committed whatever the host's isolation level.

In one process, the callers for one account share one look and one refresh: the others take the
row it stored, or raise the typed error its refresh raised (:class:`TokenRefreshUnavailable`,
:class:`TokenError`) without asking the provider again.

Do not call :func:`fresh_access_token` while your own session holds uncommitted writes to the
same account row: on PostgreSQL and MariaDB the save would wait for your transaction (bounded
by the lock timeout, then :class:`TokenRefreshUnavailable`).
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from ..codes import TOKEN_SAVE_FAILED, message_for
from ..columns import Sealed, seal
from ..exceptions import (
    GraphNotGranted,
    NeedsReconnect,
    TokenError,
    TokenRefreshUnavailable,
    TokenSaveFailed,
)
from ..i18n import N_
from ..models import AccountStatus, MailAccount, utcnow
from ..providers import Provider
from ..runtime import Runtime
from ..transport.http import HTTPGuardError
from .dblock import describe
from .endpoints import endpoints, guard_refused, oauth_session, provider_for
from .locks import (
    GRAPH,
    MAIL,
    MIRRORED,
    Holder,
    Row,
    SaveFailed,
    claim,
    engine_of,
    mirror,
    read_row,
)

if TYPE_CHECKING:
    from authlib.common.errors import AuthlibBaseError

log = logging.getLogger("flask_mailconnect.oauth")

#: ``last_error_code`` of an account whose grant the provider refused (``invalid_grant``).
TOKEN_REVOKED = "token_revoked"
#: ``last_error_code`` of an OAuth account that has no refresh token left.
NO_REFRESH_TOKEN = "no_refresh_token"


def graph_scope(provider: Provider) -> str:
    """What a Graph access token is asked for (refresh grant with the account's one refresh
    token): one resource per token, never the mail servers' and Graph's in one."""
    return f"{provider.graph_send_scope} offline_access"


def fresh_graph_token(
    state: Runtime,
    account: MailAccount,
    *,
    min_validity: timedelta = timedelta(minutes=5),
    force: bool = False,
) -> str:
    """A Microsoft Graph access token (``Mail.Send``) for ``account``, valid for at least
    ``min_validity``: what :func:`~flask_mailconnect.transport.graph.send_via_graph` and
    ``check_graph`` need. Never the SMTP/IMAP token (Graph refuses its audience).

    Obtained with the account's one refresh token (refresh grant, scope :func:`graph_scope`),
    under the same row lock as :func:`fresh_access_token`, and stored apart
    (``graph_access_token``). Raises :class:`GraphNotGranted` when the provider will not give
    ``Mail.Send``, else what :func:`fresh_access_token` raises.
    """
    return _fresh(state, account, GRAPH, min_validity=min_validity, force=force)


def fresh_access_token(
    state: Runtime,
    account: MailAccount,
    *,
    min_validity: timedelta = timedelta(minutes=5),
    force: bool = False,
) -> str:
    """An access token for ``account`` valid for at least ``min_validity``.

    A stored token that is still valid long enough is returned without a lock or any network
    call. Otherwise the row is locked, re-read, and only if no other worker has refreshed it
    meanwhile is the token endpoint called; the new tokens (the new refresh token, or the old
    one when the provider sends none), ``token_expires_at`` and ``token_refreshed_at`` are
    committed before the lock is released, then ``token_refreshed`` fires.

    ``force=True`` refreshes even a token that looks valid (a server just rejected it), unless
    another worker refreshed it after this call started: the token found under the lock is not
    the one this call saw when it started (compared by value, so no clock or DATETIME precision
    is involved). Then that worker's token is returned. So many workers forcing at once cause
    one refresh.

    Raises :class:`NeedsReconnect` (the account is now ``needs_reconnect``;
    ``account_needs_reconnect`` fired if it was not already), :class:`TokenRefreshUnavailable`
    (retry later; nothing changed) or :class:`TokenError`.
    """
    return _fresh(state, account, MAIL, min_validity=min_validity, force=force)


def _fresh(
    state: Runtime, account: MailAccount, kind: str, *, min_validity: timedelta, force: bool
) -> str:
    if account.auth_method != "oauth2":
        raise TokenError(f"Account {account.id} does not sign in with OAuth 2.0.")
    seen: str | None = None
    if force:  # a forced call reads first: it must know which token a server just refused
        with engine_of(state).connect() as peek:
            seen = read_row(peek, account.id).token(kind)
    # Otherwise the first look happens in claim(): a caller arriving while another in this
    # process looks or refreshes takes what that one found or stored, without a connection.

    def usable(row: Row) -> str | None:
        """A token good enough for this call (for ``force``: one another caller stored after
        this call started)."""
        current = row.token(kind)
        if row.valid_for(min_validity, kind) and (not force or current != seen):
            return current
        return None

    def settled(row: Row) -> bool:
        """Nothing for this caller to do: a usable token is there, or the account already
        needs reconnecting."""
        if usable(row):
            return True
        return not row.refresh_token and row.status == AccountStatus.NEEDS_RECONNECT

    # The provider is looked up only by the caller that needs it (the catalogue may query the
    # host's session, which would then hold a connection: waiters must hold none).
    newly_revoked: str | None = None
    refreshed = False
    not_granted: GraphNotGranted | None = None
    error_code = TOKEN_REVOKED
    with claim(state, account.id, settled, kind) as (holder, row):
        if holder is None:
            token = usable(row) or ""  # valid, or another caller refreshed it
            if not token:
                error_code = row.last_error_code or TOKEN_REVOKED  # already marked: no change
        elif not row.refresh_token:
            error_code = NO_REFRESH_TOKEN
            provider = provider_for(account)
            newly_revoked = _grant_refused(state, holder, account, provider, error_code)
            token = ""
        else:
            provider = provider_for(account)
            try:
                token = _refresh(state, holder, account, provider, kind)
                refreshed = True
            except GraphNotGranted as exc:  # the rotated refresh token is saved already
                not_granted, token = exc, ""
            except NeedsReconnect as exc:  # invalid_grant, or the rotated token not saved
                lost = isinstance(exc, TokenSaveFailed)
                error_code = TOKEN_SAVE_FAILED if lost else TOKEN_REVOKED
                newly_revoked = _grant_refused(state, holder, account, provider, error_code)
                token = ""
    # Committed, lock released. Mirror the new values on the caller's instance (without
    # marking it dirty): the holder read them already, and a waiter got the row the holder
    # handed over (no connection on the way out for either).
    if refreshed or not token:
        stored = holder.stored if holder is not None else row
        sync_instance(account, mirror(state, account.id, stored))
    if not_granted is not None:
        raise not_granted
    if refreshed:
        log.info("Refreshed the access token of account %s", account.id)
        state.events.token_refreshed(account)
        return token
    if token:
        return token
    if newly_revoked:
        log.warning("Account %s needs reconnecting: %s", account.id, newly_revoked)
        state.events.needs_reconnect(account, newly_revoked)
    if error_code == TOKEN_SAVE_FAILED:
        raise TokenSaveFailed(message_for(TOKEN_SAVE_FAILED), error=error_code)
    raise NeedsReconnect(_remedy(provider_for(account), error_code), error=error_code)


def _resource(scope: str) -> str | None:
    """``https://outlook.office.com/SMTP.Send`` -> ``https://outlook.office.com``; None for
    ``openid``, ``email``, ``offline_access`` and other plain scopes."""
    if "://" not in scope:
        return None
    scheme, rest = scope.split("://", 1)
    return f"{scheme}://{rest.split('/', 1)[0]}"


def mail_refresh_scope(provider: Provider, granted: str = "") -> str:
    """The scope of a Microsoft-style refresh for the SMTP/IMAP token: the scopes of one
    resource (the first one that is not Graph, as granted or else as configured) plus
    ``offline_access`` (without it no new refresh token comes back). Asking for two resources
    at once is refused (AADSTS28000)."""
    base = granted.split() or list(provider.scopes)
    graph = _resource(provider.graph_send_scope or "")
    resources = [r for r in map(_resource, base) if r and r != graph]
    if not resources and granted:
        base = list(provider.scopes)
        resources = [r for r in map(_resource, base) if r and r != graph]
    if not resources:  # no resource-qualified scopes: a plain OAuth server
        kept = [s for s in base if _resource(s) is None]
    else:
        kept = [s for s in base if _resource(s) == resources[0]]
    return " ".join(dict.fromkeys([*kept, "offline_access"]))


def _granted(result: Mapping[str, Any], wanted: str) -> bool:
    """Whether ``wanted`` is among the scopes of a token response (its ``scope``, else the
    access token's ``scp`` claim when it is a JWT; unverified: it only tells what to try)."""
    scope = result.get("scope")
    if isinstance(scope, (list, tuple)):
        scope = " ".join(str(s) for s in scope)
    names = str(scope or "").split()
    if not names:
        names = _jwt_scp(str(result.get("access_token") or "")).split()
    short = wanted.rsplit("/", 1)[-1].lower()
    return any(n.lower() in (wanted.lower(), short) for n in names)


def _jwt_scp(token: str) -> str:
    parts = token.split(".")
    if len(parts) != 3:
        return ""
    try:
        data = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, TypeError):
        return ""
    return str(data.get("scp") or "") if isinstance(data, dict) else ""


def _consent_missing(exc: AuthlibBaseError) -> bool:
    """Microsoft's ``invalid_grant`` for a scope never consented (AADSTS65001): the grant
    itself is fine."""
    text = str(getattr(exc, "description", "") or "")
    return "AADSTS65001" in text or "consent_required" in text


def _refresh(
    state: Runtime, holder: Holder, account: MailAccount, provider: Provider, kind: str = MAIL
) -> str:
    """Call the token endpoint (the refresh lock held) and save the new tokens."""
    row = holder.row
    assert row.refresh_token
    found = endpoints(state, provider)
    scope = None
    if kind == GRAPH:
        if not provider.graph_url or not provider.graph_send_scope:
            raise GraphNotGranted(f"{provider.name} does not offer Microsoft Graph.")
        scope = graph_scope(provider)
    elif provider.refresh_sends_scope or provider.graph_url is not None:
        scope = mail_refresh_scope(provider, row.token_scopes)
    options = state.transport_options()
    # Where used, not at the host's start-up (oauth_session loads them anyway).
    import requests
    from authlib.common.errors import AuthlibBaseError

    try:
        with oauth_session(state, provider, scope) as client:
            result = client.refresh_token(
                found.token, refresh_token=row.refresh_token, timeout=options.timeout
            )
    except AuthlibBaseError as exc:  # OAuthError from the requests client, with .error
        if (
            kind == GRAPH
            and exc.error in ("invalid_grant", "invalid_scope")
            and (exc.error == "invalid_scope" or _consent_missing(exc))
        ):
            raise GraphNotGranted(
                f"{provider.name} did not grant sending through Microsoft Graph (Mail.Send).",
                error=exc.error,
            ) from None
        if exc.error == "invalid_grant":
            raise NeedsReconnect(_remedy(provider, TOKEN_REVOKED), error=exc.error) from None
        if exc.error in ("temporarily_unavailable", "server_error"):
            raise TokenRefreshUnavailable(
                UNAVAILABLE_SAID % {"provider": provider.name, "error": exc.error},
                error=exc.error,
            ) from None
        log.warning("Token refresh for account %s refused: %s", account.id, exc.error)
        raise TokenError(
            f"{provider.name} refused to refresh the token ({exc.error}). Check the client "
            "id, secret and scopes configured for it.",
            error=exc.error,
        ) from None
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else 0
        log.warning("Token endpoint of %s answered HTTP %s", provider.name, status)
        if status >= 500 or status == 429:
            raise TokenRefreshUnavailable(
                f"{provider.name}'s token endpoint answered HTTP {status}; try again later."
            ) from None
        raise TokenError(f"{provider.name}'s token endpoint answered HTTP {status}.") from None
    except requests.RequestException as exc:
        if isinstance(exc, HTTPGuardError) and exc.refused:
            log.warning("Token endpoint of %s refused by the guard: %s", provider.name, exc.code)
            raise guard_refused(provider, exc) from None
        log.warning("Token endpoint of %s unreachable: %s", provider.name, type(exc).__name__)
        raise TokenRefreshUnavailable(
            f"{provider.name}'s token endpoint could not be reached ({type(exc).__name__}); "
            "try again later."
        ) from None
    except ValueError:
        raise TokenError(f"{provider.name}'s token endpoint did not answer JSON.") from None
    access = result.get("access_token")
    if not access:
        raise TokenError(f"{provider.name} answered the refresh without an access token.")
    now = utcnow()
    values: dict[str, Any] = {"token_refreshed_at": now}
    # Authlib copies the old refresh token in when the answer has none: either way the value
    # written is the one to spend next time. Encrypted once, so that every save attempt
    # writes the same ciphertext (and can tell that an earlier attempt did commit).
    new_refresh: Sealed | None = None
    if result.get("refresh_token") and result["refresh_token"] != row.refresh_token:
        new_refresh = seal(str(result["refresh_token"]))
        values["refresh_token"] = new_refresh
    missing = kind == GRAPH and not _granted(result, provider.graph_send_scope or "")
    if kind == GRAPH and not missing:
        values["graph_access_token"] = seal(str(access))  # no plaintext in SQL parameters
        values["graph_token_expires_at"] = _expiry(result, now)
    elif kind == MAIL:
        values["access_token"] = seal(str(access))
        values["token_expires_at"] = _expiry(result, now)
        if result.get("scope"):
            scopes = result["scope"]
            values["token_scopes"] = (
                " ".join(scopes) if isinstance(scopes, (list, tuple)) else str(scopes)
            )
    _save(holder, account, provider, values, new_refresh)
    if missing:  # the rotated refresh token is saved before raising this
        raise GraphNotGranted(
            f"{provider.name} gave a Microsoft Graph token without Mail.Send for this account."
        )
    return str(access)


def _expiry(result: Mapping[str, Any], now: datetime) -> datetime | None:
    try:
        if result.get("expires_in") is not None:
            return now + timedelta(seconds=int(float(result["expires_in"])))
        if result.get("expires_at") is not None:
            return datetime.fromtimestamp(int(result["expires_at"]), tz=now.tzinfo)
    except (TypeError, ValueError):
        pass
    return None


# Stored (last_error_message) and raised in English, with the provider's name filled in; the
# pages translate them by these patterns (views.common.localize).
NO_REFRESH_SAID = N_("%(provider)s gave no refresh token for this account. Sign in again.")
REVOKED_SAID = N_(
    "%(provider)s no longer accepts this account's sign-in (access was revoked, has expired or "
    "the password changed). Sign in again."
)
UNAVAILABLE_SAID = N_(
    "%(provider)s could not refresh the token right now (%(error)s); try again later."
)
REMEDY_TEMPLATES = (NO_REFRESH_SAID, REVOKED_SAID, UNAVAILABLE_SAID)


def _remedy(provider: Provider, code: str) -> str:
    said = NO_REFRESH_SAID if code == NO_REFRESH_TOKEN else REVOKED_SAID
    return said % {"provider": provider.name}


def _save(
    holder: Holder,
    account: MailAccount,
    provider: Provider,
    values: dict[str, Any],
    new_refresh: Sealed | None,
) -> None:
    """Save what the token endpoint answered; never lose a rotated refresh token silently.

    The provider has spent the old refresh token: if the new one cannot be stored, the account
    can only be signed in again. So the save is retried (:meth:`Holder.save`) while the lock
    keeps every other caller from spending the old one; if every attempt fails, the caller
    gets :class:`TokenSaveFailed` (and :func:`_fresh` marks the account ``token_save_failed``).
    A failed save without a rotated refresh token loses nothing: the next call refreshes again.
    """
    try:
        if not holder.save(values, new_refresh):
            log.info("Account %s got new tokens elsewhere meanwhile; kept those", account.id)
    except SaveFailed as exc:
        if new_refresh is None:
            log.warning("Could not save the new access token of account %s (%s); the next "
                        "call refreshes again", account.id, describe(exc.last))  # fmt: skip
            return
        log.error(
            "Could not save the rotated refresh token of account %s after %s attempts (%s): "
            "the account must be signed in again; check the database.",
            account.id, exc.attempts, describe(exc.last),
        )  # fmt: skip
        raise TokenSaveFailed(message_for(TOKEN_SAVE_FAILED), error=TOKEN_SAVE_FAILED) from None


def _grant_refused(
    state: Runtime, holder: Holder, account: MailAccount, provider: Provider, code: str
) -> str | None:
    """The grant is refused or gone (or its rotated token could not be saved): the accounts
    layer wipes the tokens and marks the account in a short transaction of its own; returns
    ``code`` when this is the transition (the signal fires once, after the commit), ``None``
    when it already needed reconnecting or the mark could not be saved (logged)."""
    already = holder.row.status == AccountStatus.NEEDS_RECONNECT
    message = message_for(code) if code == TOKEN_SAVE_FAILED else _remedy(provider, code)

    def apply(session: Session) -> None:
        state.events.grant_refused(session, account.id, code=code, message=message, already=already)

    try:
        holder.write(apply, "the account's status")
    except SaveFailed as exc:
        log.error("Could not mark account %s %s (%s)", account.id, code, describe(exc.last))
        return None
    return None if already else code


def sync_instance(account: MailAccount, values: Any) -> None:
    """Mirror the committed ``values`` (:data:`.locks.MIRRORED`) on the caller's instance
    without marking it dirty."""
    if values is None:  # the row is gone (deleted meanwhile): nothing to mirror
        return
    for name, value in zip(MIRRORED, values, strict=True):
        set_committed_value(account, name, value)
    insp = sa.inspect(account)
    # never leave plaintext on the instance
    for name in ("access_token", "refresh_token", "graph_access_token"):
        if name in insp.dict:
            del insp.dict[name]
