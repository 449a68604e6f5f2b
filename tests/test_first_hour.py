"""A host developer's first hour (issue 10): the key in one command with no app, the README's
two hosts (Flask's tutorial app without Flask-Login; a Flask-Login app factory) working with at
most 15 host lines each, a user without ``id`` told which hook to add, the 403 page for
non-admins, and the configuration table kept in step with config.py."""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from flask import Flask
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy

from flask_mailconnect import EncryptionKeyError, MailConnect, MissingUserHook, migrations
from flask_mailconnect.crypto import build_cipher
from tests import factoryhost, tutorialhost
from tests.hostapp import TEST_KEY

ROOT = Path(__file__).resolve().parents[1]
KEY_COMMAND = "python -m flask_mailconnect generate-key"


@pytest.fixture(autouse=True)
def _key_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's ``export MAILCONNECT_KEY=$(python -m flask_mailconnect generate-key)``."""
    monkeypatch.setenv("MAILCONNECT_KEY", TEST_KEY)


# -- the key ---------------------------------------------------------------------------------


def test_generate_key_needs_no_app_and_no_config(tmp_path: Path) -> None:
    """Run as the README says, in an empty folder with no FLASK_APP and no MAILCONNECT_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "MAILCONNECT_"))}
    keys = []
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, "-m", "flask_mailconnect", "generate-key"],
            cwd=tmp_path, env=env, capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        keys.append(result.stdout.strip())
    assert keys[0] != keys[1]
    for key in keys:
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}=", key)
        build_cipher([key])  # a key MAILCONNECT_ENCRYPTION_KEYS accepts
        assert Fernet(key).decrypt(Fernet(key).encrypt(b"x")) == b"x"


def test_flask_generate_key_works_before_a_key_exists() -> None:
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
    MailConnect(app, db=SQLAlchemy(app))
    assert not app.config["MAILCONNECT_ENCRYPTION_KEYS"]
    result = app.test_cli_runner().invoke(args=["mailconnect", "generate-key"])
    assert result.exit_code == 0, result.output
    build_cipher([result.output.strip()])


def test_every_no_key_message_names_the_command(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(EncryptionKeyError, match=re.escape(KEY_COMMAND)) as empty:
        build_cipher([])
    assert "export MAILCONNECT_KEY=$(python -m flask_mailconnect generate-key)" in str(empty.value)
    with pytest.raises(EncryptionKeyError, match=re.escape(KEY_COMMAND)):
        build_cipher(["not a key"])
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
    with caplog.at_level(logging.WARNING, logger="flask_mailconnect"):
        MailConnect(app, db=SQLAlchemy(app))
    assert KEY_COMMAND in caplog.text
    from flask_mailconnect.config import DEFAULTS

    assert KEY_COMMAND in DEFAULTS["MAILCONNECT_ENCRYPTION_KEYS"].meaning


# -- host lines ------------------------------------------------------------------------------


def host_lines(path: Path) -> list[str]:
    """The host's lines for the extension: inside ``# mailconnect: begin`` / ``end`` blocks
    (code only: no blank or comment lines), plus lines ending in ``# mailconnect: line``."""
    found, inside = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.strip()
        if text == "# mailconnect: begin":
            inside = True
        elif text == "# mailconnect: end":
            inside = False
        elif text.endswith("# mailconnect: line") or (inside and text and not text.startswith("#")):
            found.append(text)
    return found


@pytest.mark.parametrize(("module", "expected"), [(tutorialhost, 12), (factoryhost, 9)])
def test_each_host_needs_at_most_15_lines(module: Any, expected: int) -> None:
    """Counted, not estimated: the tutorial host's lines include the three user hooks and
    Flask-SQLAlchemy for our tables; the factory host's include ``admin_checker`` (with the
    Flask-Migrate line, 9). ``expected`` pins the count so that a change shows up here."""
    lines = host_lines(Path(module.__file__))
    assert len(lines) == expected, lines
    assert len(lines) <= 15


