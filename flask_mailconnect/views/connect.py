"""The manual connect wizard, written once for every owner.

Three routes show it: the signed-in person's own account (``/connect``), a scope owner's such
as a project or the organisation (``/scopes/<kind>/<id>/connect``), and an admin connecting
for a person (``/admin/users/<id>/connect``). Each describes its owner and the page around the
wizard in a :class:`ConnectPage`; :func:`wizard` does the rest: the address step, "Continue"
without JavaScript, Test connection (in the page and as JSON), saving through
:func:`flask_mailconnect.accounts.connect_manual`. Also the ``/detect`` endpoint the page's
script asks for an address's servers (:func:`flask_mailconnect.detection.detect`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from flask import abort, flash, jsonify, redirect, render_template, request

from .. import accounts
from ..detection import Detection
from ..detection.run import detect as run_detect
from ..exceptions import AccountLimitReached, ConnectionTestFailed, InvalidSettings, TooManyTests
from ..forms import ConnectForm
from ..i18n import gettext, ngettext
from ..models import MailAccount
from ..owners import Owner
from ..providers import current_catalog
from ..transport.settings import ConnectionReport
from .common import actor, ports, state
from .messages import after_save


@dataclass(frozen=True)
class ConnectPage:
    """Whose account the wizard connects, and the page around it.

    Only someone who may ``manage`` the owner's accounts gets the wizard (others get 404); the
    route has already answered 404 for an owner that does not exist.
    """

    owner: Owner
    #: The JSON Test connection endpoint of this route.
    test_url: str
    #: Cancel, and where to go when the owner has as many accounts as allowed.
    back_url: str
    #: Breadcrumbs above the form: ``(name, url)``.
    crumbs: tuple[tuple[str, str], ...]
    #: "Connect an email account for ...": ``None`` for one's own account.
    owner_label: str | None = None
    #: Where to go once connected (default: :attr:`back_url`).
    done_url: Callable[[MailAccount], str] | None = None


def presets() -> dict[str, Any]:
    """Preset data for the page's script: servers, login format and the domains to detect."""
    return {p.key: {**p.as_dict(), "domains": list(p.domains)} for p in current_catalog().offered()}


def render_connect(
    form: ConnectForm,
    *,
    test_url: str,
    report: ConnectionReport | None = None,
    step: str = "details",
    account: MailAccount | None = None,
    status: int = 200,
    notice: str | None = None,
    detection: Detection | None = None,
    **page: Any,
) -> Any:
    """``connect.html``: the wizard, or the reconnect form of ``account``. ``page``:
    ``owner_label``, ``cancel_url``, ``crumbs`` and ``oauth_owner`` when the route has them;
    ``detection``: the servers found for the address (the no-JS Continue step)."""
    return render_template(
        "mailconnect/connect.html",
        form=form,
        report=report,
        step=step,
        account=account,
        presets=presets(),
        test_url=test_url,
        notice=notice,
        detection=detection,
        detection_message=detection_message,
        detection_json=detection_json,
        oauth_offers=list(current_catalog().oauth().values()) if account is None else [],
        **page,
    ), status


def run_test(form: ConnectForm, owner: Owner) -> ConnectionReport | None:
    """Run Test connection for the form (audited); ``None`` when the form has errors.

    Raises :class:`TooManyTests` when the person used up their tests for the hour.
    """
    if not form.validate():
        return None
    try:
        report = accounts.test_for_owner(
            state(), owner=owner, settings=form.to_settings(), actor=actor()
        )
    except InvalidSettings as exc:
        form.add_errors(exc.errors)
        return None
    state().session.commit()  # keep the audit row of the test
    return report


def page_test(form: ConnectForm, owner: Owner, render: Callable[..., Any]) -> Any:
    """The no-JS "Test connection" button: the same result, rendered in the page."""
    try:
        report = run_test(form, owner)
    except TooManyTests as exc:
        return render(form, status=429, notice=str(exc))
    return render(form, report=report, status=200 if report else 422)


