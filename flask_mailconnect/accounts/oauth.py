"""OAuth 2.0 accounts: connect, sign in again, Test connection with XOAUTH2, Graph."""

from __future__ import annotations

from dataclasses import replace

import sqlalchemy as sa

from .. import audit, signals
from ..codes import SMTP_AUTH_DISABLED
from ..columns import seal
from ..exceptions import (
    GraphNotGranted,
    OAuthFlowError,
    PermissionDenied,
    TokenError,
)
from ..i18n import N_
from ..models import AccountStatus, MailAccount, utcnow
from ..oauth.flow import OAuthGrant
from ..oauth.refresh import fresh_access_token, fresh_graph_token
from ..owners import Actor, Owner
from ..providers import Provider, current_catalog
from ..runtime import Runtime
from ..transport.graph import check_graph
from ..transport.settings import ConnectionReport, ServerSettings
from ..transport.tester import test_connection as run_test
from .admin import may_consent_for, on_behalf
from .core import _find, _report_detail, check_limit, default_account, require

# -- OAuth 2.0 accounts (issue 3) -------------------------------------------------------------


def _oauth_servers(account: MailAccount, provider: Provider) -> None:
    """SMTP/IMAP servers from the provider: never typed by the user."""
    preset = provider
    if preset.smtp is None:
        raise OAuthFlowError("config", f"no servers for {provider.key!r}", provider=provider)
    account.smtp_host = preset.smtp.host
    account.smtp_port = preset.smtp.port
    account.smtp_security = preset.smtp.security
    if preset.imap is not None:
        account.imap_host = preset.imap.host
        account.imap_port = preset.imap.port
        account.imap_security = preset.imap.security
    else:
        account.imap_host = account.imap_port = account.imap_security = None


def _apply_grant(account: MailAccount, grant: OAuthGrant) -> None:
    account.auth_method = "oauth2"
    account.provider = grant.provider.key
    # sealed now: without a key, EncryptionKeyError here rather than inside the flush
    account.access_token = seal(grant.access_token)
    account.refresh_token = seal(grant.refresh_token)
    account.token_expires_at = grant.expires_at
    account.token_refreshed_at = utcnow()
    account.token_scopes = grant.scopes
    if grant.subject:  # bound at first consent; reconnects checked it (_check_identity)
        account.oauth_subject = grant.subject
        account.oauth_issuer = grant.issuer
    # A Graph token of an earlier grant is not this grant's: fetched again when needed.
    account.graph_access_token = None
    account.graph_token_expires_at = None
    account.status = AccountStatus.CONNECTED
    account.last_error_code = account.last_error_message = None


def _forget_tokens(state: Runtime, account: MailAccount) -> None:
    """Like :func:`_forget_password`: flushed (encrypted) tokens leave the instance."""
    state.session.expire(account, ["access_token", "refresh_token", "graph_access_token"])


def _grant_email(grant: OAuthGrant) -> str:
    """The address the provider vouched for, domain in lower case.

    Not run through the form's validator: the provider owns the address (and may use names,
    such as ``.test`` ones in a lab, that a typed address could not).
    """
    local, _, domain = grant.email.strip().rpartition("@")
    bad = not local or not domain or any(ch.isspace() or ord(ch) < 0x20 for ch in grant.email)
    if bad or len(grant.email) > 320:
        raise OAuthFlowError("no_email", "invalid address", provider=grant.provider)
    return f"{local}@{domain.lower()}"


def _connected_elsewhere(
    state: Runtime, owner: Owner, email: str, grant: OAuthGrant | None = None
) -> MailAccount | None:
    """Another owner's account with this address, or bound to this provider identity.

    A check before the insert; two concurrent consents can both pass it, so the unique index
    on (provider, oauth_subject) decides, and :func:`_flush_bound` reports the loser as
    ``already_connected``.
    """
    same = sa.func.lower(MailAccount.email) == email.lower()
    if grant is not None and grant.subject:
        same = sa.or_(
            same,
            sa.and_(
                MailAccount.provider == grant.provider.key,
                MailAccount.oauth_subject == grant.subject,
            ),
        )
    query = sa.select(MailAccount).where(
        same,
        sa.not_(sa.and_(MailAccount.owner_kind == owner[0], MailAccount.owner_id == owner[1])),
    )
    return state.session.scalars(query).first()


def _flush_bound(state: Runtime, grant: OAuthGrant, email: str) -> None:
    """Flush; a unique violation (the identity or address was connected meanwhile) becomes
    ``already_connected``. The caller's view rolls the session back on that error."""
    try:
        state.session.flush()
    except sa.exc.IntegrityError:
        raise OAuthFlowError("already_connected", email, provider=grant.provider) from None


