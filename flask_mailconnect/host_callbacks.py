"""The host's callbacks on :class:`~flask_mailconnect.MailConnect`: decorators that store a
function on the shared :class:`~flask_mailconnect.runtime.Hooks`, owner kinds (scopes), and the
user look-ups that go through them. A mixin so that extension.py stays one screenful per part
(modules < 500 lines)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from .owners import Scope
from .runtime import Hooks

F = TypeVar("F", bound=Callable[..., Any])


class HostCallbacks:
    """Mixed into :class:`~flask_mailconnect.MailConnect`, which sets ``hooks``."""

    #: The host's callbacks and scopes, shared with every app's runtime.
    hooks: Hooks

    # -- host callbacks (decorators return the function, like Flask-Login's) -----------------

    def user_loader(self, func: F) -> F:
        """``() -> user | None``: the person using the pages (default: Flask-Login)."""
        self.hooks.user_loader = func
        return func

    def admin_checker(self, func: F) -> F:
        """``(user) -> bool``: may this user manage other people's accounts?"""
        self.hooks.admin_checker = func
        return func

    def user_label(self, func: F) -> F:
        """``(user) -> str``: how a user is named in pages and the audit trail."""
        self.hooks.user_label = func
        return func

    def user_id(self, func: F) -> F:
        """``(user) -> str``: the id personal accounts are stored under (default ``get_id()``)."""
        self.hooks.user_id = func
        return func

    def user_search(self, func: F) -> F:
        """``(query: str, limit: int) -> list of users``: find people for the admin pages."""
        self.hooks.user_search = func
        return func

    def user_getter(self, func: F) -> F:
        """``(user_id: str) -> user | None``: load a person by the id accounts are stored under
        (admin pages: a user's accounts, names in lists and the audit trail)."""
        self.hooks.user_getter = func
        return func

    def enqueue(self, func: F) -> F:
        """``(job: str, **kwargs) -> None``: put a job on the host's queue (optional).

        ``job`` names a function of :mod:`flask_mailconnect.jobs` (today ``"sync_account"``,
        with ``account_id`` and ``limit``, when an account is saved). With RQ:
        ``queue.enqueue(f"flask_mailconnect.jobs.{job}", **kwargs)``; with Celery: call your
        task wrapping that function, ``tasks[job].delay(**kwargs)``. Without this callback
        (or when it raises) the work runs in the request, bounded in time
        (``MAILCONNECT_SYNC_ON_SAVE_TIMEOUT``).
        """
        self.hooks.enqueue = func
        return func

    def users_getter(self, func: F) -> F:
        """``(user_ids: list[str]) -> {user_id: user}``: load many people at once (optional).

        The admin lists (every account, the audit trail) name one person per row: with this
        callback they load everyone on the page in one call (one query) instead of calling
        ``@user_getter`` once per person. Ids missing from the answer count as unknown.
        """
        self.hooks.users_getter = func
        return func

    def get_users(self, user_ids: Iterable[str]) -> dict[str, Any]:
        """``{id: user}`` for the ids that exist: ``@users_getter`` in one call when set, else
        ``@user_getter`` once per distinct id (``{}`` without either)."""
        return self.hooks.get_users(user_ids)

    def search_users(self, query: str, limit: int = 20) -> list[Any]:
        """People matching ``query`` through ``@user_search`` (``[]`` without the callback)."""
        return self.hooks.search_users(query, limit)

    def get_user(self, user_id: str) -> Any:
        """The person with ``user_id`` through ``@user_getter`` (``None`` without it)."""
        return self.hooks.get_user(user_id)

    def organization_access(self, func: F) -> F:
        """``(user) -> bool``: may this signed-in user see and send from the organisation's
        accounts? Default: everyone signed in."""
        self.hooks.organization_access = func
        return func

    def permission_rule(self, func: F) -> F:
        """``(actor, action, owner) -> bool | None``: decide a permission before the policy.

        Return ``True`` or ``False`` to decide, ``None`` to let the policy's rules decide.
        ``actor`` is an :class:`~flask_mailconnect.scopes.Actor` (``actor.user`` is the host's
        user), ``action`` one of ``view``, ``use``, ``manage``, ``admin``, ``owner`` a
        ``(kind, id)`` pair.
        """
        self.hooks.permission_rule = func
        return func

    def register_scope(
        self,
        kind: str,
        *,
        load: Callable[[str], Any],
        label: Callable[[Any], str] = str,
        can_manage: Callable[[Any, Any], bool] | None = None,
        can_use: Callable[[Any, Any], bool] | None = None,
        list: Callable[[], Any] | None = None,  # noqa: A002 - the documented keyword
        ident: Callable[[Any], Any] | None = None,
        title: str = "",
        title_plural: str = "",
    ) -> Scope:
        """Declare an owner kind of the host, such as ``"project"``.

        ``load(id) -> obj | None`` finds one (``id`` is a string); ``label(obj) -> str`` names
        it in pages; ``can_manage(user, obj)`` and ``can_use(user, obj)`` decide who may
        connect/disconnect and who may send from its accounts (admins always manage);
        ``list() -> iterable of obj`` feeds the scope's settings page (every row, eager-load
        what ``can_manage`` and ``label`` read); ``ident(obj)`` gives its id (default
        ``obj.id``); ``title`` / ``title_plural`` name the kind ("Project", "Projects").
        """
        if kind in ("user", "organization") or not kind.isidentifier() or len(kind) > 32:
            raise ValueError(f"cannot register scope {kind!r}")
        options: dict[str, Any] = {"load": load, "label": label, "list": list}
        if can_manage is not None:
            options["can_manage"] = can_manage
        if can_use is not None:
            options["can_use"] = can_use
        if ident is not None:
            options["ident"] = lambda obj: str(ident(obj))
        scope = Scope(kind=kind, title=title, title_plural=title_plural, **options)
        self.hooks.scopes[kind] = scope
        return scope


__all__ = ["HostCallbacks"]