def json_test(form: ConnectForm, owner: Owner) -> Any:
    """Test connection for the page's script: the report and its HTML, or the field errors."""
    try:
        report = run_test(form, owner)
    except TooManyTests as exc:
        return jsonify(ok=False, error="rate_limited", message=str(exc)), 429
    if report is None:
        errors = {f.name: str(f.errors[0]) for f in form if f.errors}  # lazy texts, as text
        return jsonify(ok=False, errors=errors), 422
    html = render_template("mailconnect/_test_result.html", report=report)
    return jsonify(**report.as_dict(), html=html)


def _may_act(page: ConnectPage) -> None:
    if not state().policy.can(actor(), "manage", page.owner):
        abort(404)


def _oauth_owner(page: ConnectPage) -> tuple[str, str] | None:
    """The owner the "Connect with ..." buttons post (``None``: the person's own account)."""
    me = actor()
    return None if me is not None and page.owner == me.owner else tuple(page.owner)  # type: ignore[return-value]


def _render(page: ConnectPage, form: ConnectForm, **kw: Any) -> Any:
    return render_connect(
        form, test_url=page.test_url, owner_label=page.owner_label, cancel_url=page.back_url,
        crumbs=list(page.crumbs), oauth_owner=_oauth_owner(page), **kw,
    )  # fmt: skip


def detect_for(email: str) -> Detection:
    """Detection for the signed-in person: the catalogue and the cache always, the network
    within their look-up budget (``detect_window``: this server asks DNS and web hosts about a
    name the visitor chose). Before asking the network (up to ``MAILCONNECT_DETECT_TIMEOUT``)
    the request's read-only transaction ends: waiting on DNS and web servers holds none of the
    host's database connections."""
    me = actor()
    who = me.id if me else ""

    def network() -> bool:
        if not state().detect_window.take(who):
            return False
        _end_read_transaction()
        return True

    return run_detect(email, network=network)


def _end_read_transaction() -> None:
    """Give the request's database connection back to the pool while the session holds no
    change (so far it has only read: the person, their permissions)."""
    session = state().session
    if session.new or session.dirty or session.deleted:
        return  # the host's pending change: not ours to commit or drop
    session.commit()  # nothing to write: ends the transaction, returns the connection


def fill_from(form: ConnectForm, found: Detection) -> None:
    """The no-JS details step: provider, login and servers from ``found`` (fields not shown
    yet, so nothing typed is lost)."""
    form.provider.data = found.provider.key if found.provider else "other"
    form.username.data = found.username or ""
    for proto, (port, security) in (("smtp", (587, "starttls")), ("imap", (993, "ssl"))):
        server = getattr(found, proto)
        host, port, security = (server.host, server.port, server.security) if server else (
            "", port, security)  # fmt: skip
        getattr(form, f"{proto}_host").data = host
        getattr(form, f"{proto}_port").data = port
        getattr(form, f"{proto}_security").data = security


def limit_text(exc: AccountLimitReached) -> str:
    """MAILCONNECT_MAX_ACCOUNTS reached, for the page (the exception's own text names the
    owner kind by its key, which only reads well in English)."""
    return ngettext(
        "There is already %(num)d email account here, the most allowed. Disconnect it to "
        "connect another.",
        "There are already %(num)d email accounts here, the most allowed. Disconnect one to "
        "connect another.",
        exc.limit,
    )


def detection_message(found: Detection) -> str:
    """What the page says about ``found`` (the script shows the same words)."""
    domain = found.domain
    if found.source == "catalogue" and found.provider is not None:
        return gettext("Settings for %(name)s filled in.", name=found.provider.title)
    if not found.found:
        if found.not_asked == "busy":
            return gettext(
                "Servers for %(domain)s could not be looked up right now (this site is busy "
                "looking up others): enter them below, or try again in a moment.",
                domain=domain,
            )
        if found.not_asked == "limit":
            return gettext(
                "Servers for %(domain)s could not be looked up right now (too many look-ups "
                "in a minute): enter them below.",
                domain=domain,
            )
        return gettext(
            "No settings found for %(domain)s. Enter the servers from your email provider's "
            "help pages below.",
            domain=domain,
        )
    if found.auth == ("oauth2",) and not found.offers_oauth:
        return gettext(
            "%(domain)s asks mail apps to sign in through its own sign-in page, which this "
            "site has not set up: ask your administrator.",
            domain=domain,
        )
    if found.offers_oauth:  # the page offers the provider's button first
        # TRANSLATORS: %(source)s is one of the "from ..." phrases (where the settings came from).
        return gettext(
            "Settings for %(domain)s found %(source)s.", domain=domain, source=found.source_label
        )
    text = gettext(
        "Servers for %(domain)s found %(source)s. Check them below: any field can be changed.",
        domain=domain,
        source=found.source_label,
    )
    if found.pop3_only:
        text += " " + gettext(
            "Mail can only be read over POP3 there, which is not supported: untick Receiving "
            "or enter an IMAP server."
        )
    return text


