"""OAuth 2.0 pages: start (POST), the per-provider callback, Test connection for OAuth accounts.

Endpoints: ``mailconnect.oauth_start`` (``provider``; POST with CSRF, optional ``account_id``
to sign an account in again, ``next``, and ``owner_kind``/``owner_id`` for admins connecting on
someone's behalf), ``mailconnect.oauth_callback`` (``provider``; ``/oauth/<provider>/callback``)
and ``mailconnect.oauth_test`` (``account_id``). The protocol is in
:mod:`flask_mailconnect.oauth.flow`; accounts change only through
:mod:`flask_mailconnect.accounts`.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Response,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from .. import accounts
from ..exceptions import AccountLimitReached, OAuthFlowError, PermissionDenied, TokenError
from ..i18n import N_, gettext
from ..models import AccountStatus, MailAccount
from ..oauth import flow
from ..oauth.flow import PendingFlow
from ..owners import Owner
from ..providers import Provider, current_catalog
from ..scopes import owner_exists, valid_owner
from ..transport.settings import ConnectionReport, Protocol, ProtocolResult
from ..validation import parse_id
from .admin.lists import Person
from .common import actor, load_account, localize, state
from .connect import limit_text
from .messages import after_save

#: The last Test connection result of an OAuth account, shown once on its page.
REPORT_KEY = "mailconnect.oauth_report"


def _provider(key: str) -> Provider:
    found = current_catalog().oauth().get(key)
    if found is None:
        abort(404)
    return found


def _may_manage(owner: Owner) -> bool:
    return state().policy.can(actor(), "manage", owner)


def _may_consent(owner: Owner) -> bool:
    """``manage``, and for someone else's personal account ``MAILCONNECT_ADMIN_OAUTH_ON_BEHALF``."""
    return accounts.may_consent_for(state(), actor(), owner)


def _host_email(user: Any) -> str | None:
    """The host user's address (``user.email``), for the provider's ``login_hint``."""
    value = getattr(user, "email", None)
    return value if isinstance(value, str) and "@" in value else None


def _person_label(owner: Owner) -> str:
    user = state().hooks.get_user(owner[1])
    return Person.of(user).label if user is not None else gettext("user %(id)s", id=owner[1])


# -- pages ------------------------------------------------------------------------------------

#: Page titles by code (translated where the page is rendered; ``%(name)s``: the provider).
TITLES = {
    "access_denied": N_("You did not allow access"),
    "state": N_("This sign-in has expired or was already used"),
    "provider_error": N_("%(name)s could not complete the sign-in"),
    "unreachable": N_("%(name)s could not be reached"),
    "id_token": N_("The answer from %(name)s could not be verified"),
    "no_email": N_("%(name)s did not share your email address"),
    "unverified_email": N_("%(name)s could not confirm this address is yours"),
    "no_refresh_token": N_("%(name)s did not grant offline access"),
    "already_connected": N_("This address is already connected by someone else"),
    "different_email": N_("You signed in with a different address"),
    "different_identity": N_("You signed in as someone else"),
    "config": N_("Connecting with %(name)s is not set up yet"),
    "limit": N_("No more accounts can be connected"),
    "on_behalf_off": N_("Signing in for someone else is turned off"),
    "own_address": N_("You signed in with your own address"),
    "handover_pending": N_("This account is waiting for its owner to sign in"),
}
_FAILED = N_("The connection failed")


