"""The admin pages' one gate: ``@admin_required`` (views/common.py) on every admin view.

Admin pages used to be protected by the prefix of their endpoint name; now each view carries
the decorator, and this suite fails when an admin page is added without it. What the gate
answers to each person is in the permission matrix (tests/test_permissions.py).
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, g

from flask_mailconnect.views.common import ADMIN_ONLY, AdminRequired, admin_required
from flask_mailconnect.views.routes import LazyView
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
        if isinstance(view, LazyView):  # the view itself, as its first request would load it
            view = view.load()
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
def test_admin_required_answers_403_to_everyone_but_admins(
    app: Flask, user_id: int, allowed: bool
) -> None:
    """The decorator decides by the policy's ``admin`` action, whatever the view is called;
    the view does not run for anyone else."""
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
            with pytest.raises(AdminRequired) as refused:
                anything()
            assert refused.value.code == 403
    assert calls == (["ran"] if allowed else [])


def test_non_admin_gets_the_403_page_inside_the_host_layout(app: Flask) -> None:
    """Issue 10: not a bare 404 outside the layout, but a 403 page in the host's layout that
    says an administrator is needed, for every admin page, GET or POST, existing id or not."""
    app.config["WTF_CSRF_ENABLED"] = False  # the POST's answer is the gate's, not CSRF's
    client = app.test_client()
    assert client.post("/test-login/1").status_code == 200
    for method, url in [
        ("GET", "/email/admin/"),
        ("GET", "/email/admin/accounts"),
        ("GET", "/email/admin/providers/1"),
        ("GET", "/email/admin/providers/999999"),
        ("GET", "/email/admin/users/2"),
        ("POST", "/email/admin/accounts/999999/deactivate"),
    ]:
        page = client.open(url, method=method)
        html = page.get_data(as_text=True)
        assert page.status_code == 403, url
        assert '<nav id="host-nav">' in html, url  # the host's layout
        assert "Administrator needed" in html and "an administrator is needed" in html, url


def test_admin_still_gets_404_for_what_does_not_exist(app: Flask) -> None:
    client = app.test_client()
    assert client.post("/test-login/3").status_code == 200
    assert client.get("/email/admin/providers/999999").status_code == 404
    assert client.get("/email/admin/accounts").status_code == 200


def test_admin_tabs_link_the_organisation_page(app: Flask) -> None:
    client = app.test_client()
    assert client.post("/test-login/3").status_code == 200
    html = client.get("/email/admin/accounts").get_data(as_text=True)
    assert '<a class="mc-tab" href="/email/organization/">Organization</a>' in html


def test_projects_page_links_the_organisation_page(app: Flask, mailconnect: Any) -> None:
    from tests.scopehost import DAVE, setup_scopes

    setup_scopes(app, mailconnect)
    client = app.test_client()
    assert client.post(f"/test-login/{DAVE}").status_code == 200
    page = client.get("/email/scopes/project/")
    assert page.status_code == 200
    assert '<a href="/email/scopes/organization/">the organization\'s account</a>' in (
        page.get_data(as_text=True)
    )
    assert client.get("/email/scopes/organization/").status_code == 200
