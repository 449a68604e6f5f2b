"""Our Alembic chain (flask_mailconnect/migrations): it builds exactly the models' schema on
SQLite, PostgreSQL and MariaDB, keeps data across upgrades, goes down and up again, and a host's
own autogenerate (configured as Flask-Migrate configures Alembic) leaves our tables alone."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
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
from tests.conftest import database_urls, db_label
from tests.hostapp import TEST_KEY

FIRST = "0001_initial"


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


@pytest.fixture(params=database_urls(), ids=db_label)
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
            # Stored under the key already (versions after the keys changed, schema 0001).
            {"id": 4, "provider": "google", **account, "email": "ana@key.test"},
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

        assert session.get(MailAccount, 4).provider == "google"  # already on the key
        session.remove()

    migrations.downgrade(app, FIRST)
    back = _read(app, rows)
    assert back["mailconnect_account"][0]["provider"] == "gmail"
    # Documented in 0002: the alias is what every version at 0001 reads (the oldest of them
    # knew no other), so the account stored under the key goes to the alias as well.
    assert back["mailconnect_account"][3]["provider"] == "gmail"
    expected["mailconnect_account"][0]["provider"] = "gmail"
    expected["mailconnect_account"][3]["provider"] = "gmail"
    assert back == expected


def test_provider_renames_are_frozen_in_the_revision(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """0002 renames what it renamed when it was written, whatever today's catalogue says: with
    the built-in providers' aliases gone, ``gmail`` still becomes ``google``."""
    import flask_mailconnect.providers.builtin as builtin

    monkeypatch.setattr(builtin, "builtin_providers", lambda: [])
    migrations.upgrade(app, FIRST)
    now = datetime(2026, 5, 4, 3, 2, 1)
    rows = _rows(now, "token")
    with app.app_context(), migrations.engine().begin() as connection:
        table = sa.Table("mailconnect_account", sa.MetaData(), autoload_with=connection)
        connection.execute(table.insert(), rows["mailconnect_account"][:1])
    migrations.upgrade(app, "0002_provider_keys")
    assert _read(app, {"mailconnect_account": [{"id": 1, "provider": ""}]}) == {
        "mailconnect_account": [{"id": 1, "provider": "google"}]
    }


def test_down_and_up_again(app: Flask) -> None:
    migrations.upgrade(app)
    migrations.downgrade(app, "base")
    assert migrations.current(app) is None
    assert not {t for t in _tables(app) if t != migrations.VERSION_TABLE}
    migrations.upgrade(app)
    assert migrations.current(app) == migrations.head()
    assert _diff(app) == []


def test_create_all_records_head_and_upgrade_carries_on(app: Flask) -> None:
    """``create_all()`` builds the newest schema, so it records ``head``: the next upgrade
    (a later version's) starts from there instead of re-running revisions (0003 used to fail
    with "table mailconnect_detect_cache already exists")."""
    with app.app_context():
        app.extensions["mailconnect"].facade.create_all()
    assert migrations.current(app) == migrations.head()
    assert migrations.upgrade(app) is False  # nothing to adopt, nothing to run
    assert migrations.current(app) == migrations.head()
    assert _diff(app) == []
    migrations.downgrade(app, FIRST)  # the chain works from there in both directions
    migrations.upgrade(app)
    assert _diff(app) == []


