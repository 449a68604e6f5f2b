"""The Alembic migration chain of the extension's tables (``mailconnect_*``).

The host never autogenerates our tables: it runs ours, ``flask mailconnect db upgrade`` (or
:func:`upgrade` from Python), which keeps its own version table,
:data:`VERSION_TABLE`, beside the host's ``alembic_version``. The host's own autogenerate
(Flask-Migrate's ``flask db migrate``) must then leave our tables alone, or it would offer to drop
them: pass :func:`include_object` to it, e.g. ``Migrate(app, db, include_object=include_object)``.

Revisions live in ``versions/`` and use the stored column types only (``sa.Text`` for an
encrypted column, ``sa.DateTime`` for a UTC one), so they never depend on our Python types.

``upgrade``, ``downgrade``, ``stamp`` and :func:`create_all` hold a per-database lock
(``lock.py``) and read the current revision inside it, so every worker of a deployment may run
``db upgrade`` at start. :func:`create_all` (``MailConnect.create_all()``,
``flask mailconnect init-db``) builds the newest schema and records it as ``head``; tables made
by an older ``create_all`` without that record are adopted by :func:`upgrade` when they match
the newest schema, and otherwise it names the fix.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa

from ..exceptions import MigrationError
from ..models import metadata
from ..runtime import current_runtime
from .lock import locked

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from flask import Flask

log = logging.getLogger("flask_mailconnect.migrations")

#: Alembic's version table for our chain (the host's own stays ``alembic_version``).
VERSION_TABLE = "mailconnect_alembic_version"
#: Tables a later revision dropped, still ours for :func:`include_object` on databases that
#: have not run that revision yet. Add a name here when a revision drops a table.
RETIRED_TABLES: frozenset[str] = frozenset()
#: Exactly the tables :func:`include_object` hides from the host's autogenerate: our models'
#: tables, the retired ones and our version table. A host table whose name merely starts with
#: ``mailconnect_`` is the host's.
TABLES: frozenset[str] = frozenset(metadata.tables) | RETIRED_TABLES | {VERSION_TABLE}
#: The folder holding ``env.py``, ``script.py.mako`` and ``versions/``.
SCRIPT_LOCATION = str(Path(__file__).parent)

T = TypeVar("T")


def _table_name(obj: Any, name: str | None, type_: str) -> str:
    if type_ == "table":
        return name or ""
    table = getattr(obj, "table", None)  # columns, indexes, constraints: their table
    return getattr(table, "name", "") or ""


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Alembic ``include_object`` for the HOST's autogenerate: ``False`` for our tables
    (:data:`TABLES`) and everything in them, ``True`` for the rest.

    With Flask-Migrate: ``Migrate(app, db, include_object=include_object)``; in a plain Alembic
    ``env.py``: ``context.configure(..., include_object=include_object)``.
    """
    return _table_name(obj, name, type_) not in TABLES