def detection_json(found: Detection) -> dict[str, Any]:
    """``found`` for the page's script: no source attempts (those are for admins:
    ``flask mailconnect detect``), the words to show, and ``"other"`` for no provider."""
    answer = found.as_dict()
    del answer["tried"]
    answer["provider"] = answer["provider"] or "other"
    answer["message"] = detection_message(found)
    return answer


def _details(form: ConnectForm, render: Callable[..., Any]) -> Any:
    """The details step for the address in the form, filled from detection."""
    found = detect_for(form.email.data or "")
    fill_from(form, found)
    return render(form, detection=found)


def wizard(page: ConnectPage) -> Any:
    """The connect page for ``page.owner``: GET and each of its three buttons."""
    _may_act(page)
    form = ConnectForm(ports=ports())
    render = partial(_render, page)
    if request.method == "GET" or form.action != "test":
        try:  # MAILCONNECT_MAX_ACCOUNTS: the page linking here says why Connect is not offered
            accounts.check_limit(state(), page.owner)
        except AccountLimitReached as exc:
            flash(limit_text(exc), "error")
            return redirect(page.back_url)
    if request.method == "GET":
        # ?email= lets a host link straight to the details step, pre-filled.
        form.email.data = request.args.get("email", "").strip()[:320]
        if not form.email.data:
            return render(form, step="address")
        return _details(form, render)
    if form.action == "continue":
        if not form.check_email():
            return render(form, step="address", status=422)
        return _details(form, render)
    if form.action == "test":
        return page_test(form, page.owner, render)
    if not form.validate():
        return render(form, status=422)
    try:
        account = accounts.connect_manual(
            state(), owner=page.owner, settings=form.to_settings(), actor=actor(),
            display_name=form.display_name.data,
        )  # fmt: skip
    except InvalidSettings as exc:
        form.add_errors(exc.errors)
        return render(form, status=422)
    except TooManyTests as exc:
        return render(form, status=429, notice=str(exc))
    except AccountLimitReached as exc:
        return render(form, status=409, notice=limit_text(exc))
    except ConnectionTestFailed as exc:
        state().session.commit()  # the failed test stays in the audit trail
        return render(form, report=exc.report, status=422)
    state().session.commit()
    if page.owner_label:
        done = gettext(
            "Connected %(email)s for %(owner)s.", email=account.email, owner=page.owner_label
        )
    else:
        done = gettext("Connected %(email)s.", email=account.email)
    flash(done, "success")
    after_save(account)  # the newest mail, at once (queued, or bounded in this request)
    return redirect(page.done_url(account) if page.done_url else page.back_url)


def wizard_test(page: ConnectPage) -> Any:
    """The wizard's JSON Test connection (CSRF in the ``X-CSRFToken`` header, checked before
    the view by ``common._require_csrf``)."""
    _may_act(page)
    return json_test(ConnectForm(ports=ports(), meta={"csrf": False}), page.owner)


# -- detection (any signed-in user: the connect page's script) -----------------------------------


def detect() -> Any:
    """Servers for an address, for the connect page's script (any signed-in person).

    Known domains (the catalogue) and cached answers cost nothing; asking the network runs
    only for a syntactically valid, non-reserved domain and at most ``detect_window.limit``
    times per person and minute (:data:`~flask_mailconnect.runtime.DETECT_MX_PER_MINUTE`).
    Only the address is used: no password is ever sent anywhere during detection.
    """
    return jsonify(detection_json(detect_for(request.args.get("email", "")[:320])))