def test_host_line_counter_sees_markers(tmp_path: Path) -> None:
    sample = tmp_path / "host.py"
    sample.write_text(
        "a = 1  # mailconnect: line\nb = 2\n# mailconnect: begin\n\n# why\nc = 3\n"
        "# mailconnect: end\nd = 4\n"
    )
    assert host_lines(sample) == ["a = 1  # mailconnect: line", "c = 3"]


# -- Flask's tutorial app (sqlite3 rows, its own login, no Flask-Login) ------------------------


def _tutorial(tmp_path: Path, **kw: Any) -> Iterator[Flask]:
    app = tutorialhost.create_app(
        {"TESTING": True, "DATABASE": str(tmp_path / "flaskr.sqlite")}, **kw
    )
    with app.app_context():
        tutorialhost.init_db()
    result = app.test_cli_runner().invoke(args=["mailconnect", "db", "upgrade"])
    assert result.exit_code == 0, result.output
    yield app
    with app.app_context():
        tutorialhost.db.session.remove()
        tutorialhost.db.engine.dispose()


@pytest.fixture
def tutorial(tmp_path: Path) -> Iterator[Flask]:
    yield from _tutorial(tmp_path)


@pytest.fixture
def tutorial_without_hooks(tmp_path: Path) -> Iterator[Flask]:
    yield from _tutorial(tmp_path, with_hooks=False)


def _tutorial_sign_in(client: FlaskClient, name: str = "ana") -> None:
    form = {"username": name, "password": "pw"}
    assert client.post("/auth/register", data=form).status_code == 302
    assert client.post("/auth/login", data=form).status_code == 302


