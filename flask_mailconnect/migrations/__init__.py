"""The Alembic migration chain of the extension's tables (``mailconnect_*``).

The host never autogenerates our tables: it runs ours, ``flask mailconnect db upgrade`` (or
:func:`upgrade` from Python), which keeps its own version table,
:data:`VERSION_TABLE`, beside the host's ``alembic_version``. The host's own autogenerate
(Flask-Migrate's ``flask db migrate``) must then leave our tables alone, or it would offer to drop
them: pass :func:`include_object` to it, e.g. ``Migrate(app, db, include_object=include_object)``.

Revisions live in ``versions/`` and use the stored column types only (``sa.Text`` for an
encrypted column, ``sa.DateTime`` for a UTC one), so they never depend on our Python types.
``create_all()`` stays for tests and demos; a database made with it can be adopted with
``flask mailconnect db stamp 0001_initial`` when it matches the first release.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa

from ..exceptions import MigrationError
from ..models import MailAccount
from ..runtime import current_runtime

if TYPE_CHECKING:
    from alembic.config import Config
    from flask import Flask

#: Alembic's version table for our chain (the host's own stays ``alembic_version``).
VERSION_TABLE = "mailconnect_alembic_version"
#: Every table of ours starts with this; :func:`include_object` keys on it, so tables dropped by
#: a later revision are still recognised as ours.
TABLE_PREFIX = "mailconnect_"
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
    """Alembic ``include_object`` for the HOST's autogenerate: ``False`` for our tables and
    everything in them (and for our version table), ``True`` for the rest.

    With Flask-Migrate: ``Migrate(app, db, include_object=include_object)``; in a plain Alembic
    ``env.py``: ``context.configure(..., include_object=include_object)``.
    """
    return not _table_name(obj, name, type_).startswith(TABLE_PREFIX)


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


def engine() -> sa.engine.Engine:
    """The engine our tables live on (the host's ``db``, honouring a bind for our metadata)."""
    bind = current_runtime().session.get_bind(mapper=sa.inspect(MailAccount))
    return bind if isinstance(bind, sa.engine.Engine) else bind.engine


@contextmanager
def _connection(app: Flask | None) -> Iterator[sa.engine.Connection]:
    # engine() is evaluated inside the app context the first item entered.
    with app.app_context() if app is not None else nullcontext(), engine().begin() as connection:
        yield connection


def _run(app: Flask | None, work: Callable[[Config], T]) -> T:
    with _connection(app) as connection:
        return work(alembic_config(connection))


def current(app: Flask | None = None) -> str | None:
    """The revision the database is at (``None``: our migrations never ran on it)."""
    from alembic.migration import MigrationContext

    with _connection(app) as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def head() -> str:
    """The newest revision shipped with the package."""
    from alembic.script import ScriptDirectory

    found = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert found is not None
    return found


def upgrade(app: Flask | None = None, revision: str = "head") -> None:
    """Bring our tables up to ``revision`` (default: the newest), in the app's database.

    Call inside an app context or pass the app. Refuses, with :class:`MigrationError` naming
    the fix, a database whose tables were made without our migrations (``create_all()``, or a
    host's own generated migration).
    """
    from alembic import command

    def work(config: Config) -> None:
        connection = config.attributes["connection"]
        names = set(sa.inspect(connection).get_table_names())
        if MailAccount.__tablename__ in names and VERSION_TABLE not in names:
            raise MigrationError(
                "The mailconnect_* tables exist but our migrations never ran on this database "
                "(made by create_all() or by a migration of the host's). If they match the first "
                "release, run `flask mailconnect db stamp 0001_initial` (Python: "
                "flask_mailconnect.migrations.stamp(app, '0001_initial')), then upgrade again."
            )
        command.upgrade(config, revision)

    _run(app, work)


def downgrade(app: Flask | None = None, revision: str = "-1") -> None:
    """Take our tables back to ``revision`` (``-1``: one step; ``base``: drop them all)."""
    from alembic import command

    _run(app, lambda config: command.downgrade(config, revision))


def stamp(app: Flask | None = None, revision: str = "head") -> None:
    """Record ``revision`` as applied without running anything (adopt existing tables)."""
    from alembic import command

    _run(app, lambda config: command.stamp(config, revision))


__all__ = [
    "SCRIPT_LOCATION",
    "TABLE_PREFIX",
    "VERSION_TABLE",
    "alembic_config",
    "current",
    "downgrade",
    "head",
    "include_object",
    "only_ours",
    "stamp",
    "upgrade",
]