def _error(
    exc: OAuthFlowError | AccountLimitReached,
    provider: Provider,
    pending: PendingFlow | None = None,
) -> Response:
    """The page for a flow that ended without a connection: what happened, and Try again."""
    code = exc.code if isinstance(exc, OAuthFlowError) else "limit"
    account = None
    if pending is not None and pending.account_id is not None:
        account = state().session.get(MailAccount, pending.account_id)
        if account is not None and not _may_manage(account.owner):
            account = None
    status = {"config": 500, "unreachable": 502, "limit": 409, "on_behalf_off": 403}.get(code, 400)
    page = render_template(
        "mailconnect/oauth_error.html",
        code=code,
        title=gettext(TITLES.get(code, _FAILED), name=provider.name),
        provider=provider,
        detail=exc.detail if isinstance(exc, OAuthFlowError) else limit_text(exc),
        account=account,
        next_url=pending.next if pending is not None else None,
        owner=pending.owner if pending is not None else None,
    )
    response = make_response(page, status)
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _stash(account: MailAccount, report: ConnectionReport) -> None:
    session[REPORT_KEY] = {"account_id": account.id, **report.as_dict()}


def last_report(account: MailAccount) -> ConnectionReport | None:
    """The Test connection result stored for ``account``'s page, taken once (template helper)."""
    data = session.get(REPORT_KEY)
    if not isinstance(data, dict) or data.get("account_id") != account.id:
        return None
    session.pop(REPORT_KEY, None)
    try:
        results = {
            r["protocol"]: ProtocolResult(
                Protocol(r["protocol"]), bool(r["ok"]), str(r["code"]), str(r["message"])
            )
            for r in data["results"]
        }
        return ConnectionReport(smtp=results["smtp"], imap=results.get("imap"))
    except (KeyError, TypeError, ValueError):
        return None


def _summary(report: ConnectionReport, *, details_below: bool = True) -> str:
    """One sentence for the flash. ``details_below``: the page shown next is the account's,
    which lists each result; elsewhere (a project's page, a person's admin page) the failures
    are said in the flash itself."""
    if report.ok:
        return gettext("Test connection: sending and receiving both work.")
    failed = [r for r in report.results if not r.ok]
    names = ", ".join(
        gettext("sending (SMTP)") if r.protocol.value == "smtp" else gettext("receiving (IMAP)")
        for r in failed
    )
    if details_below:
        return gettext("Test connection failed for %(which)s: see the details below.", which=names)
    reasons = " ".join(localize(r.code, r.message) for r in failed if r.message)
    said = gettext("Test connection failed for %(which)s.", which=names)
    return f"{said} {reasons}".strip()


# -- routes -----------------------------------------------------------------------------------


def start(provider: str) -> Any:
    prov = _provider(provider)
    form = request.form
    next_url = flow.safe_next(form.get("next"))
    account_id = None
    if form.get("account_id"):  # signing an account in again: an id, or there is no such page
        account_id = parse_id(form["account_id"])
        if account_id is None:
            abort(404)
    # The address typed on the connect page, whose detected provider offered this button.
    typed = form.get("login_hint", "").strip()[:320]
    login_hint = typed if "@" in typed and not any(c.isspace() for c in typed) else None
    handover = False
    if account_id is not None:
        # A hand-over is completed by its owner alone (Policy.can_complete_handover): an admin
        # who may consent on someone's behalf deletes it and connects the account instead.
        found = state().session.get(MailAccount, account_id)
        handover = found is not None and found.status == AccountStatus.PENDING_AUTHORIZATION
        if handover and not state().policy.can_complete_handover(actor(), found):
            abort(404)
        account = found if handover and found is not None else load_account(account_id, "manage")
        if account.auth_method == "oauth2" and account.provider != prov.key:
            abort(404)
        owner = account.owner
        login_hint = account.email
    elif form.get("owner_kind") and form.get("owner_id"):
        owner = (form["owner_kind"], form["owner_id"])
        # No accounts for kinds nobody declared, ids no table holds, projects that do not exist.
        if not valid_owner(owner) or not owner_exists(owner):
            abort(404)
        person = None
        if owner[0] == "user" and owner != actor().owner:
            # Someone else: a person the host knows (``@user_getter``), stored under the
            # host's own id for them (``@user_id``), never the form's spelling ("01", "9999").
            person = state().hooks.get_user(owner[1])
            if person is None:
                abort(404)
            owner = ("user", str(state().hooks.id_of(person)))
        if accounts.on_behalf(actor(), owner):  # the provider may offer the person's address
            login_hint = _host_email(person or state().hooks.get_user(owner[1]))
    else:
        owner = actor().owner
    if not handover and not _may_manage(owner):
        abort(404)
    if not handover and not _may_consent(owner):  # an admin, with consent on behalf off
        return _error(OAuthFlowError("on_behalf_off", provider=prov), prov)
    try:
        url = flow.begin(
            prov,
            owner=owner,
            actor_id=actor().id,
            account_id=account_id,
            next_url=next_url,
            login_hint=login_hint,
        )
    except OAuthFlowError as exc:
        return _error(exc, prov)
    return redirect(url)