def only_ours(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """The inverse, for OUR autogenerate: the host's tables are not ours to compare."""
    return not include_object(obj, name, type_, reflected, compare_to)


def alembic_config(connection: sa.engine.Connection | None = None) -> Config:
    """An Alembic :class:`~alembic.config.Config` for our chain (no ini file needed);
    ``env.py`` runs on ``connection`` when given."""
    from alembic.config import Config  # deferred: Alembic is only needed when migrating

    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = connection
    return config


@functools.cache
def _scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def engine() -> sa.engine.Engine:
    """The engine our tables live on (the host's ``db``, honouring a bind for our metadata:
    :meth:`~flask_mailconnect.runtime.Runtime.engine`)."""
    return current_runtime().engine()


@contextmanager
def _connection(app: Flask | None, *, lock: bool = True) -> Iterator[sa.engine.Connection]:
    """A connection in a transaction, holding the migration lock unless ``lock`` is False."""
    # engine() is evaluated inside the app context the first item entered.
    with app.app_context() if app is not None else nullcontext(), engine().connect() as connection:
        if not lock:
            with connection.begin():
                yield connection
            return
        with locked(connection):
            yield connection


def _run(app: Flask | None, work: Callable[[Config], T]) -> T:
    with _connection(app) as connection:
        return work(alembic_config(connection))


def _current(connection: sa.engine.Connection) -> str | None:
    from alembic.migration import MigrationContext

    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def current(app: Flask | None = None) -> str | None:
    """The revision the database is at (``None``: our migrations never ran on it)."""
    with _connection(app, lock=False) as connection:
        return _current(connection)


def head() -> str:
    """The newest revision shipped with the package."""
    found = _scripts().get_current_head()
    assert found is not None
    return found


def revisions() -> list[str]:
    """Every revision shipped, oldest first."""
    return [script.revision for script in reversed(list(_scripts().walk_revisions()))]


def differences(connection: sa.engine.Connection) -> list[Any]:
    """What Alembic's autogenerate finds between our tables on ``connection`` and the models
    (``[]``: they are the newest schema). Host tables are ignored."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    opts = {"compare_type": True, "include_object": only_ours, "version_table": VERSION_TABLE}
    return list(compare_metadata(MigrationContext.configure(connection, opts=opts), metadata))


def _ours_present(connection: sa.engine.Connection) -> set[str]:
    return set(sa.inspect(connection).get_table_names()) & set(metadata.tables)


def _stamp_head(connection: sa.engine.Connection) -> None:
    """Record ``head`` whatever the version table held (no env.py run: this is cheap, and
    ``create_all`` runs in every test and demo start)."""
    from alembic.migration import MigrationContext

    if sa.inspect(connection).has_table(VERSION_TABLE):
        connection.execute(sa.delete(sa.table(VERSION_TABLE)))
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    context.stamp(_scripts(), "head")


def _describe(found: list[Any], limit: int = 3) -> str:
    shown = "; ".join(repr(item)[:160] for item in found[:limit])
    return shown + (f"; and {len(found) - limit} more" if len(found) > limit else "")


def upgrade(app: Flask | None = None, revision: str = "head") -> bool:
    """Bring our tables up to ``revision`` (default: the newest), in the app's database.

    Call inside an app context or pass the app. Safe to run from several processes at once.
    Tables made without our migrations (``create_all()`` of an older version, a host's own
    generated migration) are adopted when they are exactly the newest schema: the database is
    recorded as ``head`` and ``True`` returned (``False`` otherwise). When they differ,
    :class:`MigrationError` says which revision to stamp.
    """
    from alembic import command

    def work(config: Config) -> bool:
        connection = config.attributes["connection"]
        if _current(connection) is None and _ours_present(connection):
            found = differences(connection)
            if not found:
                _stamp_head(connection)
                log.warning(
                    "The mailconnect_* tables had no recorded revision but match the newest "
                    "schema: recorded them as %s.",
                    head(),
                )
                return True
            raise MigrationError(
                "The mailconnect_* tables exist but our migrations never ran on this database "
                "(made by create_all() or init-db of an older version, or by a migration of "
                "the host's), and they differ from this version's schema: "
                f"{_describe(found)}. Record the revision they match with "
                "`flask mailconnect db stamp REVISION` (Python: "
                "flask_mailconnect.migrations.stamp(app, REVISION)), head if this version "
                "created them, then upgrade again. Revisions, oldest first: "
                f"{', '.join(revisions())}."
            )
        command.upgrade(config, revision)
        return False

    return _run(app, work)


def downgrade(app: Flask | None = None, revision: str = "-1") -> None:
    """Take our tables back to ``revision`` (``-1``: one step; ``base``: drop them all)."""
    from alembic import command

    _run(app, lambda config: command.downgrade(config, revision))


def stamp(app: Flask | None = None, revision: str = "head") -> None:
    """Record ``revision`` as applied without running anything (adopt existing tables)."""
    from alembic import command

    _run(app, lambda config: command.stamp(config, revision))


def create_all(app: Flask | None = None) -> None:
    """Create the newest schema's missing tables and record it as ``head`` (tests, demos,
    ``flask mailconnect init-db``); idempotent, under the migration lock.

    - None of our tables yet: create them all, record ``head``.
    - Already at ``head``: create any missing table (a test that dropped them).
    - At an older revision: :func:`upgrade` to ``head`` instead (creating tables would leave
      the existing ones without the newer columns).
    - Tables without a recorded revision: create the missing ones, and record ``head`` only
      when the whole is then the newest schema (otherwise :func:`upgrade` explains).
    """
    from alembic import command

    def work(config: Config) -> None:
        connection = config.attributes["connection"]
        present = _ours_present(connection)
        found = _current(connection)
        if found is not None and present and found != head():
            command.upgrade(config, "head")
            return
        metadata.create_all(connection)
        if found == head():
            return
        if found is None and present and differences(connection):
            log.warning(
                "create_all(): the existing mailconnect_* tables are not the newest schema; "
                "run `flask mailconnect db upgrade` to see what to do."
            )
            return
        _stamp_head(connection)

    _run(app, work)


__all__ = [
    "SCRIPT_LOCATION",
    "RETIRED_TABLES",
    "TABLES",
    "VERSION_TABLE",
    "alembic_config",
    "create_all",
    "current",
    "differences",
    "downgrade",
    "head",
    "include_object",
    "only_ours",
    "revisions",
    "stamp",
    "upgrade",
]
