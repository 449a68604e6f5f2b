"""Every route, hook, error page and template helper of the blueprint, by name: the views load
on their first call (Flask's "Lazily Loading Views" pattern, issue 13).

``init_app`` registers everything below, so the URL map, ``url_for`` and the app-wide template
helpers are complete at start-up, but no view module is imported: a view module pulls in the
forms, the accounts package, the OAuth flow, sync and the message page, which a host's app
factory (and every worker start, every CLI command) would otherwise pay for. Each entry names
``"module:function"`` with the module relative to :mod:`flask_mailconnect.views`; the first call
imports that module once and keeps the function. This module imports nothing heavy, and the
exception classes the error handlers are registered for live here (they must exist before any
view does). tests/test_lazy_views.py checks that every name resolves and that the routes are
the ones the views had.
"""

from __future__ import annotations

import functools
from importlib import import_module
from typing import Any

from flask import Blueprint
from werkzeug.exceptions import Forbidden

from ..exceptions import MissingUserHook, PermissionDenied
from ..i18n import cached_fragment, lazy_gettext
from .converters import register_converters


class AdminRequired(Forbidden):
    """A signed-in person who is not an administrator opened an admin page: answered with 403
    and a page inside the host layout saying an administrator is needed
    (``mailconnect/admin_required.html``, ``views/admin``'s ``admin_required_page``)."""

    description = lazy_gettext("An administrator is needed for this page.")  # type: ignore[assignment]  # str when printed


GET = ("GET",)
POST = ("POST",)
BOTH = ("GET", "POST")
_ACCOUNT = "/accounts/<mc_id:account_id>"
_SCOPE_CONNECT = "/scopes/<kind>/<owner_id>/connect"

#: (rule, endpoint, "module:function", methods), in the order the views used to add them.
ROUTES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("/detect", "detect", "connect:detect", GET),
    ("/admin/", "admin_index", "admin.accounts:admin_index", GET),
    ("/admin/providers", "admin_providers", "admin.providers:providers", GET),
    ("/admin/providers/new", "admin_provider_new", "admin.providers:provider_new", BOTH),
    ("/admin/providers/<mc_id:provider_id>", "admin_provider", "admin.providers:provider_edit",
     BOTH),
    ("/admin/providers/<mc_id:provider_id>/toggle", "admin_provider_toggle",
     "admin.providers:provider_toggle", POST),
    ("/admin/providers/<mc_id:provider_id>/delete", "admin_provider_delete",
     "admin.providers:provider_delete", BOTH),
    ("/admin/accounts", "admin_accounts", "admin.accounts:admin_accounts", GET),
    ("/admin/accounts/<mc_id:account_id>/deactivate", "admin_account_deactivate",
     "admin.accounts:account_deactivate", POST),
    ("/admin/accounts/<mc_id:account_id>/reactivate", "admin_account_reactivate",
     "admin.accounts:account_reactivate", POST),
    ("/admin/users", "admin_users", "admin.people:admin_users", GET),
    ("/admin/users/<user_id>", "admin_user", "admin.people:admin_user", GET),
    ("/admin/users/<user_id>/connect", "admin_user_connect", "admin.people:user_connect", BOTH),
    ("/admin/users/<user_id>/connect/test", "admin_user_connect_test",
     "admin.people:user_connect_test", POST),
    ("/admin/users/<user_id>/handover", "admin_user_handover", "admin.people:user_handover",
     POST),
    ("/admin/audit", "admin_audit", "admin.audit:admin_audit", GET),
    ("/", "index", "user:index", GET),
    ("/connect", "connect", "user:connect", BOTH),
    ("/connect/test", "test_connection", "user:test_connection", POST),
    (_ACCOUNT, "account", "user:account", BOTH),
    (_ACCOUNT + "/reconnect", "reconnect", "user:reconnect", BOTH),
    (_ACCOUNT + "/reconnect/test", "reconnect_test", "user:reconnect_test", POST),
    (_ACCOUNT + "/disconnect", "disconnect", "user:disconnect", BOTH),
    ("/oauth/<provider>/start", "oauth_start", "oauth:start", POST),
    ("/oauth/<provider>/callback", "oauth_callback", "oauth:callback", GET),
    (_ACCOUNT + "/oauth/test", "oauth_test", "oauth:test", POST),
    ("/scopes/<kind>/", "scope", "scopes:scope_index", GET),
    ("/scopes/<kind>/disconnect-all", "scope_disconnect_all", "scopes:disconnect_all", BOTH),
    (_SCOPE_CONNECT, "scope_connect", "scopes:scope_connect", BOTH),
    (_SCOPE_CONNECT + "/test", "scope_connect_test", "scopes:scope_connect_test", POST),
    ("/organization/", "organization", "scopes:organization_index", GET),
    (_ACCOUNT + "/folders", "folders", "folders:folders", BOTH),
    (_ACCOUNT + "/sync", "sync", "folders:sync_now", POST),
    (_ACCOUNT + "/messages/<path:folder>/<mc_uid:uid>", "message", "messages:message", GET),
    (_ACCOUNT + "/notifications", "notifications", "messages:notifications", POST),
)  # fmt: skip

