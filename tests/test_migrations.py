"""Our Alembic chain (flask_mailconnect/migrations): it builds exactly the models' schema on
SQLite, PostgreSQL and MariaDB, keeps data across upgrades, goes down and up again, and a host's
own autogenerate (configured as Flask-Migrate configures Alembic) leaves our tables alone."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase

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
        assert "flask_mailconnect.columns" not in text, path.name
        assert "flask_mailconnect.models" not in text and "from ..models" not in text, path.name


def test_include_object() -> None:
    table = sa.Table("mailconnect_account", sa.MetaData(), sa.Column("id", sa.Integer))
    host = sa.Table("post", sa.MetaData(), sa.Column("id", sa.Integer))
    assert include_object(table, "mailconnect_account", "table", True, None) is False
    assert include_object(table.c.id, "id", "column", True, None) is False
    assert include_object(None, migrations.VERSION_TABLE, "table", True, None) is False
    assert include_object(host, "post", "table", True, None) is True
    assert include_object(host.c.id, "id", "column", False, None) is True


# -- a host with Flask-SQLAlchemy, an app factory and Flask-Migrate ---------------------------

#: What the blog's developer types, in order, in a shell (tests/factoryhost.py is the blog).
#: Run in a child process each time, as in real life: Flask-Migrate's generated env.py calls
#: logging.config.fileConfig, which would reconfigure this test process's loggers.
HOST_SESSION = """
import sys
from pathlib import Path

from tests.factoryhost import create_app

folder = sys.argv[1]
runner = create_app().test_cli_runner()


def flask(*args):
    result = runner.invoke(args=list(args), catch_exceptions=False)
    assert result.exit_code == 0, (args, result.output)
    print(result.output)


flask("db", "init", "-d", folder)
flask("mailconnect", "db", "upgrade")
flask("db", "migrate", "-d", folder, "-m", "blog", "--rev-id", "blog1")
flask("db", "upgrade", "-d", folder)
flask("db", "migrate", "-d", folder, "-m", "again", "--rev-id", "blog2")
"""


def _flask_db_session(url: str, tmp_path: Path, script: str = HOST_SESSION) -> tuple[Path, str]:
    """Runs ``script`` (the blog's shell session) against ``url``; returns the blog's
    versions folder and what the commands logged."""
    folder = tmp_path / "migrations"
    env = {**os.environ, "BLOG_DATABASE_URL": url, "MAILCONNECT_KEY": TEST_KEY}
    done = subprocess.run(
        [sys.executable, "-c", script, str(folder)],
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return folder / "versions", done.stdout + done.stderr


def test_flask_migrate_host_leaves_our_tables_alone(db_url: str, tmp_path: Path) -> None:
    """The real ``flask db init / migrate / upgrade`` of a Flask-Migrate app-factory host, after
    ``flask mailconnect db upgrade``: the blog's revision creates its own table and names none
    of ours, and its next ``flask db migrate`` finds nothing to do."""
    versions, logged = _flask_db_session(db_url, tmp_path)
    first = next(versions.glob("blog1_*.py")).read_text(encoding="utf-8")
    assert "op.create_table('blog_user'" in first
    assert "mailconnect" not in first
    assert "No changes in schema detected." in logged  # the second `flask db migrate`
    assert not list(versions.glob("blog2_*.py"))
    engine = sa.create_engine(db_url)
    found = set(sa.inspect(engine).get_table_names())
    engine.dispose()
    assert {"alembic_version", migrations.VERSION_TABLE, "blog_user"} <= found
    assert set(metadata.tables) <= found


def test_flask_migrate_without_include_object_would_drop_ours(db_url: str, tmp_path: Path) -> None:
    """Why the README insists on ``include_object``: without it the blog's first
    ``flask db migrate`` writes a revision dropping our tables (so the test above is not
    vacuous)."""
    script = HOST_SESSION.split('flask("db", "upgrade"')[0].replace(
        "runner = create_app().test_cli_runner()",
        "app = create_app()\n"
        "app.extensions['migrate'].configure_args.pop('include_object')\n"
        "runner = app.test_cli_runner()",
    )
    versions, _ = _flask_db_session(db_url, tmp_path, script)
    first = next(versions.glob("blog1_*.py")).read_text(encoding="utf-8")
    assert "op.drop_table('mailconnect_account')" in first


def test_version_files_are_shipped() -> None:
    """The chain is in the package (wheel): env.py, the template and the revisions."""
    folder = Path(migrations.SCRIPT_LOCATION)
    assert (folder / "env.py").is_file() and (folder / "script.py.mako").is_file()
    names = sorted(p.name for p in (folder / "versions").glob("0*.py"))
    assert names[:2] == ["0001_initial.py", "0002_provider_keys.py"]
    assert os.path.basename(migrations.SCRIPT_LOCATION) == "migrations"
