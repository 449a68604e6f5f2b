"""The lazily loaded views (views/routes.py): the table names every route, hook, error page and
template helper the view modules used to register themselves, and each name resolves.

``EXPECTED`` is the URL map the blueprint had when each view module added its own routes
(captured before the table existed): a route lost, renamed or given other methods fails here.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from flask import Flask

from flask_mailconnect.views import routes
from flask_mailconnect.views.routes import LazyView

#: (endpoint, rule under the default ``/email`` prefix, methods besides HEAD and OPTIONS).
EXPECTED = {
    ('account', '/email/accounts/<mc_id:account_id>', ('GET', 'POST')),
    ('admin_account_deactivate', '/email/admin/accounts/<mc_id:account_id>/deactivate', ('POST',)),
    ('admin_account_reactivate', '/email/admin/accounts/<mc_id:account_id>/reactivate', ('POST',)),
    ('admin_accounts', '/email/admin/accounts', ('GET',)),
    ('admin_audit', '/email/admin/audit', ('GET',)),
    ('admin_index', '/email/admin/', ('GET',)),
    ('admin_provider', '/email/admin/providers/<mc_id:provider_id>', ('GET', 'POST')),
    ('admin_provider_delete', '/email/admin/providers/<mc_id:provider_id>/delete', ('GET', 'POST')),
    ('admin_provider_new', '/email/admin/providers/new', ('GET', 'POST')),
    ('admin_provider_toggle', '/email/admin/providers/<mc_id:provider_id>/toggle', ('POST',)),
    ('admin_providers', '/email/admin/providers', ('GET',)),
    ('admin_user', '/email/admin/users/<user_id>', ('GET',)),
    ('admin_user_connect', '/email/admin/users/<user_id>/connect', ('GET', 'POST')),
    ('admin_user_connect_test', '/email/admin/users/<user_id>/connect/test', ('POST',)),
    ('admin_user_handover', '/email/admin/users/<user_id>/handover', ('POST',)),
    ('admin_users', '/email/admin/users', ('GET',)),
    ('connect', '/email/connect', ('GET', 'POST')),
    ('detect', '/email/detect', ('GET',)),
    ('disconnect', '/email/accounts/<mc_id:account_id>/disconnect', ('GET', 'POST')),
    ('folders', '/email/accounts/<mc_id:account_id>/folders', ('GET', 'POST')),
    ('index', '/email/', ('GET',)),
    ('message', '/email/accounts/<mc_id:account_id>/messages/<path:folder>/<mc_uid:uid>', ('GET',)),
    ('notifications', '/email/accounts/<mc_id:account_id>/notifications', ('POST',)),
    ('oauth_callback', '/email/oauth/<provider>/callback', ('GET',)),
    ('oauth_start', '/email/oauth/<provider>/start', ('POST',)),
    ('oauth_test', '/email/accounts/<mc_id:account_id>/oauth/test', ('POST',)),
    ('organization', '/email/organization/', ('GET',)),
    ('reconnect', '/email/accounts/<mc_id:account_id>/reconnect', ('GET', 'POST')),
    ('reconnect_test', '/email/accounts/<mc_id:account_id>/reconnect/test', ('POST',)),
    ('scope', '/email/scopes/<kind>/', ('GET',)),
    ('scope_connect', '/email/scopes/<kind>/<owner_id>/connect', ('GET', 'POST')),
    ('scope_connect_test', '/email/scopes/<kind>/<owner_id>/connect/test', ('POST',)),
    ('scope_disconnect_all', '/email/scopes/<kind>/disconnect-all', ('GET', 'POST')),
    ('static', '/email/static/<path:filename>', ('GET',)),
    ('sync', '/email/accounts/<mc_id:account_id>/sync', ('POST',)),
    ('test_connection', '/email/connect/test', ('POST',)),
}  # fmt: skip


def _resolve(target: str) -> Any:
    module, name = target.split(":")
    return getattr(import_module(f"flask_mailconnect.views.{module}"), name)


def _targets() -> list[str]:
    return [
        *(target for _rule, _endpoint, target, _methods in routes.ROUTES),
        *routes.BEFORE_REQUEST,
        *routes.AFTER_REQUEST,
        *(target for _exc, target in routes.ERROR_PAGES),
        *(target for _name, target in routes.TEMPLATE_FILTERS),
        *(target for _name, target in routes.TEMPLATE_GLOBALS),
        *(target for _name, target in routes.TEMPLATE_CONTEXT),
    ]


def test_every_name_in_the_table_is_a_function_of_that_module() -> None:
    for target in _targets():
        assert callable(_resolve(target)), target
    for _rule, endpoint, target, _methods in routes.ROUTES:
        view = _resolve(target)  # defined there (admin views keep theirs through @wraps)
        assert view.__module__ == "flask_mailconnect.views." + target.split(":")[0], endpoint


def test_the_url_map_is_the_one_the_views_registered(app: Flask) -> None:
    found = {
        (
            rule.endpoint.split(".", 1)[1],
            rule.rule,
            tuple(sorted(rule.methods - {"HEAD", "OPTIONS"})),
        )
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("mailconnect.")
    }
    assert found == EXPECTED
    assert app.url_map.converters["mc_id"].__name__ == "IdConverter"
    assert app.url_map.converters["mc_uid"].__name__ == "UidConverter"


def test_hooks_and_error_pages_run_in_the_old_order(app: Flask) -> None:
    """OAuth's signed-out callback first (before the login redirect would carry the code),
    then who is acting, then CSRF; each registration loads the function the table names."""

    def names(funcs: list[Any]) -> list[str]:
        return [f.target for f in funcs]

    assert names(app.before_request_funcs["mailconnect"]) == [
        "oauth:_callback_signed_out", "common:_require_actor", "common:_require_csrf",
    ]  # fmt: skip
    assert names(app.after_request_funcs["mailconnect"]) == [
        "common:_no_store", "oauth:_callback_no_referrer",
    ]  # fmt: skip
    handlers = app.error_handler_spec["mailconnect"]
    registered = {exc: view for by_code in handlers.values() for exc, view in by_code.items()}
    for exc, target in routes.ERROR_PAGES:
        assert isinstance(registered[exc], LazyView)
        assert registered[exc].load() is _resolve(target)
    for name, target in (*routes.TEMPLATE_FILTERS, *routes.TEMPLATE_GLOBALS):
        helper = {**app.jinja_env.filters, **app.jinja_env.globals}[name]
        assert helper.load() is _resolve(target)


def test_a_lazy_view_answers_like_the_view(app: Flask) -> None:
    """Through the table, a page and the template helpers render as before: the settings page
    of a signed-in person (its OAuth buttons come from the context processor's lazy names)."""
    client = app.test_client()
    client.post("/test-login/1")
    page = client.get("/email/")
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"  # common's _no_store, an after_request
    assert client.get("/email/accounts/99999999999999999999").status_code == 404  # mc_id


def test_a_loaded_lazy_view_reads_as_its_view() -> None:
    """Tools that read ``app.view_functions`` (API docs, sitemaps) see the view's own name,
    module and docstring, and reach it through ``__wrapped__`` once it is loaded."""
    from flask_mailconnect.views.user import index

    lazy = LazyView("user:index")
    assert (lazy.__module__, lazy.__name__, lazy.__doc__) == (index.__module__, "index", None)
    assert lazy.load() is index
    assert lazy.__wrapped__ is index and lazy.__doc__ == index.__doc__


def test_no_lazy_template_helper_asks_jinja_for_its_context() -> None:
    """Jinja reads ``@pass_context`` (and its kin) off the callable it is given: a LazyView
    only carries the marker once loaded, so the first page would call such a helper without
    its context. A helper that needs one is registered eagerly, not through these tables."""
    targets = [t for _, t in routes.TEMPLATE_FILTERS + routes.TEMPLATE_GLOBALS]
    targets += [t for _, t in routes.TEMPLATE_CONTEXT]
    marked = [t for t in targets if hasattr(LazyView(t).load(), "jinja_pass_arg")]
    assert marked == []
