"""The manual connect wizard, written once for every owner.

Three routes show it: the signed-in person's own account (``/connect``), a scope owner's such
as a project or the organisation (``/scopes/<kind>/<id>/connect``), and an admin connecting
for a person (``/admin/users/<id>/connect``). Each describes its owner and the page around the
wizard in a :class:`ConnectPage`; :func:`wizard` does the rest: the address step, "Continue"
without JavaScript, Test connection (in the page and as JSON), saving through
:func:`flask_mailconnect.accounts.connect_manual`. Also the ``/detect`` endpoint the page's
script asks which provider an address belongs to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request

from .. import accounts
from ..exceptions import AccountLimitReached, ConnectionTestFailed, InvalidSettings, TooManyTests
from ..forms import ConnectForm
from ..models import MailAccount
from ..owners import Owner
from ..providers import current_catalog, detect_provider
from ..transport.settings import ConnectionReport
from .admin_forms import _DOMAIN
from .common import actor, ports, state


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
    **page: Any,
) -> Any:
    """``connect.html``: the wizard, or the reconnect form of ``account``. ``page``:
    ``owner_label``, ``cancel_url`` and ``crumbs`` when the route has them."""
    return render_template(
        "mailconnect/connect.html",
        form=form,
        report=report,
        step=step,
        account=account,
        presets=presets(),
        test_url=test_url,
        notice=notice,
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
        errors = {f.name: f.errors[0] for f in form if f.errors}
        return jsonify(ok=False, errors=errors), 422
    html = render_template("mailconnect/_test_result.html", report=report)
    return jsonify(**report.as_dict(), html=html)


def _may_act(page: ConnectPage) -> None:
    if not state().policy.can(actor(), "manage", page.owner):
        abort(404)


def _render(page: ConnectPage, form: ConnectForm, **kw: Any) -> Any:
    return render_connect(
        form, test_url=page.test_url, owner_label=page.owner_label, cancel_url=page.back_url,
        crumbs=list(page.crumbs), **kw,
    )  # fmt: skip


def wizard(page: ConnectPage) -> Any:
    """The connect page for ``page.owner``: GET and each of its three buttons."""
    _may_act(page)
    form = ConnectForm(ports=ports())
    render = partial(_render, page)
    if request.method == "GET" or form.action != "test":
        try:  # MAILCONNECT_MAX_ACCOUNTS: the page linking here says why Connect is not offered
            accounts.check_limit(state(), page.owner)
        except AccountLimitReached as exc:
            flash(str(exc), "error")
            return redirect(page.back_url)
    if request.method == "GET":
        # ?email= lets a host link straight to the details step, pre-filled.
        form.email.data = request.args.get("email", "").strip()
        if not form.email.data:
            return render(form, step="address")
        form.prefill()
        return render(form)
    if form.action == "continue":
        if not form.check_email():
            return render(form, step="address", status=422)
        form.prefill()
        return render(form)
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
        return render(form, status=409, notice=str(exc))
    except ConnectionTestFailed as exc:
        state().session.commit()  # the failed test stays in the audit trail
        return render(form, report=exc.report, status=422)
    state().session.commit()
    whom = f" for {page.owner_label}" if page.owner_label else ""
    flash(f"Connected {account.email}{whom}.", "success")
    return redirect(page.done_url(account) if page.done_url else page.back_url)


def wizard_test(page: ConnectPage) -> Any:
    """The wizard's JSON Test connection (CSRF in the ``X-CSRFToken`` header, checked before
    the view by ``common._require_csrf``)."""
    _may_act(page)
    return json_test(ConnectForm(ports=ports(), meta={"csrf": False}), page.owner)


# -- detection (any signed-in user: the connect page's script) -----------------------------------


def detect() -> Any:
    """Provider for an address, for the connect page's script (any signed-in person).

    Admin and preset domains answer without any lookup. The MX fallback makes this server ask
    DNS about a name the visitor chose, so it runs only for a syntactically valid domain, at
    most ``detect_window.limit`` times per person and minute (the runtime's
    :data:`~flask_mailconnect.runtime.DETECT_MX_PER_MINUTE`), and answers (negative ones too)
    are cached (``MAILCONNECT_MX_CACHE_SECONDS``).
    """
    email = request.args.get("email", "")[:320]
    if "@" not in email:
        return jsonify(provider="other", source="none")
    found, source = detect_provider(email, use_mx=False)
    domain = email.rpartition("@")[2].strip().lower().rstrip(".")
    if source == "none" and _DOMAIN.match(domain) and state().detect_window.take(actor().id):
        found, source = detect_provider(email)
    return jsonify(provider=found.key, name=found.title, source=source)


def install(bp: Blueprint) -> None:
    bp.add_url_rule("/detect", "detect", detect)
