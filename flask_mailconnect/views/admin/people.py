"""People: find a person, see their accounts, connect one for them or hand one over.

An admin connects a password account for a person with the one connect wizard
(:mod:`..connect`): the admin types the password the person gave them for a shared mailbox, or
for a server the person cannot reach. An OAuth account is connected by the admin signing in at
the provider for the person ("Connect with Google" on their page, while
``MAILCONNECT_ADMIN_OAUTH_ON_BEHALF`` is on), or handed over: the admin names the provider and
the address, the person gives consent themselves.

People are named by the host's ``@user_label`` with their address beside it (``user.email``).
"""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, g, redirect, render_template, url_for

from ... import accounts
from ...exceptions import AccountLimitReached, InvalidSettings, PermissionDenied
from ...i18n import gettext
from ...models import AccountStatus, MailAccount
from ...owners import Owner
from ...providers import current_catalog
from ...scopes import valid_owner
from ..admin_forms import ActionForm, HandoverForm, _Choice
from ..common import actor, admin_required, search_text, state
from ..connect import ConnectPage, limit_text, wizard, wizard_test
from .lists import Person, page_size


@admin_required
def admin_users() -> Any:
    q = search_text("q")  # the host's @user_search never sees more than SEARCH_MAX characters
    hooks = state().hooks
    found = hooks.search_users(q, page_size()) if q else []
    people = [Person.of(u) for u in found]
    return render_template(
        "mailconnect/admin/users.html", q=q, people=people, searchable=hooks.user_search is not None
    )


def _user_owner(user_id: str) -> tuple[Owner, Any]:
    """The person's owner key and host user; 404 unless they exist and the actor may see or
    manage their accounts. An id no account could belong to (over 64 characters, control
    characters) never reaches the host's ``@user_getter``."""
    if not valid_owner(("user", user_id)):
        abort(404)
    user = state().hooks.get_user(user_id)
    if user is None:
        abort(404)
    # The host's own id for them, not the URL's spelling ("01" for 1): accounts stored under
    # another spelling would belong to nobody the host knows.
    owner: Owner = ("user", str(state().hooks.id_of(user)))
    if not state().policy.can(actor(), "manage", owner) and not state().policy.can(
        actor(), "view", owner
    ):
        abort(404)
    return owner, user


def _handover_form() -> HandoverForm:
    form = HandoverForm()
    form.provider.choices = [_Choice(k, p.name) for k, p in current_catalog().oauth().items()]
    return form


def _user_page(user_id: str, handover: HandoverForm | None = None, status: int = 200) -> Any:
    owner, user = _user_owner(user_id)
    person = Person.of(user)
    return render_template(
        "mailconnect/admin/user.html",
        user_id=user_id,
        owner=owner,
        person=person,
        user_label=person.label,
        accounts=accounts.accounts_for(state(), owner),
        can_manage=state().policy.can(actor(), "manage", owner),
        # "Connect with Google" for them: the admin signs in at the provider on their behalf.
        on_behalf=accounts.may_consent_for(state(), actor(), owner),
        manage_own=current_app.config.get("MAILCONNECT_USERS_CAN_MANAGE_OWN", True),
        handover=handover or _handover_form(),
        action_form=ActionForm(),
    ), status


@admin_required
def admin_user(user_id: str) -> Any:
    return _user_page(user_id)


@admin_required
def user_handover(user_id: str) -> Any:
    owner, user = _user_owner(user_id)
    form = _handover_form()
    if not form.validate_on_submit():
        return _user_page(user_id, form, 422)
    try:
        account = accounts.create_handover(
            state(), owner=owner, provider=form.provider.data or "",
            email=form.email.data or "", actor=actor(),
        )  # fmt: skip
    except InvalidSettings as exc:
        for name, message in exc.errors.items():
            field = getattr(form, name, form.email)
            field.errors = [*field.errors, message]
        return _user_page(user_id, form, 422)
    except PermissionDenied:
        abort(404)
    except AccountLimitReached as exc:
        form.email.errors = [*form.email.errors, limit_text(exc)]
        return _user_page(user_id, form, 422)
    state().session.commit()
    flash(
        gettext(
            "Created %(email)s. %(person)s sees “Complete authorization” on their email page "
            "and signs in with the provider themselves.",
            email=account.email,
            person=Person.of(user).label,
        ),
        "success",
    )
    return redirect(url_for(".admin_user", user_id=user_id))


def _connect_page(user_id: str) -> ConnectPage:
    """The wizard for ``user_id``'s own account; done, back to their page."""
    owner, user = _user_owner(user_id)
    label = Person.of(user).label
    back = url_for(".admin_user", user_id=user_id)
    return ConnectPage(
        owner=owner,
        test_url=url_for(".admin_user_connect_test", user_id=user_id),
        back_url=back,
        crumbs=((gettext("People"), url_for(".admin_users")), (label, back)),
        owner_label=label,
    )


@admin_required
def user_connect(user_id: str) -> Any:
    return wizard(_connect_page(user_id))


@admin_required
def user_connect_test(user_id: str) -> Any:
    return wizard_test(_connect_page(user_id))  # testing logs in as them: ``manage``


def handover_provider(account: MailAccount) -> Any:
    """The OAuth provider with which the owner completes a hand-over, or ``None``."""
    if account.status != AccountStatus.PENDING_AUTHORIZATION:
        return None
    if "mailconnect.oauth_start" not in current_app.view_functions:
        return None
    who = g.get("mailconnect_actor") or state().hooks.current_actor()
    if not state().policy.can_complete_handover(who, account):
        return None  # only its owner completes it: an admin never gives consent for them
    provider = current_catalog().for_account(account)
    return provider if provider.offers_oauth and provider.enabled else None