def test_tutorial_host_email_page(tutorial: Flask) -> None:
    """Signed in through the tutorial's own session login, the user (a sqlite3.Row) gets the
    email settings page inside the tutorial's layout, named by its username."""
    client = tutorial.test_client()
    _tutorial_sign_in(client)
    page = client.get("/email/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<h1>Flaskr</h1>" in html and '<section class="content">' in html
    assert 'class="mailconnect"' in html
    assert "<span>ana</span>" in html  # the tutorial's nav, from the same g.user
    with tutorial.app_context():
        actor = tutorialhost.mailconnect.hooks.actor_for(
            tutorialhost.get_db().execute("SELECT * FROM user").fetchone()
        )
    assert (actor.id, actor.label, actor.is_admin) == ("1", "ana", False)


def test_tutorial_host_connect_form_renders(tutorial: Flask) -> None:
    client = tutorial.test_client()
    _tutorial_sign_in(client)
    page = client.get("/email/connect")
    assert page.status_code == 200
    assert 'name="password"' in page.get_data(as_text=True)


def test_tutorial_host_anonymous_visitor_is_refused(tutorial: Flask) -> None:
    assert tutorial.test_client().get("/email/").status_code == 401


def test_tutorial_host_non_admin_gets_the_403_page(tutorial: Flask) -> None:
    client = tutorial.test_client()
    _tutorial_sign_in(client)
    page = client.get("/email/admin/accounts")
    assert page.status_code == 403
    html = page.get_data(as_text=True)
    assert "<h1>Flaskr</h1>" in html  # inside the host's layout
    assert "Administrator needed" in html and "an administrator is needed" in html
    assert "admin_checker" not in html  # the developer's hint shows in debug mode only


def test_user_without_id_gets_a_page_naming_the_hook(
    tutorial_without_hooks: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    """The issue's 500 (``'sqlite3.Row' object has no attribute 'id'``): now a page inside the
    host layout naming ``@mailconnect.user_id`` (with the code in debug mode), and the log."""
    app = tutorial_without_hooks
    app.debug = True
    client = app.test_client()
    _tutorial_sign_in(client)

    # The newcomer's user_loader (from the README) is there, the id hook is not.
    hooks = app.extensions["mailconnect"].hooks
    hooks.user_loader = tutorialhost.current_user
    with caplog.at_level(logging.ERROR, logger="flask_mailconnect"):
        page = client.get("/email/")
    html = page.get_data(as_text=True)
    assert page.status_code == 500
    assert "AttributeError" not in html and "Traceback" not in html
    assert "<h1>Flaskr</h1>" in html and "Email settings not set up yet" in html
    assert "@mailconnect.user_id" in html and "return str(user[&#34;id&#34;])" in html
    assert "@mailconnect.user_id" in caplog.text

    app.debug = False
    html = client.get("/email/").get_data(as_text=True)
    assert "Email settings not set up yet" in html and "@mailconnect.user_id" not in html

    hooks.user_id = tutorialhost.user_id  # the first hook added: next, the label
    html = client.get("/email/").get_data(as_text=True)
    assert "Email settings not set up yet" in html
    hooks.user_label = tutorialhost.user_label
    assert client.get("/email/").status_code == 200


def test_missing_hooks_are_typed_errors_in_python() -> None:
    from flask_mailconnect.runtime import Hooks

    connection = sqlite3.connect(":memory:")
    connection.row_factory = sqlite3.Row
    row = connection.execute("SELECT 7 AS id, 'ana' AS username").fetchone()
    hooks = Hooks()
    with pytest.raises(MissingUserHook, match=r"@mailconnect\.user_id") as no_id:
        hooks.actor_for(object())
    assert "object" in str(no_id.value)
    with pytest.raises(MissingUserHook, match=r"@mailconnect\.user_id"):
        hooks.actor_for({"id": 7, "username": "ana"})
    hooks.user_id = lambda user: str(user["id"])
    with pytest.raises(MissingUserHook, match=r"@mailconnect\.user_label"):
        hooks.actor_for(row)
    hooks.user_label = lambda user: user["username"]
    assert (hooks.actor_for(row).id, hooks.actor_for(row).label) == ("7", "ana")


# -- a Flask-Login app factory -----------------------------------------------------------------


@pytest.fixture
def factory() -> Iterator[Flask]:
    app = factoryhost.create_app({"TESTING": True})
    with app.app_context():
        factoryhost.db.create_all()  # the blog's own tables (its own migrations in real life)
        factoryhost.db.session.add_all(
            [
                factoryhost.User(id=1, username="ana", email="ana@blog.test"),
                factoryhost.User(id=2, username="root", email="root@blog.test", role="admin"),
            ]
        )
        factoryhost.db.session.commit()
    result = app.test_cli_runner().invoke(args=["mailconnect", "db", "upgrade"])
    assert result.exit_code == 0, result.output
    yield app
    with app.app_context():
        factoryhost.db.session.remove()
        factoryhost.db.engine.dispose()


def test_factory_host_pages(factory: Flask) -> None:
    with factory.app_context():
        assert migrations.current() == migrations.head()
    client = factory.test_client()
    assert client.post("/login/1").status_code == 200
    page = client.get("/email/")
    assert page.status_code == 200
    assert 'class="blog-header"' in page.get_data(as_text=True)
    denied = client.get("/email/admin/providers")
    assert denied.status_code == 403
    assert 'class="blog-header"' in denied.get_data(as_text=True)
    assert "an administrator is needed" in denied.get_data(as_text=True)


def test_factory_host_admin_checker_and_organisation_tab(factory: Flask) -> None:
    client = factory.test_client()
    assert client.post("/login/2").status_code == 200
    page = client.get("/email/admin/accounts")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'href="/email/organization/"' in html and ">Organization</a>" in html
    organisation = client.get("/email/organization/", follow_redirects=True)
    assert organisation.status_code == 200
    assert "Organization email accounts" in organisation.get_data(as_text=True)


def test_debug_403_page_names_admin_checker(factory: Flask) -> None:
    factory.debug = True
    client = factory.test_client()
    assert client.post("/login/1").status_code == 200
    html = client.get("/email/admin/audit").get_data(as_text=True)
    assert "@mailconnect.admin_checker" in html and "is_admin" in html


# -- the configuration table -----------------------------------------------------------------


def test_configuration_table_is_current() -> None:
    """docs/configuration.rst holds the settings table as plain reStructuredText; it must
    match config.py (``python -m docs._ext.gen_config`` rewrites it)."""
    sys.path.insert(0, str(ROOT))
    try:
        from docs._ext import gen_config
    finally:
        sys.path.remove(str(ROOT))
    from flask_mailconnect.config import DEFAULTS

    text = gen_config.TARGET.read_text(encoding="utf-8")
    assert gen_config.render(text) == text, "run `python -m docs._ext.gen_config`"
    assert ".. mailconnect-config-table::" not in text
    for key in DEFAULTS:
        assert f"``{key}``" in text
    # The check is not vacuous: a key missing from the file is noticed.
    stale = text.replace("``MAILCONNECT_URL_PREFIX``", "``MAILCONNECT_OLD_NAME``", 1)
    assert gen_config.render(stale) != stale


def test_configuration_table_is_a_valid_rst_table() -> None:
    from docutils.core import publish_doctree
    from docutils.nodes import table

    sys.path.insert(0, str(ROOT))
    try:
        from docs._ext import gen_config
    finally:
        sys.path.remove(str(ROOT))
    tree = publish_doctree(
        gen_config.table(), settings_overrides={"report_level": 2, "halt_level": 2}
    )
    tables = list(tree.findall(table))
    assert len(tables) == 1
    from flask_mailconnect.config import DEFAULTS

    rows = tables[0].findall(lambda node: node.tagname == "row")
    assert len(list(rows)) == len(DEFAULTS) + 1  # the header row, then one per key


# -- in a real browser -------------------------------------------------------------------------


@pytest.mark.browser
def test_pages_in_chromium(tutorial: Flask, factory: Flask) -> None:
    """The 403 page and the set-up page inside Flask's tutorial layout, and the admin tabs with
    the Organization tab in the factory host: screenshots at desktop and phone width (no
    sideways scroll), saved in artifacts/screenshots/ to look at."""
    from flask_mailconnect.runtime import Hooks
    from tests.browser_helpers import chromium, serve, shoot

    with chromium() as browser, serve(tutorial) as base:
        context = browser.new_context()
        form = {"username": "ana", "password": "pw"}
        assert context.request.post(f"{base}/auth/register", form=form).ok
        assert context.request.post(f"{base}/auth/login", form=form).ok
        page = context.new_page()
        response = page.goto(f"{base}/email/admin/accounts")
        assert response is not None and response.status == 403
        assert page.locator("nav h1").inner_text() == "Flaskr"
        assert page.get_by_role("heading", name="Administrator needed").is_visible()
        shoot(page, "first-hour-403-tutorial")

        hooks = tutorial.extensions["mailconnect"].hooks
        saved = hooks.user_id
        hooks.user_id = Hooks().user_id  # the default: what a newcomer without the hook has
        tutorial.debug = True
        try:
            response = page.goto(f"{base}/email/")
        finally:
            hooks.user_id, tutorial.debug = saved, False
        assert response is not None and response.status == 500
        assert page.get_by_role("heading", name="Email settings not set up yet").is_visible()
        assert "@mailconnect.user_id" in page.locator("pre").inner_text()
        shoot(page, "first-hour-setup-error-tutorial")
        context.close()

    with chromium() as browser, serve(factory) as base:
        context = browser.new_context()
        assert context.request.post(f"{base}/login/2").ok
        page = context.new_page()
        page.goto(f"{base}/email/admin/accounts")
        tab = page.get_by_role("navigation", name="Email administration").get_by_role(
            "link", name="Organization"
        )
        assert tab.is_visible()
        shoot(page, "first-hour-admin-tabs-factory")
        tab.click()
        page.wait_for_load_state()
        assert page.url.endswith("/email/scopes/organization/")
        context.close()