#: Run before each of our views, in this order: the OAuth callback's own sign-in redirect
#: first (common's login redirect would carry the callback's code in ``next``), then who is
#: acting, then CSRF.
BEFORE_REQUEST = ("oauth:_callback_signed_out", "common:_require_actor", "common:_require_csrf")
AFTER_REQUEST = ("common:_no_store", "oauth:_callback_no_referrer")
#: Exception class -> its page. ``EncryptionKeyError``'s is in the package (light already).
ERROR_PAGES: tuple[tuple[type[Exception], str], ...] = (
    (PermissionDenied, "common:_not_found"),
    (AdminRequired, "admin:admin_required_page"),
    (MissingUserHook, "admin:missing_user_hook_page"),
)
#: App-wide, so that hosts can include our partials (cards, badges) in their own pages.
TEMPLATE_FILTERS = (
    ("mailconnect_ago", "common:time_ago"),
    ("mailconnect_provider", "common:provider_name"),
    ("mailconnect_security", "common:security_label"),
)
TEMPLATE_GLOBALS = (
    # A code's stock wording (stored and produced in English) in the reader's language.
    ("mailconnect_message", "common:localize"),
    # The checkbox macro's plain case (mailconnect/_field.html), written in Python.
    ("mailconnect_checkbox", "common:checkbox_html"),
    # The account card (on every page showing accounts) and the admin lists use these.
    ("mailconnect_handover_provider", "admin.people:handover_provider"),
    ("mailconnect_owner_label", "admin.lists:owner_label"),
    ("mailconnect_owner_url", "admin.lists:owner_url"),
    ("mailconnect_url", "links:cached_url"),  # links that are the same on every request
    ("mailconnect_admin_url", "links:cached_url"),  # the same: the admin layout's name for it
    ("mailconnect_csrf_input", "common:csrf_input"),  # every form's hidden CSRF field
    ("mailconnect_page_url", "links:page_url"),  # the admin pager's
    ("mailconnect_describe", "admin.audit:describe"),
    ("mailconnect_recent_mail", "folders:recent_for"),
    ("mailconnect_new_mail_form", "messages:new_mail_form"),
)
#: What every template of the app gets (the context processor's dict, the same each time).
#: None of the template helpers may use ``@pass_context``: Jinja reads that marker off the
#: callable it holds, which a LazyView carries only once loaded (tests/test_lazy_views.py).
TEMPLATE_CONTEXT = (
    ("mailconnect_oauth_buttons", "oauth:oauth_buttons"),
    ("mailconnect_oauth_provider", "oauth:oauth_provider"),
    ("mailconnect_oauth_report", "oauth:last_report"),
    ("mailconnect_no_revoke_provider", "oauth:no_revoke_provider"),
)


class LazyView:
    """Stands for ``module:function`` of :mod:`flask_mailconnect.views`: imports the module on
    the first call and keeps the function. ``__module__`` and ``__name__`` are the target's, so
    endpoints read as before (the admin gate test looks at the module)."""

    def __init__(self, target: str) -> None:
        module, name = target.split(":")
        self.target = target
        self.__module__ = f"{__package__}.{module}"
        self.__name__ = self.__qualname__ = name
        self.__doc__ = None  # not LazyView's own: tools reading view_functions see the view's
        self._func: Any = None

    def load(self) -> Any:
        """The function itself (importing its module the first time)."""
        if self._func is None:
            module, name = self.target.split(":")
            func = getattr(import_module(f"{__package__}.{module}"), name)
            functools.update_wrapper(self, func)  # its docstring, __wrapped__, markers
            self._func = func
        return self._func

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return (self._func or self.load())(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<LazyView {self.target}>"


def register(bp: Blueprint, *, preload: bool = False) -> None:
    """Add everything above to ``bp``: converters first, as the rules use them. ``preload``
    (``MAILCONNECT_PRELOAD_VIEWS``): import each view module now, not on its first call."""

    def lazy(target: str) -> LazyView:
        view = LazyView(target)
        if preload:
            view.load()
        return view

    bp.record_once(register_converters)
    for rule, endpoint, target, methods in ROUTES:
        bp.add_url_rule(rule, endpoint, lazy(target), methods=list(methods))
    for target in BEFORE_REQUEST:
        bp.before_request(lazy(target))
    for target in AFTER_REQUEST:
        bp.after_request(lazy(target))
    for exc, target in ERROR_PAGES:
        bp.register_error_handler(exc, lazy(target))
    for name, target in TEMPLATE_FILTERS:
        bp.add_app_template_filter(lazy(target), name)
    for name, target in TEMPLATE_GLOBALS:
        bp.add_app_template_global(lazy(target), name)
    # Blocks that depend on the language alone, rendered once per app and language.
    bp.add_app_template_global(cached_fragment, "mailconnect_cached")
    context: dict[str, Any] = {name: lazy(target) for name, target in TEMPLATE_CONTEXT}
    bp.app_context_processor(lambda: context)


__all__ = ["ROUTES", "AdminRequired", "LazyView", "register"]