def _done_message(
    prov: Provider, account: MailAccount, *, again: bool, handover: bool, details_below: bool,
    report: ConnectionReport,
) -> str:  # fmt: skip
    """What the flash says: "Signed in again" only to someone who had signed in before."""
    if again and not handover:
        verb = gettext("Signed in again: %(email)s.", email=account.email)
    elif accounts.on_behalf(actor(), account.owner):
        verb = gettext(
            "Connected %(email)s with %(provider)s for %(person)s.",
            email=account.email,
            provider=prov.name,
            person=_person_label(account.owner),
        )
    elif handover:
        verb = gettext(
            "Authorization complete: %(email)s is connected with %(provider)s.",
            email=account.email,
            provider=prov.name,
        )
    else:
        verb = gettext(
            "Connected with %(provider)s: %(email)s.", provider=prov.name, email=account.email
        )
    return f"{verb} {_summary(report, details_below=details_below)}"


def callback(provider: str) -> Any:
    prov = _provider(provider)
    try:
        pending = flow.take_pending(prov)
    except OAuthFlowError as exc:
        flow.discard(prov)  # Authlib's half goes too: a replayed callback stays refused
        return _error(exc, prov)
    pending_account = (
        state().session.get(MailAccount, pending.account_id)
        if pending.account_id is not None
        else None
    )
    handover = (
        pending_account is not None
        and pending_account.status == AccountStatus.PENDING_AUTHORIZATION
    )
    owner = pending_account.owner if pending_account is not None else pending.owner
    allowed = (
        state().policy.can_complete_handover(actor(), pending_account)
        if handover
        else _may_consent(pending.owner)
    )
    if pending.actor_id != actor().id or not allowed:
        flow.discard(prov)
        return _error(OAuthFlowError("state", "another person", provider=prov), prov)
    try:
        grant = flow.finish(prov, pending)
        # An admin who signed in as themselves would store their own mailbox as the person's:
        # refused, they try again with the person's sign-in.
        own = _host_email(actor().user)
        if (
            accounts.on_behalf(actor(), owner)
            and own
            and grant.email.strip().lower() == own.lower()
        ):
            raise OAuthFlowError("own_address", grant.email, provider=prov)
        if pending.account_id is not None:
            account = pending_account
            if account is None or not (handover or _may_manage(account.owner)):
                raise OAuthFlowError("state", "account gone", provider=prov)
            account = accounts.reconnect_oauth(state(), account, grant=grant, actor=actor())
            again = True
        else:
            known = {a.id: a.status for a in accounts.accounts_for(state(), pending.owner)}
            account = accounts.connect_oauth(
                state(), owner=pending.owner, grant=grant, actor=actor()
            )
            again = account.id in known
            # The person's own "Connect with" for the address they were handed: completes it.
            handover = known.get(account.id) == AccountStatus.PENDING_AUTHORIZATION
    except (OAuthFlowError, AccountLimitReached) as exc:
        state().session.rollback()  # nothing half-connected: no row, no token
        return _error(exc, prov, pending)
    except PermissionDenied:  # changed meanwhile (role, setting): as a foreign state
        state().session.rollback()
        return _error(OAuthFlowError("state", "not allowed", provider=prov), prov, pending)
    state().session.commit()
    report = accounts.run_oauth_test(  # as the app when the owner may not manage (hand-over)
        state(), account, actor=actor() if _may_manage(account.owner) else None,
        access_token=grant.access_token,
    )  # fmt: skip
    state().session.commit()
    _stash(account, report)
    account_page = url_for(".account", account_id=account.id)
    target = flow.safe_next(pending.next) or account_page
    message = _done_message(
        prov, account, again=again, handover=handover, report=report,
        details_below=target.split("?", 1)[0] == account_page,
    )  # fmt: skip
    flash(message, "success" if report.ok else "error")
    if report.ok:
        after_save(account)  # the newest mail, at once (queued, or bounded in this request)
    response = redirect(target)
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def test(account_id: int) -> Any:
    account = load_account(account_id, "manage")
    if account.auth_method != "oauth2":
        abort(404)

    try:
        report = accounts.run_oauth_test(state(), account, actor=actor())
    except TokenError as exc:  # needs_reconnect is recorded by tokens.py
        state().session.commit()
        gone = gettext("The provider no longer accepts this connection: sign in again.")
        flash(localize(None, str(exc)) or gone, "error")
        return redirect(url_for(".account", account_id=account.id))
    state().session.commit()
    _stash(account, report)
    flash(_summary(report), "success" if report.ok else "error")
    return redirect(url_for(".account", account_id=account.id))


