"""What the admin lists share: keyset pages, and owners named once per distinct owner.

Lists use keyset pagination on the primary key and a fixed number of queries per page, however
many rows exist; the people among the owners on a page are loaded from the host in one call.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from flask import current_app, g, url_for

from ..common import is_admin, query_id, state


def page_size() -> int:
    return max(1, int(current_app.config["MAILCONNECT_ADMIN_PAGE_SIZE"]))


def keyset(model: Any, where: list[Any]) -> tuple[list[Any], int | None, int | None]:
    """One page of ``model`` rows, newest first: ``(rows, older_cursor, newer_cursor)``.

    ``?after=ID`` pages to older rows, ``?before=ID`` to newer ones; each is one indexed range
    scan on the primary key, as fast on the last page as on the first.
    """
    size = page_size()
    after, before = query_id("after"), query_id("before")
    query = sa.select(model).where(*where)
    if before is not None:
        query = query.where(model.id > before).order_by(model.id.asc()).limit(size + 1)
        rows = list(state().session.scalars(query))
        has_newer = len(rows) > size
        rows = list(reversed(rows[:size]))
        older = rows[-1].id if rows else None
        return rows, older, rows[0].id if rows and has_newer else None
    if after is not None:
        query = query.where(model.id < after)
    rows = list(state().session.scalars(query.order_by(model.id.desc()).limit(size + 1)))
    has_older = len(rows) > size
    rows = rows[:size]
    older = rows[-1].id if rows and has_older else None
    newer = rows[0].id if rows and after is not None else None
    return rows, older, newer


# -- owner names (host callbacks, once per distinct owner on the page) --------------------------


def owner_label(kind: str, ident: str) -> str:
    cache: dict[tuple[str, str], str] = g.setdefault("_mailconnect_owner_labels", {})
    key = (kind, ident)
    if key in cache:
        return cache[key]
    hooks = state().hooks
    label = f"{kind} {ident}"
    if kind == "user":
        user = hooks.get_user(ident)
        label = hooks.label_of(user) if user is not None else f"user {ident}"
    elif kind == "organization":
        label = "Organization"  # as the scope filter and the scope page name it
    else:
        scope = hooks.scopes.get(kind)
        if scope is not None:
            try:
                obj = scope.load(ident)
            except Exception:  # a host loader failing must not break the admin list
                obj = None
            if obj is not None:
                label = f"{getattr(scope, 'name', kind.capitalize())}: {scope.label(obj)}"
    cache[key] = label
    return label


def prime_owner_labels(
    owners: Iterable[tuple[str | None, str | None]], actors: Iterable[str | None] = ()
) -> None:
    """Load the people among ``owners`` (names) and ``actors`` (whether each is an admin) in
    one ``get_users`` call (``@users_getter`` when the host has it), so that a page naming a
    thousand people asks the host once, not once per row."""
    labels: dict[tuple[str, str], str] = g.setdefault("_mailconnect_owner_labels", {})
    admins: dict[str, bool] = g.setdefault("_mailconnect_actor_admin", {})
    owner_ids = [i for k, i in owners if k == "user" and i and ("user", i) not in labels]
    actor_ids = [i for i in actors if i and i not in admins]
    if not owner_ids and not actor_ids:
        return
    hooks = state().hooks
    found = hooks.get_users([*owner_ids, *actor_ids])
    for ident in owner_ids:
        user = found.get(ident)
        labels[("user", ident)] = hooks.label_of(user) if user is not None else f"user {ident}"
    for ident in actor_ids:
        user = found.get(ident)
        who = hooks.actor_for(user) if user is not None else None
        admins[ident] = bool(who is not None and is_admin(who))


def actor_is_admin(actor_id: str) -> bool:
    """Whether the person behind an audit event is an admin (now): only admins are called
    "admin" in the trail; a project manager acting on their project's account is not."""
    cache: dict[str, bool] = g.setdefault("_mailconnect_actor_admin", {})
    if actor_id not in cache:
        prime_owner_labels([("user", actor_id)], actors=[actor_id])
    return cache.get(actor_id, False)


def owner_url(kind: str, ident: str) -> str | None:
    if kind == "user":
        return url_for("mailconnect.admin_user", user_id=ident)
    return None
