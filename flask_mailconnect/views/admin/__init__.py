"""Admin pages: providers, every account, a person's accounts (on their behalf), the audit trail.

Every view here is wrapped in :func:`~flask_mailconnect.views.common.admin_required` (the
policy's ``admin`` action; others get 403 with a page inside the host layout saying an
administrator is needed, before anything is loaded; the suite checks that no admin endpoint
lacks it). Routes that touch one account also check ``manage`` on its owner
through :mod:`flask_mailconnect.accounts`.

- :mod:`.providers`: admin-entered providers;
- :mod:`.accounts`: every account, the Active flag;
- :mod:`.people`: a person's accounts, connect for them, hand-over;
- :mod:`.audit`: the audit trail;
- :mod:`.lists`: keyset pages and owner names the lists share.
"""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, render_template

from ...exceptions import MissingUserHook
from ..common import AdminRequired
from . import accounts, audit, people, providers
from .lists import cached_url, owner_label, owner_url, page_url


def install(bp: Blueprint) -> None:
    add = bp.add_url_rule
    both = ["GET", "POST"]
    post = ["POST"]
    add("/admin/", "admin_index", accounts.admin_index)
    add("/admin/providers", "admin_providers", providers.providers)
    add("/admin/providers/new", "admin_provider_new", providers.provider_new, methods=both)
    add("/admin/providers/<mc_id:provider_id>", "admin_provider", providers.provider_edit,
        methods=both)  # fmt: skip
    add("/admin/providers/<mc_id:provider_id>/toggle", "admin_provider_toggle",
        providers.provider_toggle, methods=post)  # fmt: skip
    add("/admin/providers/<mc_id:provider_id>/delete", "admin_provider_delete",
        providers.provider_delete, methods=both)  # fmt: skip
    add("/admin/accounts", "admin_accounts", accounts.admin_accounts)
    add("/admin/accounts/<mc_id:account_id>/deactivate", "admin_account_deactivate",
        accounts.account_deactivate, methods=post)  # fmt: skip
    add("/admin/accounts/<mc_id:account_id>/reactivate", "admin_account_reactivate",
        accounts.account_reactivate, methods=post)  # fmt: skip
    add("/admin/users", "admin_users", people.admin_users)
    add("/admin/users/<user_id>", "admin_user", people.admin_user)
    add("/admin/users/<user_id>/connect", "admin_user_connect", people.user_connect, methods=both)
    add("/admin/users/<user_id>/connect/test", "admin_user_connect_test",
        people.user_connect_test, methods=post)  # fmt: skip
    add("/admin/users/<user_id>/handover", "admin_user_handover", people.user_handover,
        methods=post)  # fmt: skip
    add("/admin/audit", "admin_audit", audit.admin_audit)
    # App-wide: the account card (on every page showing accounts) and the admin lists use them.
    bp.add_app_template_global(people.handover_provider, "mailconnect_handover_provider")
    bp.add_app_template_global(owner_label, "mailconnect_owner_label")
    bp.add_app_template_global(owner_url, "mailconnect_owner_url")
    bp.add_app_template_global(cached_url, "mailconnect_admin_url")  # the admin layout's links
    bp.add_app_template_global(page_url, "mailconnect_page_url")  # the admin pager's
    bp.add_app_template_global(audit.describe, "mailconnect_describe")
    # The two pages that answer "who may see this" before any page runs: not an administrator,
    # and a host whose user objects need a hook (no ``id`` / name) to be told apart.
    bp.register_error_handler(AdminRequired, admin_required_page)
    bp.register_error_handler(MissingUserHook, missing_user_hook_page)


def admin_required_page(exc: AdminRequired) -> tuple[str, int]:
    """403 inside the host layout: an administrator is needed. In debug mode the page also
    tells the developer which hook decides (``@mailconnect.admin_checker``)."""
    return render_template("mailconnect/admin_required.html", debug=current_app.debug), 403


def missing_user_hook_page(exc: MissingUserHook) -> tuple[str, int]:
    """The host's user objects need a hook (``@mailconnect.user_id`` / ``user_label``): a page
    inside the host layout naming it (the code to add shows in debug mode; always logged),
    instead of an AttributeError's bare 500."""
    logging.getLogger("flask_mailconnect").error("%s", exc)
    page = render_template(
        "mailconnect/setup_error.html", message=str(exc), debug=current_app.debug
    )
    return page, 500


__all__ = ["admin_required_page", "install", "missing_user_hook_page"]
