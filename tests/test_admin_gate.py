"""The admin pages' one gate: ``@admin_required`` (views/common.py) on every admin view.

Admin pages used to be protected by the prefix of their endpoint name; now each view carries
the decorator, and this suite fails when an admin page is added without it. What the gate
answers to each person is in the permission matrix (tests/test_permissions.py).
"""

from __future__ import annotations

import pytest
from flask import Flask, g
from werkzeug.exceptions import NotFound

from flask_mailconnect.views.common import ADMIN_ONLY, admin_required
from tests import hostapp

#: Admin endpoints that exist today (a renamed or lost one must not go unnoticed).
KNOWN = {
    "admin_index", "admin_providers", "admin_provider_new", "admin_provider",
    "admin_provider_toggle", "admin_provider_delete", "admin_accounts",
    "admin_account_deactivate", "admin_account_reactivate", "admin_users", "admin_user",
    "admin_user_connect", "admin_user_connect_test", "admin_user_handover", "admin_audit",
}  # fmt: skip


def test_every_admin_endpoint_carries_admin_required(app: Flask) -> None:
    """Every endpoint named ``admin_*``, under ``/admin/`` or defined in views/admin/ carries
    the decorator's marker; no other page does (``/detect`` and the rest check the object they
    touch instead)."""
    prefix = app.config["MAILCONNECT_URL_PREFIX"].rstrip("/") + "/admin/"
    gated, missing, stray = set(), set(), set()
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("mailconnect."):
            continue
        name = rule.endpoint.split(".", 1)[1]
        view = app.view_functions[rule.endpoint]
        marked = getattr(view, ADMIN_ONLY, False) is True
        if (
            name.startswith("admin_")
            or rule.rule.startswith(prefix)
            or ".views.admin." in view.__module__
        ):
            gated.add(name)
            if not marked:
                missing.add(name)
        elif marked:
            stray.add(name)
    assert missing == set()
    assert stray == set()
    assert gated == KNOWN


@pytest.mark.parametrize(("user_id", "allowed"), [(1, False), (3, True)])
def test_admin_required_answers_404_to_everyone_but_admins(
    app: Flask, user_id: int, allowed: bool
) -> None:
    """The decorator decides by the policy's ``admin`` action, whatever the view is called."""
    calls: list[str] = []

    @admin_required
    def anything() -> str:
        calls.append("ran")
        return "ok"

    assert getattr(anything, ADMIN_ONLY) is True and anything.__name__ == "anything"
    with app.test_request_context():
        user = hostapp.db.session.get(hostapp.User, user_id)
        g.mailconnect_actor = app.extensions["mailconnect"].hooks.actor_for(user)
        if allowed:
            assert anything() == "ok"
        else:
            with pytest.raises(NotFound):
                anything()
    assert calls == (["ran"] if allowed else [])