def _check_identity(account: MailAccount, grant: OAuthGrant) -> None:
    """The account's bound identity must be the one that consented (same address is not
    enough: another tenant's user may claim it). Unbound accounts (hand-over, older rows,
    password accounts switching to OAuth) are bound now."""
    if account.oauth_subject is None:
        return
    if grant.subject != account.oauth_subject or account.provider != grant.provider.key:
        raise OAuthFlowError("different_identity", _grant_email(grant), provider=grant.provider)


def connect_oauth(
    state: Runtime, *, owner: Owner, grant: OAuthGrant, actor: Actor | None
) -> MailAccount:
    """Store an OAuth 2.0 account for ``owner`` from a consent ``grant`` (tokens encrypted).

    When ``owner`` already has this address, that account is signed in again instead
    (:func:`reconnect_oauth`: same id and settings, ``account_updated``). An address another
    owner has connected raises :class:`OAuthFlowError` ``already_connected``. Servers come
    from the provider's preset. Does not test: see :func:`run_oauth_test`.
    """
    require(state, actor, "manage", owner)
    if actor is not None and not may_consent_for(state, actor, owner):  # on behalf: off
        raise PermissionDenied(f"{actor.label} may not give consent for {owner[1]}")
    email = _grant_email(grant)
    existing = _find(state, owner, email)
    if existing is not None:
        if existing.status == AccountStatus.PENDING_AUTHORIZATION and not (
            actor is None or state.policy.can_complete_handover(actor, existing)
        ):  # handed over: its owner signs in to it (an admin deletes it to connect it instead)
            raise OAuthFlowError("handover_pending", email, provider=grant.provider)
        return reconnect_oauth(state, existing, grant=grant, actor=actor)
    if _connected_elsewhere(state, owner, email, grant) is not None:
        raise OAuthFlowError("already_connected", email, provider=grant.provider)
    check_limit(state, owner)
    account = MailAccount(
        owner_kind=owner[0],
        owner_id=owner[1],
        email=email,
        username=email,
        display_name="",
        connected_by=actor.id if actor else None,
        is_default=default_account(state, owner) is None,
        send_via="smtp",
    )
    _oauth_servers(account, grant.provider)
    _apply_grant(account, grant)
    state.session.add(account)
    _flush_bound(state, grant, email)
    _forget_tokens(state, account)
    detail = "oauth2, on behalf" if on_behalf(actor, owner) else "oauth2"
    audit.record(state.session, "connect", actor=actor, account=account, detail=detail)
    signals.announce(signals.account_connected, actor, account=account)
    return account


def reconnect_oauth(
    state: Runtime, account: MailAccount, *, grant: OAuthGrant, actor: Actor | None
) -> MailAccount:
    """Sign ``account`` in again with new tokens, when the provider vouched for its address.

    Keeps the id, settings and history; fires ``account_updated`` (``changes={"credentials"}``),
    never a second ``account_connected``. Another address raises ``different_email``; the same
    address from another identity than the one bound at first consent (``oauth_subject``)
    raises ``different_identity``. A hand-over (awaiting authorization) is completed by its
    owner only (:meth:`Policy.can_complete_handover`), never by someone managing it for them.
    """
    if account.status == AccountStatus.PENDING_AUTHORIZATION:
        if actor is not None and not state.policy.can_complete_handover(actor, account):
            raise PermissionDenied(f"{actor.label} may not complete this hand-over")
    else:
        require(state, actor, "manage", account.owner)
        if actor is not None and not may_consent_for(state, actor, account.owner):
            raise PermissionDenied(f"{actor.label} may not give consent for {account.owner[1]}")
    email = _grant_email(grant)
    if email.lower() != account.email.lower():
        raise OAuthFlowError("different_email", email, provider=grant.provider)
    _check_identity(account, grant)
    forget = ["access_token", "refresh_token", "graph_access_token"]
    if account.auth_method != "oauth2":  # a password account switching to OAuth
        account.password = None
        forget.append("password")
        account.username = account.email
        _oauth_servers(account, grant.provider)
    _apply_grant(account, grant)
    _flush_bound(state, grant, email)
    state.session.expire(account, forget)
    detail = "oauth2, on behalf" if on_behalf(actor, account.owner) else "oauth2"
    audit.record(state.session, "reconnect", actor=actor, account=account, detail=detail)
    signals.announce(signals.account_updated, actor, account=account, changes={"credentials"})
    return account