def test_init_db_records_head(app: Flask) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(args=["mailconnect", "init-db"])
    assert result.exit_code == 0, result.output
    assert migrations.head() in result.output
    result = runner.invoke(args=["mailconnect", "db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "no recorded revision" not in result.output
    assert migrations.current(app) == migrations.head()


def test_create_all_on_an_older_revision_upgrades(app: Flask) -> None:
    """Creating the missing tables there would leave the old ones without the new columns."""
    migrations.upgrade(app, FIRST)
    with app.app_context():
        app.extensions["mailconnect"].facade.create_all()
    assert migrations.current(app) == migrations.head()
    assert _diff(app) == []


def _unversioned(app: Flask, revision: str | None = None) -> None:
    """Our tables as an older ``create_all()`` left them: the schema of ``revision`` (default:
    the newest, made by ``metadata.create_all``), with no version table."""
    if revision is None:
        with app.app_context():
            metadata.create_all(migrations.engine())
        return
    migrations.upgrade(app, revision)
    with app.app_context(), migrations.engine().begin() as connection:
        connection.execute(sa.text(f"DROP TABLE {migrations.VERSION_TABLE}"))


def test_upgrade_adopts_unversioned_tables_of_the_newest_schema(app: Flask) -> None:
    _unversioned(app)
    assert migrations.current(app) is None
    result = app.test_cli_runner().invoke(args=["mailconnect", "db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "match the newest schema: recorded them as the newest revision" in result.output
    assert migrations.current(app) == migrations.head()
    assert migrations.upgrade(app) is False
    assert _diff(app) == []


def test_upgrade_explains_unversioned_older_tables_and_stamping_them_works(app: Flask) -> None:
    """Tables of the first release made without migrations: upgrade refuses, says what
    differs and which revision to stamp; stamping it and upgrading reaches the newest schema
    with the rows kept."""
    _unversioned(app, FIRST)
    with pytest.raises(MigrationError) as caught:
        migrations.upgrade(app)
    message = str(caught.value)
    assert "flask mailconnect db stamp REVISION" in message
    assert "head if this version created them" in message
    assert "mailconnect_detect_cache" in message  # what differs
    assert FIRST in message and migrations.head() in message  # the revisions to choose from
    assert migrations.current(app) is None  # nothing was recorded
    result = app.test_cli_runner().invoke(args=["mailconnect", "db", "upgrade"])
    assert result.exit_code == 1
    assert "db stamp REVISION" in result.output and "Traceback" not in result.output

    migrations.stamp(app, FIRST)
    assert migrations.current(app) == FIRST
    migrations.upgrade(app)
    assert migrations.current(app) == migrations.head()
    assert _diff(app) == []


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


def test_revisions_need_none_of_our_python_types() -> None:
    """The host bug: a generated migration named flask_mailconnect.columns.EncryptedText without
    importing it. Ours use the stored types only."""
    for path in (Path(migrations.SCRIPT_LOCATION) / "versions").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "EncryptedText(" not in text and "UTCDateTime(" not in text, path.name
        assert "flask_mailconnect.columns" not in text, path.name
        assert "flask_mailconnect.models" not in text and "from ..models" not in text, path.name
        # Nothing of the package at all: a revision must not change when the package does.
        assert "import flask_mailconnect" not in text, path.name
        assert "from flask_mailconnect" not in text and "from .." not in text, path.name


def test_include_object() -> None:
    table = sa.Table("mailconnect_account", sa.MetaData(), sa.Column("id", sa.Integer))
    host = sa.Table("post", sa.MetaData(), sa.Column("id", sa.Integer))
    assert include_object(table, "mailconnect_account", "table", True, None) is False
    assert include_object(table.c.id, "id", "column", True, None) is False
    assert include_object(None, migrations.VERSION_TABLE, "table", True, None) is False
    assert include_object(host, "post", "table", True, None) is True
    assert include_object(host.c.id, "id", "column", False, None) is True

    # A host table that merely starts with our prefix is the host's: its autogenerate keeps it.
    notes = sa.Table("mailconnect_notes", sa.MetaData(), sa.Column("id", sa.Integer))
    assert include_object(notes, "mailconnect_notes", "table", False, None) is True
    assert include_object(notes.c.id, "id", "column", False, None) is True
    assert migrations.only_ours(notes, "mailconnect_notes", "table", True, None) is False
    # Every table of ours is hidden, and the set is exactly ours.
    assert set(metadata.tables) | {migrations.VERSION_TABLE} == migrations.TABLES
    for name in metadata.tables:
        assert include_object(metadata.tables[name], name, "table", False, None) is False


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


# -- several workers at once -----------------------------------------------------------------

#: One worker of a deployment at container start: it builds its app, says it is ready, waits
#: for the common start signal, then runs ``work`` (upgrade, init-db, downgrade).
WORKER = """
import sys
import time
from pathlib import Path

from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase

from flask_mailconnect import MailConnect, migrations
from tests.hostapp import TEST_KEY


class Base(DeclarativeBase):
    pass


url, folder, name, work = sys.argv[1:5]
app = Flask(__name__)
app.config.update(SQLALCHEMY_DATABASE_URI=url, MAILCONNECT_ENCRYPTION_KEYS=[TEST_KEY])
db = SQLAlchemy(model_class=Base)
db.init_app(app)
MailConnect(app, db=db)
with app.app_context():
    db.engine.connect().close()  # connected and imported before the start
    migrations.head()
Path(folder, name).touch()
while not Path(folder, "go").exists():
    time.sleep(0.001)
if work == "upgrade":
    migrations.upgrade(app)
elif work == "init-db":
    result = app.test_cli_runner().invoke(args=["mailconnect", "init-db"])
    assert result.exit_code == 0, result.output
else:
    migrations.downgrade(app, work)
print("at", migrations.current(app))
"""


def _together(url: str, folder: Path, works: list[str]) -> list[subprocess.CompletedProcess[str]]:
    """Start one process per item of ``works`` and release them at the same moment."""
    folder.mkdir()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, url, str(folder), f"ready{i}", work],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, work in enumerate(works)
    ]
    try:
        while len(list(folder.glob("ready*"))) < len(works):
            if any(p.poll() is not None for p in procs):
                break  # one died while starting: its output says why
            time.sleep(0.01)
        (folder / "go").touch()
        done = []
        for proc in procs:
            out, err = proc.communicate(timeout=180)
            done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
        return done
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()


def test_workers_upgrading_at_once(app: Flask, db_url: str, tmp_path: Path) -> None:
    """Three workers run ``db upgrade`` (two) and ``init-db`` (one) at the same moment on an
    empty database, then three downgrade to the first release at once: every one succeeds and
    the schema is exactly the models' (before the lock, one crashed with UniqueViolation on
    PostgreSQL, 1050 "table exists" on MariaDB, "already exists" on SQLite)."""
    done = _together(db_url, tmp_path / "up", ["upgrade", "upgrade", "init-db"])
    assert [p.returncode for p in done] == [0, 0, 0], [p.stderr[-2000:] for p in done]
    assert all(f"at {migrations.head()}" in p.stdout for p in done)
    assert migrations.current(app) == migrations.head()
    assert _diff(app) == []
    done = _together(db_url, tmp_path / "down", [FIRST, FIRST, FIRST])
    assert [p.returncode for p in done] == [0, 0, 0], [p.stderr[-2000:] for p in done]
    assert all(f"at {FIRST}" in p.stdout for p in done)
    assert migrations.current(app) == FIRST


# -- our tables on a Flask-SQLAlchemy bind ---------------------------------------------------


@pytest.fixture
def bound(db_url: str, tmp_path: Path) -> Iterator[tuple[Flask, SQLAlchemy]]:
    """An app whose default database is a SQLite file and whose ``mail`` bind (our tables,
    through ``metadata.info["bind_key"]``) is the test database."""
    metadata.info["bind_key"] = "mail"
    app = Flask(__name__)
    app.config.update(
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'main.db'}",
        SQLALCHEMY_BINDS={"mail": db_url},
        MAILCONNECT_ENCRYPTION_KEYS=[TEST_KEY],
    )
    db = SQLAlchemy(model_class=HostBase)
    db.init_app(app)
    MailConnect(app, db=db)
    try:
        yield app, db
    finally:
        metadata.info.pop("bind_key", None)
        with app.app_context():
            db.session.remove()
            for engine in db.engines.values():
                engine.dispose()


def _ours_on(engine: sa.engine.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names()) & migrations.TABLES


def test_everything_follows_a_bind(bound: tuple[Flask, SQLAlchemy]) -> None:
    """init-db, create_all, migrations, the detection cache and the sync store's dialect all
    use the bind's database, never the default one."""
    from flask_mailconnect import MailAccount, accounts
    from flask_mailconnect.accounts.status import CheckRecord, record_checks
    from flask_mailconnect.detection import cache, detect
    from flask_mailconnect.models import utcnow
    from flask_mailconnect.runtime import current_runtime
    from flask_mailconnect.sync_store import insert_ignoring_duplicates
    from flask_mailconnect.views.admin.lists import keyset

    app, db = bound
    result = app.test_cli_runner().invoke(args=["mailconnect", "init-db"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        mail, main = db.engines["mail"], db.engines[None]
        assert current_runtime().engine() is mail
        assert _ours_on(mail) == migrations.TABLES and _ours_on(main) == set()
        app.extensions["mailconnect"].facade.create_all()
    assert migrations.upgrade(app) is False
    assert migrations.current(app) == migrations.head()
    assert _diff(app) == []

    with app.test_request_context():
        state = current_runtime()
        cache.store(state.engine(), "bound-test.net", None, (), 600)
        found = detect("ana@bound-test.net", network=False)
        assert found.cached and not found.found  # read from the bind's cache table

        now = datetime(2026, 5, 4, 3, 2, 1)
        account = _rows(now, "token")["mailconnect_account"][0]
        with mail.begin() as connection:
            table = sa.Table("mailconnect_account", sa.MetaData(), autoload_with=connection)
            connection.execute(table.insert(), [account])
        message = {
            "account_id": 1, "uid": 7, "message_id": "<m@example.test>", "sender": "Bo",
            "subject": "Hi", "sent_at": None, "snippet": "", "flags": "", "pinned": False,
        }  # fmt: skip
        assert insert_ignoring_duplicates(state, [message]) == 1
        assert insert_ignoring_duplicates(state, [message]) == 0  # the bind's dialect's ignore
        state.session.commit()
        # The settings page's cards and the admin lists' pages read the bind's table too.
        owner = (account["owner_kind"], account["owner_id"])
        assert [c.id for c in accounts.account_cards(state, owner)] == [account["id"]]
        table_id = MailAccount.__table__.c.id
        rows, _older, _newer = keyset(MailAccount, lambda: [], [table_id], shape="bind")
        assert [r.id for r in rows] == [account["id"]]
        # A health batch's outcomes are written there as well.
        checked = CheckRecord(account["id"], account["email"], *owner, False, "x", "Down", "")
        record_checks(state.session, [checked], now=utcnow())
        state.session.commit()
        found = state.session.get(MailAccount, account["id"])
        assert (found.last_error_code, found.last_error_message) == ("x", "Down")
    assert _ours_on(main) == set()  # nothing of ours ever reached the default database


# -- the schema the chain builds is the schema create_all builds ------------------------------


def _normal_default(value: Any) -> str | None:
    """A reflected server default without the quoting and casts each database adds."""
    if value is None:
        return None
    text = str(value).strip().lower()
    text = re.sub(r"::[a-z ]+(\(\d+\))?", "", text)  # PostgreSQL's ::character varying
    return text.strip("()'\" ")


def _snapshot(engine: sa.engine.Engine) -> dict[str, dict[str, Any]]:
    """Everything reflection reports about our tables, order-free."""
    found = sa.inspect(engine)
    out: dict[str, dict[str, Any]] = {}
    for table in sorted(set(found.get_table_names()) & set(metadata.tables)):
        columns = found.get_columns(table)
        out[table] = {
            "columns": sorted(
                (c["name"], str(c["type"]), c["nullable"], _normal_default(c.get("default")))
                for c in columns
            ),
            "primary_key": found.get_pk_constraint(table)["constrained_columns"],
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in found.get_indexes(table)
            ),
            "unique": sorted(
                (u["name"], tuple(u["column_names"])) for u in found.get_unique_constraints(table)
            ),
            "foreign_keys": sorted(
                (
                    f["name"],
                    tuple(f["constrained_columns"]),
                    f["referred_table"],
                    tuple(f["referred_columns"]),
                    str(sorted((f.get("options") or {}).items())),
                )
                for f in found.get_foreign_keys(table)
            ),  # fmt: skip
        }
    return out


def test_upgrade_builds_what_create_all_builds(app: Flask) -> None:
    """Reflected after ``upgrade`` and after ``metadata.create_all``, the tables are the same:
    column types, nullability, server defaults, primary keys, indexes, unique constraints and
    foreign keys with their ON DELETE (autogenerate's compare above ignores server defaults)."""
    migrations.upgrade(app)
    with app.app_context():
        by_migrations = _snapshot(migrations.engine())
    migrations.downgrade(app, "base")
    with app.app_context():
        engine = migrations.engine()
        assert _snapshot(engine) == {}
        metadata.create_all(engine)
        by_create_all = _snapshot(engine)
    assert set(by_migrations) == set(metadata.tables)
    for table, shape in by_create_all.items():
        assert by_migrations[table] == shape, table
    defaults = {c[0]: c[3] for c in by_migrations["mailconnect_account"]["columns"]}
    assert defaults["notify_new_mail"] in ("1", "true")  # the comparison sees defaults


def test_snapshot_sees_a_server_default(app: Flask) -> None:
    """Not vacuous: the same tables with one server default changed (true to false) differ
    in the snapshot, whatever each database's quoting."""
    changed = sa.MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.sorted_tables:
        table.to_metadata(changed)
    column = changed.tables["mailconnect_account"].c.notify_new_mail
    column.server_default = sa.schema.DefaultClause(sa.false())
    with app.app_context():
        engine = migrations.engine()
        metadata.create_all(engine)
        before = _snapshot(engine)
        metadata.drop_all(engine)
        changed.create_all(engine)
        after = _snapshot(engine)
        changed.drop_all(engine)
    assert before != after
    assert {t: v for t, v in after.items() if t != "mailconnect_account"} == {
        t: v for t, v in before.items() if t != "mailconnect_account"
    }


# -- the README's wiring block is pasted as it is ----------------------------------------------


def test_readme_step_two_runs_as_pasted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's step 2 block, pasted into an empty module, makes an app (it named ``Flask``
    and ``db`` without importing or defining them), and steps 4's commands work on it."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    step = readme.split("**2. Wire it into your app factory**", 1)[1]
    block = step.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.setenv("MAILCONNECT_KEY", TEST_KEY)
    monkeypatch.chdir(tmp_path)  # a module Flask cannot locate: its instance folder is here
    namespace: dict[str, Any] = {"__name__": "pasted"}
    exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - the README's own code
    app = namespace["create_app"]()
    assert app.instance_path == str(tmp_path / "instance")  # where sqlite:///app.db lands
    result = app.test_cli_runner().invoke(args=["mailconnect", "db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert migrations.current(app) == migrations.head()
    assert (tmp_path / "instance" / "app.db").is_file()
    with app.app_context():
        namespace["db"].engine.dispose()