# -- template helpers -------------------------------------------------------------------------


def oauth_buttons() -> list[Provider]:
    """The providers offered as "Connect with ..." buttons (configuration order)."""
    return list(current_catalog().oauth().values())


def oauth_provider(key: str) -> Provider | None:
    """The provider behind ``key`` (an older alias too) when it signs in with OAuth."""
    return signs_in(current_catalog().get(key))


def signs_in(found: Provider | None) -> Provider | None:
    """``found`` when it signs in with OAuth (for a page that looked its providers up)."""
    return found if found is not None and found.offers_oauth else None


def no_revoke_provider(account: MailAccount) -> Provider | None:
    """The account's provider when it cannot revoke our access: the person must."""
    if account.auth_method != "oauth2":
        return None
    prov = current_catalog().for_account(account)
    return prov if prov.offers_oauth and not prov.revoke_url else None


def disconnect_hint(account: MailAccount) -> str | None:
    """The sentence for the flash after disconnecting, or ``None``."""
    prov = no_revoke_provider(account)
    if prov is None:
        return None
    if prov.access_settings_url:
        return gettext(
            "%(provider)s cannot revoke this app's access from here: remove it at %(url)s.",
            provider=prov.name,
            url=prov.access_settings_url,
        )
    return gettext(
        "%(provider)s cannot revoke this app's access from here: remove it in your "
        "%(provider)s account's security settings.",
        provider=prov.name,
    )


def _callback_no_referrer(response: Response) -> Response:
    """The callback's URL carries the authorization code: whatever it answers (a page, a
    redirect, a 404 for an unknown provider, the login redirect), no Referer leaks it."""
    if request.endpoint == "mailconnect.oauth_callback":
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
    return response


def _callback_signed_out() -> Any:
    """The person's session ended while they were at the provider: send them to sign in with
    ``next`` set to the settings page, never to this URL (its ``code`` would end up in the
    login page's address, logs and Referer). The flow cannot finish: its session is gone."""
    if request.endpoint != "mailconnect.oauth_callback":
        return None
    if state().hooks.current_actor() is not None:
        return None
    from flask import current_app

    manager = getattr(current_app, "login_manager", None)
    if manager is not None and manager.login_view:
        from flask_login import login_url

        return redirect(login_url(manager.login_view, next_url=url_for(".index")))
    abort(401)