# Stored on the account (last_error_message) in English, like every code's wording; the pages
# translate them when they show them (codes.localize: a whole message in the catalogue).
SMTP_AUTH_OFF = "Sending through SMTP (SMTP AUTH) is turned off for this mailbox."
NO_GRAPH = N_(
    "Sending through SMTP (SMTP AUTH) is turned off for this mailbox. To send anyway, connect "
    "again and allow sending through Microsoft Graph (Mail.Send), or ask your administrator to "
    "turn on Authenticated SMTP for this mailbox."
)
SENT_BY_GRAPH = N_(
    "SMTP AUTH is turned off for this mailbox: mail is sent through Microsoft Graph instead."
)


def run_oauth_test(
    state: Runtime, account: MailAccount, *, actor: Actor | None, access_token: str | None = None
) -> ConnectionReport:
    """Test connection for an OAuth account: XOAUTH2 to its SMTP and IMAP servers.

    Uses ``access_token`` (just granted) or a fresh one from :mod:`..oauth.refresh` (refreshed
    under the row lock when due). Records the outcome on the account (status, last error) and
    in the audit trail; a failing test never removes the account. Where SMTP AUTH is off
    (535 5.7.139) and Graph ``Mail.Send`` was granted, mail goes through Graph instead.
    """
    require(state, actor, "manage", account.owner)
    if access_token is None:
        access_token = fresh_access_token(state, account)
    settings = ServerSettings(
        email=account.email,
        username=account.username,
        password="",
        smtp_host=account.smtp_host,
        smtp_port=account.smtp_port,
        smtp_security=account.smtp_security,  # type: ignore[arg-type]
        imap_host=account.imap_host,
        imap_port=account.imap_port,
        imap_security=account.imap_security,  # type: ignore[arg-type]
        provider=_oauth_preset_key(account),
        oauth_token=access_token,
        hints=current_catalog().for_account(account).hints,
    )
    report = run_test(settings, state.transport_options())
    if not report.smtp.ok and report.smtp.code == SMTP_AUTH_DISABLED:
        report = _try_graph(state, account, report, access_token)
    now = utcnow()
    account.last_checked_at = now
    if report.ok:
        account.status = AccountStatus.CONNECTED
        account.last_success_at = now
        account.last_error_code = account.last_error_message = None
    else:
        failed = next(r for r in report.results if not r.ok)
        account.status = AccountStatus.ERROR
        account.last_error_code = failed.code
        account.last_error_message = failed.message
    state.session.flush()
    audit.record(
        state.session, "test", actor=actor, account=account, ok=report.ok,
        detail=_report_detail(report),
    )  # fmt: skip
    return report


def _oauth_preset_key(account: MailAccount) -> str | None:
    return current_catalog().for_account(account).key


def _try_graph(
    state: Runtime, account: MailAccount, report: ConnectionReport, token: str
) -> ConnectionReport:
    """SMTP AUTH is off: send through Microsoft Graph when ``Mail.Send`` was granted.

    Graph takes no SMTP/IMAP token (another audience): a Graph token is obtained with the
    account's refresh token (:func:`~.oauth.refresh.fresh_graph_token`), and whether
    ``Mail.Send`` was granted is read from that token's answer, not from the consent's scopes.
    """

    provider = current_catalog().for_account(account)
    wanted = (provider.graph_send_scope or "").lower()
    asked = bool(wanted) and wanted in (s.lower() for s in provider.scopes)
    smtp = report.smtp
    if asked and provider.graph_url:
        options = state.transport_options()
        try:
            graph_token = fresh_graph_token(state, account)
        except GraphNotGranted:
            account.send_via = "smtp"
            return replace(report, smtp=replace(smtp, message=NO_GRAPH))
        except TokenError as exc:
            account.send_via = "smtp"
            message = f"{SMTP_AUTH_OFF} Sending through Microsoft Graph failed as well: {exc}"
            return replace(report, smtp=replace(smtp, message=message))
        result = check_graph(
            graph_token, provider.graph_url, options.timeout, options.ca_file,
            allow_private_hosts=options.allow_private_hosts,
        )  # fmt: skip
        if result.ok:
            account.send_via = "graph"
            smtp = replace(
                result,
                protocol=smtp.protocol,
                message=SENT_BY_GRAPH,
            )
            return replace(report, smtp=smtp)
        # Mail.Send was granted but Graph refused too: say that, not "allow Mail.Send".
        account.send_via = "smtp"
        message = (
            f"{SMTP_AUTH_OFF} Sending through Microsoft Graph failed as well: {result.message}"
        )
        return replace(report, smtp=replace(smtp, message=message))
    account.send_via = "smtp"
    # The transport's message is written for password accounts; this one is OAuth already, so
    # the remedies are said once, for it (never appended to the generic text: that repeated
    # both of them).
    return replace(report, smtp=replace(smtp, message=NO_GRAPH))
