"""What the admin lists share: keyset pages, owners named in one call per page, row links.

Lists use keyset pagination on the primary key and a fixed number of queries per page, however
many rows exist or how many owners they have: the people among the owners on a page are loaded
from the host in one call (``@users_getter``; without it, one query on the host's user model,
see :func:`load_people`), the projects among them through the scope's ``list()`` once.
Per-row links are built from a pattern made once per page (:func:`..links.link_pattern`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
from flask import current_app, g, url_for

from ...i18n import gettext
from ..common import is_admin, query_id, state

log = logging.getLogger(__name__)


def page_size() -> int:
    return max(1, int(current_app.config["MAILCONNECT_ADMIN_PAGE_SIZE"]))


def keyset(
    model: Any,
    where: list[Any] | Callable[[], list[Any]],
    columns: Sequence[Any] = (),
    *,
    shape: Hashable = None,
    params: Mapping[str, Any] | None = None,
) -> tuple[list[Any], int | None, int | None]:
    """One page of ``model`` rows, newest first: ``(rows, older_cursor, newer_cursor)``.

    ``?after=ID`` pages to older rows, ``?before=ID`` to newer ones; each is one indexed range
    scan on the primary key, as fast on the last page as on the first. ``columns`` (``id``
    among them): read only those, as plain rows with attribute access, not model instances
    (what a list shows; building fifty full instances was a good part of its time).

    ``shape``: the page's statement is built once per process and ``shape`` (with the page
    size and direction) and reused: ``where`` is then a function returning clauses whose values
    are bind parameters (``sa.bindparam``), their values in ``params``, and ``columns`` are
    table columns. Building the statement and its cache key was a good part of a page's time.
    """
    size = page_size()
    after, before = query_id("after"), query_id("before")
    direction = "before" if before is not None else "after" if after is not None else ""
    if shape is not None:
        key = (model, shape, tuple(columns), direction, size)
        query = _statements.get(key)
        if query is None:
            query = _page_statement(model, where, columns, direction, size, bound=True)
            if len(_statements) < _STATEMENTS_MAX:
                _statements[key] = query
        values = dict(params or {})
        if direction:
            values["mc_cursor"] = before if before is not None else after
        # Table columns name no mapper: without it the host's default database would run it.
        found = state().session.execute(query, values, bind_arguments={"mapper": model})
        rows = list(found.all())
    else:
        query = _page_statement(model, where, columns, direction, size, bound=False)
        if direction == "before":
            query = query.where(model.id > before)
        elif direction == "after":
            query = query.where(model.id < after)
        session = state().session
        rows = list(session.execute(query).all() if columns else session.scalars(query))
    if direction == "before":
        has_newer = len(rows) > size
        rows = list(reversed(rows[:size]))
        older = rows[-1].id if rows else None
        return rows, older, rows[0].id if rows and has_newer else None
    has_older = len(rows) > size
    rows = rows[:size]
    older = rows[-1].id if rows and has_older else None
    newer = rows[0].id if rows and direction == "after" else None
    return rows, older, newer


#: ``{(model, shape, columns, direction, size): statement}`` for :func:`keyset` (bounded: a shape
#: names which filters a list applies, not their values).
_statements: dict[Hashable, Any] = {}
_STATEMENTS_MAX = 512


def _page_statement(
    model: Any,
    where: list[Any] | Callable[[], list[Any]],
    columns: Sequence[Any],
    direction: str,
    size: int,
    *,
    bound: bool,
) -> Any:
    """The select of one page, newest first (oldest first for ``before``, reversed by the
    caller); ``bound``: with the cursor as the ``mc_cursor`` bind parameter."""
    query = sa.select(*columns) if columns else sa.select(model)
    query = query.where(*(where() if callable(where) else where))
    ident = model.__table__.c.id if bound else model.id
    cursor = sa.bindparam("mc_cursor", type_=sa.Integer())
    if direction == "before":
        if bound:
            query = query.where(ident > cursor)
        return query.order_by(ident.asc()).limit(size + 1)
    if direction == "after" and bound:
        query = query.where(ident < cursor)
    return query.order_by(ident.desc()).limit(size + 1)


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
        label = hooks.label_of(user) if user is not None else gettext("user %(id)s", id=ident)
    elif kind == "organization":
        label = gettext("Organization")  # as the scope filter and the scope page name it
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


def _host_model_batch(ids: list[str]) -> dict[str, Any] | None:
    """The batched default without ``@users_getter``: when the signed-in person is an instance
    of a SQLAlchemy-mapped class with a one-column primary key (a Flask-SQLAlchemy ``User``),
    everyone on the page is loaded with one ``IN`` query on that class. ``None`` when the host's
    users are something else (the caller then asks ``@user_getter`` per person)."""
    who = g.get("mailconnect_actor") or state().hooks.current_actor()
    user = getattr(who, "user", None)
    getter = getattr(user, "_get_current_object", None)  # Flask-Login's current_user proxy
    user = getter() if callable(getter) else user
    mapper = sa.inspect(type(user), raiseerr=False) if user is not None else None
    if mapper is None or not hasattr(mapper, "primary_key"):
        return None
    mapper = mapper.base_mapper  # every kind of user when the host's model is polymorphic
    if len(mapper.primary_key) != 1:
        return None
    column = mapper.primary_key[0]
    attr = mapper.get_property_by_column(column).key
    try:
        kind = column.type.python_type
    except NotImplementedError:
        kind = str
    keys = []
    for ident in ids:
        try:
            keys.append(kind(ident))
        except (TypeError, ValueError):  # an id this table cannot hold: nobody
            continue
    if not keys:
        return {}
    found = state().session.scalars(sa.select(mapper.class_).where(column.in_(keys)))
    return {str(getattr(u, attr)): u for u in found}


def load_people(ids: Iterable[str]) -> dict[str, Any]:
    """``{id: user}`` for the people with these ids, in one call: the host's
    ``@users_getter``; without it, one query on the host's user model
    (:func:`_host_model_batch`); failing that, ``@user_getter`` per person."""
    wanted = list(dict.fromkeys(str(i) for i in ids))
    hooks = state().hooks
    if not wanted:
        return {}
    if hooks.users_getter is None:
        found = _host_model_batch(wanted)
        if found is not None:
            return found
    return hooks.get_users(wanted)


def _prime_scopes(owners: list[tuple[str, str]], labels: dict[tuple[str, str], str]) -> None:
    """Name the shared owners (projects...) of a page: a scope with two or more of them on the
    page is listed once (its ``list()``) instead of loaded once per owner."""
    by_kind: dict[str, set[str]] = {}
    for kind, ident in owners:
        if kind not in ("user", "organization") and (kind, ident) not in labels:
            by_kind.setdefault(kind, set()).add(ident)
    hooks = state().hooks
    for kind, idents in by_kind.items():
        scope = hooks.scopes.get(kind)
        if scope is None or scope.list is None or len(idents) < 2:
            continue  # owner_label loads the one there is, when the page asks
        try:
            listed = {str(scope.ident(obj)): obj for obj in scope.list()}
        except Exception:  # a host listing failing must not break the admin list
            log.warning("%s scope list() failed; naming its owners one by one", kind)
            continue
        for ident in idents:
            obj = listed.get(ident)
            labels[(kind, ident)] = (
                f"{getattr(scope, 'name', kind.capitalize())}: {scope.label(obj)}"
                if obj is not None
                else f"{kind} {ident}"
            )


def prime_owner_labels(
    owners: Iterable[tuple[str | None, str | None]], actors: Iterable[str | None] = ()
) -> None:
    """Load the people among ``owners`` (names) and ``actors`` (whether each is an admin) in
    one call (:func:`load_people`), and the projects among them once per scope, so that a page
    naming a thousand owners asks the host a fixed number of times, not once per row."""
    labels: dict[tuple[str, str], str] = g.setdefault("_mailconnect_owner_labels", {})
    admins: dict[str, bool] = g.setdefault("_mailconnect_actor_admin", {})
    pairs = [(str(k), str(i)) for k, i in owners if k and i]
    _prime_scopes(pairs, labels)
    owner_ids = [i for k, i in pairs if k == "user" and ("user", i) not in labels]
    actor_ids = [i for i in actors if i and i not in admins]
    if not owner_ids and not actor_ids:
        return
    hooks = state().hooks
    found = load_people([*owner_ids, *actor_ids])
    for ident in owner_ids:
        user = found.get(ident)
        labels[("user", ident)] = (
            hooks.label_of(user) if user is not None else gettext("user %(id)s", id=ident)
        )
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


class Person(NamedTuple):
    """How the admin pages show a person: the host's label and, beside it, their address."""

    id: str
    label: str
    email: str | None  #: ``None`` when the host's user has none, or the label is it

    @classmethod
    def of(cls, user: Any) -> Person:
        hooks = state().hooks
        label = hooks.label_of(user)
        email = getattr(user, "email", None)
        email = email if isinstance(email, str) and "@" in email else None
        if email is not None and label.strip().lower() == email.lower():
            # The default label is the address: show the person's name beside it instead.
            name = next(
                (
                    str(v)
                    for v in (getattr(user, a, None) for a in ("name", "full_name", "display_name"))
                    if isinstance(v, str) and v.strip()
                ),
                None,
            )
            if name is None:
                return cls(hooks.id_of(user), label, None)
            label = name
        return cls(hooks.id_of(user), label, email)


def owner_url(kind: str, ident: str) -> str | None:
    if kind == "user":
        return url_for("mailconnect.admin_user", user_id=ident)
    return None
