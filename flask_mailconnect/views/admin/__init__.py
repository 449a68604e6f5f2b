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

from flask import current_app, render_template

from ...exceptions import MissingUserHook
from ..routes import AdminRequired


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


__all__ = ["admin_required_page", "missing_user_hook_page"]
