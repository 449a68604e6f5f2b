"""Revoking an account's grant at the provider (RFC 7009) when it is disconnected."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm.attributes import set_committed_value

from ..columns import open_secret
from ..exceptions import EncryptionKeyError, TokenError
from ..models import MailAccount
from ..providers import Provider
from ..runtime import Runtime
from .endpoints import endpoints, oauth_session, provider_for, timeout_of

if TYPE_CHECKING:
    import requests

log = logging.getLogger("flask_mailconnect.oauth")


def prepare_revocation(state: Runtime, account: MailAccount) -> Callable[[], bool]:
    """Read what revoking ``account``'s grant needs now; the returned call revokes it later.

    For :func:`~flask_mailconnect.accounts.disconnect`: the row is deleted and flushed first,
    then the grant is revoked, so a failed delete never leaves a "connected" account holding a
    dead token. The call returns what :func:`revoke_tokens` returns and never raises.
    """
    try:
        provider: Provider | None = provider_for(account)
    except TokenError:
        provider = None
    found = state.session.execute(
        sa.select(MailAccount.refresh_token, MailAccount.access_token).where(
            MailAccount.id == account.id
        )
    ).first()
    token, hint = (None, None)
    if found is not None:
        token, hint = (found[0], "refresh_token") if found[0] else (found[1], "access_token")
    account_id = account.id

    def revoke() -> bool:
        if provider is None or not token or not hint:
            return False
        try:
            plain = open_secret(token)
        except EncryptionKeyError:  # the key is gone: nothing to revoke with; said by caller
            log.warning("Account %s: its token cannot be decrypted; not revoked", account_id)
            return False
        return bool(plain) and _revoke_at_provider(state, provider, account_id, plain or "", hint)

    return revoke


def _revoke_at_provider(
    state: Runtime, provider: Provider, account_id: int, token: str, hint: str
) -> bool:
    try:
        endpoint = endpoints(state, provider).revoke
    except TokenError:
        return False
    if not endpoint:
        return False
    import requests  # where used: not at the host's start-up

    try:
        with oauth_session(state, provider) as client:
            response = client.revoke_token(
                endpoint, token=token, token_type_hint=hint, timeout=timeout_of(state)
            )
    except requests.RequestException as exc:
        log.warning(
            "Revoking the token of account %s at %s failed: %s",
            account_id, provider.name, type(exc).__name__,
        )  # fmt: skip
        return False
    revoked = response.ok or _already_invalid(response)
    if not revoked:
        log.warning(
            "Revoking the token of account %s at %s failed: HTTP %s",
            account_id, provider.name, response.status_code,
        )  # fmt: skip
    return revoked


def revoke_tokens(state: Runtime, account: MailAccount) -> bool:
    """Revoke the account's grant at the provider (RFC 7009), then wipe the tokens locally.

    Returns ``True`` when the provider confirmed (a 2xx answer, or ``invalid_token``: already
    dead). Returns ``False`` when it has no revocation endpoint (Microsoft) or the call failed
    (unreachable, timeout, 5xx): never raises for the provider's sake, so disconnecting always
    works; on ``False`` show the user the provider's ``access_settings_url`` to remove the app's
    access by hand. The local wipe is staged in the host's session (the caller commits, as with
    every function in accounts.py).
    """
    provider = provider_for(account)
    query = sa.select(MailAccount.refresh_token, MailAccount.access_token).where(
        MailAccount.id == account.id
    )
    found = state.session.execute(query).first()
    revoked = False
    if found is not None and (found[0] or found[1]):
        hint = "refresh_token" if found[0] else "access_token"
        token = open_secret(found[0] or found[1]) or ""
        revoked = _revoke_at_provider(state, provider, account.id, token, hint)
    if found is not None:
        state.session.execute(
            sa.update(MailAccount)
            .where(MailAccount.id == account.id)
            .values(
                access_token=None,
                refresh_token=None,
                token_expires_at=None,
                graph_access_token=None,
                graph_token_expires_at=None,
            )
            .execution_options(synchronize_session=False)
        )
        set_committed_value(account, "token_expires_at", None)
        set_committed_value(account, "graph_token_expires_at", None)
    return revoked


def _already_invalid(response: requests.Response) -> bool:
    if response.status_code != 400:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, Mapping) and body.get("error") == "invalid_token"
