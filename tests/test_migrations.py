"""Our Alembic chain (flask_mailconnect/migrations): it builds exactly the models' schema on
SQLite, PostgreSQL and MariaDB, keeps data across upgrades, goes down and up again, and a host's
own autogenerate (configured as Flask-Migrate configures Alembic) leaves our tables alone."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from flask_mailconnect import (
    MailAccount,
    MailConnect,
    MigrationError,
    include_object,
    metadata,
    migrations,
)
from flask_mailconnect.columns import open_secret
from flask_mailconnect.crypto import build_cipher
from tests.conftest import database_urls
from tests.hostapp import TEST_KEY

FIRST = "0001_initial"


def _label(url: str) -> str:
    return url.split(":", 1)[0].split("+", 1)[0]


class HostBase(DeclarativeBase):
    pass


def _wipe(engine: sa.engine.Engine) -> None:
    """Drop every table of this test database (ours, the version tables, the host's)."""
    found = sa.MetaData()
    found.reflect(engine)
    found.drop_all(engine)


def _make_app(url: str) -> tuple[Flask, SQLAlchemy]:
    app = Flask(__name__)
    app.config.update(SQLALCHEMY_DATABASE_URI=url, MAILCONNECT_ENCRYPTION_KEYS=[TEST_KEY])
    db = SQLAlchemy(model_class=HostBase)
    db.init_app(app)
    MailConnect(app, db=db)
    return app, db


@pytest.fixture(params=database_urls(), ids=_label)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database holding nothing: a fresh SQLite file, or a server database emptied."""
    url = request.param
    if url == "sqlite://":
        url = f"sqlite:///{tmp_path / 'host.db'}"
    engine = sa.create_engine(url)
    _wipe(engine)
    yield url
    _wipe(engine)
    engine.dispose()


@pytest.fixture
def app(db_url: str) -> Iterator[Flask]:
    app, db = _make_app(db_url)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _diff(app: Flask) -> list[Any]:
    """What autogenerate would change to make the database match the models."""
    with app.app_context(), migrations.engine().connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "include_object": migrations.only_ours,
                "version_table": migrations.VERSION_TABLE,
            },
        )
        return compare_metadata(context, metadata)


def _tables(app: Flask) -> set[str]:
    with app.app_context():
        return set(sa.inspect(migrations.engine()).get_table_names())


def test_models_and_migrations_agree(app: Flask) -> None:
    """Upgraded to head, the database is exactly the models (autogenerate finds nothing)."""
    migrations.upgrade(app)
    assert migrations.current(app) == migrations.head()
    assert set(metadata.tables) <= _tables(app)
    assert _diff(app) == []


def test_compare_is_not_vacuous(app: Flask) -> None:
    """The comparison above sees a difference when there is one: at the first revision with a
    column dropped by hand, it reports it."""
    migrations.upgrade(app, FIRST)
    with app.app_context(), migrations.engine().begin() as connection:
        connection.execute(
            sa.text(
                "DROP INDEX ix_mailconnect_audit_event_action"
                + (" ON mailconnect_audit_event" if connection.dialect.name == "mysql" else "")
            )
        )
    ops = [op[0] for op in _diff(app) if isinstance(op, tuple)]
    assert "add_index" in ops


def test_own_version_table(app: Flask) -> None:
    migrations.upgrade(app)
    names = _tables(app)
    assert migrations.VERSION_TABLE in names
    assert "alembic_version" not in names  # the host's own table is never touched


def _rows(now: datetime, token: str) -> dict[str, list[dict[str, Any]]]:
    """A row for every table of the first release (columns as that schema has them)."""
    base = {"created_at": now, "updated_at": now}
    account = {
        "owner_kind": "user", "owner_id": "42", "auth_method": "password",
        "email": "ana@example.test", "username": "ana@example.test", "password": token,
        "smtp_host": "smtp.example.test", "smtp_port": 587, "smtp_security": "starttls",
        "imap_host": "imap.example.test", "imap_port": 993, "imap_security": "ssl",
        "display_name": "Ana", "signature_html": "<p>Ana</p>", "signature_text": "Ana",
        "notify_email": True, "notify_mobile": False, "is_default": True,
        "token_scopes": "", "send_via": "smtp", "active": True, "status": "connected",
        "last_success_at": now, **base,
    }  # fmt: skip
    return {
        "mailconnect_provider": [
            {
                "id": 1,
                "key": "acme",
                "name": "Acme Mail",
                "enabled": True,
                "service_type": "imap_smtp",
                "smtp_host": "smtp.acme.test",
                "smtp_port": 587,
                "smtp_security": "starttls",
                "imap_host": "imap.acme.test",
                "imap_port": 993,
                "imap_security": "ssl",
                "login_format": "email",
                "auth_method": "password",
                "client_id": "",
                "client_secret": None,
                "has_client_secret": False,
                "authorize_url": "",
                "token_url": "",
                "revoke_url": "",
                "userinfo_url": "",
                "server_metadata_url": "",
                "scopes": "",
                "receives": True,
                "sends": True,
                **base,
            },
            # An admin-entered provider that took an old built-in alias keeps its accounts.
            {
                "id": 2,
                "key": "microsoft365",
                "name": "Our Exchange",
                "enabled": True,
                "service_type": "imap_smtp",
                "smtp_host": "mail.corp.test",
                "smtp_port": 587,
                "smtp_security": "starttls",
                "imap_host": "mail.corp.test",
                "imap_port": 993,
                "imap_security": "ssl",
                "login_format": "email",
                "auth_method": "password",
                "client_id": "",
                "client_secret": None,
                "has_client_secret": False,
                "authorize_url": "",
                "token_url": "",
                "revoke_url": "",
                "userinfo_url": "",
                "server_metadata_url": "",
                "scopes": "",
                "receives": True,
                "sends": True,
                **base,
            },
        ],  # fmt: skip
        "mailconnect_provider_domain": [{"id": 1, "provider_id": 1, "domain": "acme.test"}],
        "mailconnect_account": [
            {"id": 1, "provider": "gmail", **account},
            {"id": 2, "provider": "acme", **account, "email": "ana@acme.test"},
            {"id": 3, "provider": "microsoft365", **account, "email": "ana@corp.test"},
        ],
        "mailconnect_send_claim": [
            {"id": 1, "account_id": 1, "message_id": "<m1@example.test>", "state": "sent", **base}
        ],
        "mailconnect_synced_message": [
            {
                "id": 1,
                "account_id": 1,
                "uid": 7,
                "message_id": "<m2@example.test>",
                "sender": "Bo <bo@example.test>",
                "subject": "Hallo",
                "sent_at": now,
                "snippet": "Hi",
                "flags": "\\Seen",
                "pinned": False,
            }
        ],  # fmt: skip
        "mailconnect_audit_event": [
            {
                "id": 1,
                "created_at": now,
                "action": "connect",
                "outcome": "ok",
                "actor_id": "42",
                "actor_label": "Ana",
                "account_id": 1,
                "account_email": "ana@example.test",
                "owner_kind": "user",
                "owner_id": "42",
                "detail": "",
                "remote_addr": "192.0.2.1",
            }
        ],  # fmt: skip
        "mailconnect_oauth_state": [{"id": 1, "key": "state-1", "value": token, "expires_at": now}],
    }


def _read(app: Flask, rows: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """The same columns read back, by id."""
    found: dict[str, list[dict[str, Any]]] = {}
    with app.app_context(), migrations.engine().connect() as connection:
        for name, wanted in rows.items():
            table = sa.Table(name, sa.MetaData(), autoload_with=connection)
            columns = [table.c[key] for key in wanted[0]]
            result = connection.execute(sa.select(*columns).order_by(table.c.id))
            found[name] = [dict(row._mapping) for row in result]
    return found


def test_upgrade_from_first_release_keeps_every_row(app: Flask) -> None:
    """Rows in every table at 0001 survive the upgrade to head; stored provider aliases become
    the built-in keys (not an admin provider's); the encrypted password still decrypts; the
    downgrade writes the aliases back."""
    migrations.upgrade(app, FIRST)
    now = datetime(2026, 5, 4, 3, 2, 1)  # naive UTC, whole seconds: what every backend keeps
    token = build_cipher([TEST_KEY]).encrypt(b"s3cret").decode("ascii")
    rows = _rows(now, token)
    with app.app_context(), migrations.engine().begin() as connection:
        for name, values in rows.items():
            table = sa.Table(name, sa.MetaData(), autoload_with=connection)
            connection.execute(table.insert(), values)

    migrations.upgrade(app)

    found = _read(app, rows)
    expected = {name: [dict(r) for r in values] for name, values in rows.items()}
    expected["mailconnect_account"][0]["provider"] = "google"
    assert found == expected
    with app.app_context():
        session = app.extensions["mailconnect"].session
        account = session.get(MailAccount, 1)
        assert (account.provider, account.last_success_at.tzinfo is not None) == ("google", True)
        assert open_secret(session.scalar(sa.select(MailAccount.password).filter_by(id=1))) == (
            "s3cret"
        )
        assert session.get(MailAccount, 3).provider == "microsoft365"  # the admin's provider
        session.remove()

    migrations.downgrade(app, FIRST)
    back = _read(app, rows)
    assert back["mailconnect_account"][0]["provider"] == "gmail"
    assert back == {name: [dict(r) for r in values] for name, values in rows.items()}


def test_down_and_up_again(app: Flask) -> None:
    migrations.upgrade(app)
    migrations.downgrade(app, "base")
    assert migrations.current(app) is None
    assert not {t for t in _tables(app) if t != migrations.VERSION_TABLE}
    migrations.upgrade(app)
    assert migrations.current(app) == migrations.head()
    assert _diff(app) == []


def test_tables_made_by_create_all_are_adopted_with_stamp(app: Flask) -> None:
    """``create_all()`` tables are not silently migrated: upgrade says how to adopt them."""
    with app.app_context():
        app.extensions["mailconnect"].facade.create_all()
    with pytest.raises(MigrationError, match="db stamp 0001_initial"):
        migrations.upgrade(app)
    migrations.stamp(app, FIRST)
    assert migrations.current(app) == FIRST


def test_cli_upgrade_current_downgrade(app: Flask) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(args=["mailconnect", "db", "current"])
    assert result.exit_code == 0 and result.output.startswith("none (newest: ")
    result = runner.invoke(args=["mailconnect", "db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert migrations.head() in result.output
    result = runner.invoke(args=["mailconnect", "db", "downgrade", FIRST])
    assert result.exit_code == 0 and f"at {FIRST}" in result.output
    result = runner.invoke(args=["mailconnect", "db", "downgrade", "base"])
    assert result.exit_code == 0 and "base (none)" in result.output


def test_cli_upgrade_explains_create_all_tables(app: Flask) -> None:
    with app.app_context():
        app.extensions["mailconnect"].facade.create_all()
    result = app.test_cli_runner().invoke(args=["mailconnect", "db", "upgrade"])
    assert result.exit_code == 1
    assert "flask mailconnect db stamp 0001_initial" in result.output
    assert "Traceback" not in result.output


def test_revisions_need_none_of_our_python_types() -> None:
    """The host bug: a generated migration named flask_mailconnect.columns.EncryptedText without
    importing it. Ours use the stored types only."""
    for path in (Path(migrations.SCRIPT_LOCATION) / "versions").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "EncryptedText(" not in text and "UTCDateTime(" not in text, path.name
        assert "flask_mailconnect.columns" not in text and "models" not in text, path.name


def test_include_object() -> None:
    table = sa.Table("mailconnect_account", sa.MetaData(), sa.Column("id", sa.Integer))
    host = sa.Table("post", sa.MetaData(), sa.Column("id", sa.Integer))
    assert include_object(table, "mailconnect_account", "table", True, None) is False
    assert include_object(table.c.id, "id", "column", True, None) is False
    assert include_object(None, migrations.VERSION_TABLE, "table", True, None) is False
    assert include_object(host, "post", "table", True, None) is True
    assert include_object(host.c.id, "id", "column", False, None) is True


# -- a host with Flask-SQLAlchemy, an app factory and Flask-Migrate's way of running Alembic ----

#: Flask-Migrate's env.py template (``flask db init``), trimmed to what runs online: it passes
#: the extra arguments of ``Migrate(app, db, **kwargs)`` (kept as ``configure_args``) to
#: ``context.configure``. The host's one documented line is
#: ``Migrate(app, db, include_object=include_object)``.
HOST_ENV = """
from alembic import context
from flask import current_app

config = context.config


def get_engine():
    return current_app.extensions["migrate"].db.engine


def run_migrations_online():
    def process_revision_directives(context, revision, directives):
        pass

    conf_args = current_app.extensions["migrate"].configure_args
    if conf_args.get("process_revision_directives") is None:
        conf_args["process_revision_directives"] = process_revision_directives
    connectable = get_engine()
    with connectable.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=current_app.extensions["migrate"].db.metadata,
            **conf_args
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
"""


def _host_factory(url: str, **migrate_args: Any) -> Flask:
    """The host's ``create_app()``: its own model, our extension through ``init_app``."""

    class Base(DeclarativeBase):  # a fresh one per app, as each host process has
        pass

    db = SQLAlchemy(model_class=Base)

    class Post(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "host_post"
        id: Mapped[int] = mapped_column(primary_key=True)
        title: Mapped[str] = mapped_column(sa.String(200))

    mailconnect = MailConnect()
    app = Flask(__name__)
    app.config.update(SQLALCHEMY_DATABASE_URI=url, MAILCONNECT_ENCRYPTION_KEYS=[TEST_KEY])
    db.init_app(app)
    mailconnect.init_app(app, db=db)

    class MigrateConfig:  # what Migrate(app, db, **kwargs) stores in app.extensions["migrate"]
        def __init__(self, db: SQLAlchemy, **kwargs: Any) -> None:
            self.db, self.configure_args = db, kwargs

    app.extensions["migrate"] = MigrateConfig(db, **migrate_args)
    return app


def _host_alembic(folder: Path) -> Config:
    """``flask db init``'s result: a script directory with the host's env.py."""
    command.init(Config(str(folder.parent / "alembic.ini")), str(folder), template="generic")
    (folder / "env.py").write_text(textwrap.dedent(HOST_ENV), encoding="utf-8")
    config = Config()
    config.set_main_option("script_location", str(folder))
    config.set_main_option("path_separator", "os")
    return config


def test_host_autogenerate_leaves_our_tables_alone(db_url: str, tmp_path: Path) -> None:
    """The host runs our migrations, then its own ``flask db migrate`` + ``upgrade``: the
    generated revision creates the host's table and names none of ours (no drop, no create),
    and after the host's upgrade its next autogenerate is empty."""
    app = _host_factory(db_url, include_object=include_object)
    folder = tmp_path / "migrations"
    config = _host_alembic(folder)
    try:
        migrations.upgrade(app)  # flask mailconnect db upgrade
        with app.app_context():
            command.revision(config, message="first", autogenerate=True, rev_id="host1")
            text = (folder / "versions" / "host1_first.py").read_text(encoding="utf-8")
            assert "op.create_table('host_post'" in text
            assert "mailconnect" not in text
            command.upgrade(config, "head")  # flask db upgrade
            command.revision(config, message="second", autogenerate=True, rev_id="host2")
            second = (folder / "versions" / "host2_second.py").read_text(encoding="utf-8")
            assert "op." not in second.replace("op.f(", "")  # nothing to do: only "pass"
        assert {"alembic_version", migrations.VERSION_TABLE, "host_post"} <= _tables(app)
        assert _diff(app) == []
    finally:
        with app.app_context():
            app.extensions["migrate"].db.engine.dispose()


def test_host_autogenerate_without_include_object_would_drop_ours(
    db_url: str, tmp_path: Path
) -> None:
    """Why the docs insist: without the hook the host's autogenerate offers to drop our
    tables (so the test above is not vacuous)."""
    app = _host_factory(db_url)  # Migrate(app, db): no include_object
    folder = tmp_path / "migrations"
    config = _host_alembic(folder)
    try:
        migrations.upgrade(app)
        with app.app_context():
            command.revision(config, message="first", autogenerate=True, rev_id="host1")
        text = (folder / "versions" / "host1_first.py").read_text(encoding="utf-8")
        assert "op.drop_table('mailconnect_account')" in text
    finally:
        with app.app_context():
            app.extensions["migrate"].db.engine.dispose()


def test_version_files_are_shipped() -> None:
    """The chain is in the package (wheel): env.py, the template and the revisions."""
    folder = Path(migrations.SCRIPT_LOCATION)
    assert (folder / "env.py").is_file() and (folder / "script.py.mako").is_file()
    names = sorted(p.name for p in (folder / "versions").glob("0*.py"))
    assert names[:2] == ["0001_initial.py", "0002_provider_keys.py"]
    assert os.path.basename(migrations.SCRIPT_LOCATION) == "migrations"
