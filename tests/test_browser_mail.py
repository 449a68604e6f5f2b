"""Recent mail and "Edit folders" in Chromium, inside the example app: the demo mailbox's INBOX
shown after Refresh, the folder mapping pre-filled from SPECIAL-USE and saved. Screenshots at
desktop and phone widths go to artifacts/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_mailconnect import MailAccount, MailConnect, ServerSettings
from tests.browser_helpers import chromium, serve, shoot

pytestmark = pytest.mark.browser


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[str, Flask, Any]]:
    from example_app import create_app
    from example_app.sandbox import Sandbox
    from tests.hostapp import TEST_KEY

    box = Sandbox(tmp_path / "sandbox", smtp_port=0, imap_port=0)
    box.start()
    try:
        app = create_app(
            {
                **box.flask_config(),
                "INSTANCE_PATH": str(tmp_path / "instance"),
                "SECRET_KEY": "browser-mail",
                "MAILCONNECT_ENCRYPTION_KEYS": [TEST_KEY],
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'mail.db'}",
            }
        )
        with serve(app) as url:
            yield url, app, box
        with app.app_context():
            app.extensions["sqlalchemy"].engines[None].dispose()
    finally:
        box.stop()


def _connect_demo_mailbox(app: Flask, box: Any) -> int:
    """Connected through the Python API: the form itself has its own browser test."""
    from example_app.models import User, db

    with app.app_context():
        alice = db.session.scalar(sa.select(User).where(User.email == "alice@demo.test"))
        ext = MailConnect.of(app)
        account = ext.connect_manual(
            owner=("user", alice.id),
            settings=ServerSettings(
                email=box.address,
                username=box.address,
                password=box.password,
                smtp_host=box.smtp_host,
                smtp_port=box.smtp_port,
                smtp_security=box.smtp_security,
                imap_host=box.imap_host,
                imap_port=box.imap_port,
                imap_security=box.imap_security,
            ),  # fmt: skip
            actor=alice,
            display_name="Alice Martin",
        )
        db.session.commit()
        return account.id


def test_recent_mail_and_folders(demo: tuple[str, Flask, Any]) -> None:
    url, app, box = demo
    account_id = _connect_demo_mailbox(app, box)
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{url}/login")
        page.fill("input[name=email]", "alice@demo.test")
        page.fill("input[name=password]", "alice")
        page.click("button:has-text('Sign in')")
        page.wait_for_url(f"{url}/")

        page.goto(f"{url}/email/accounts/{account_id}")
        recent = page.locator("[data-mc-recent]")
        assert "Not synced yet" in recent.inner_text()
        page.click("[data-mc-sync]")
        page.wait_for_selector("[data-mc-recent] li")
        rows = page.locator("[data-mc-recent] li")
        seeded = len(box.mailbox.folder("INBOX").messages)
        assert rows.count() == seeded > 0
        with app.app_context():
            stored = app.extensions["mailconnect"].session.scalar(
                sa.select(sa.func.count()).select_from(MailAccount)
            )
        assert stored == 1
        shoot(page, "recent-mail")

        page.click("text=Edit folders")
        page.wait_for_url(f"{url}/email/accounts/{account_id}/folders")
        # Pre-filled from the demo server's SPECIAL-USE attributes.
        assert page.locator("select[name=sent]").input_value() == "Sent"
        assert page.locator("select[name=trash]").input_value() == "Trash"
        shoot(page, "folders")
        page.select_option("select[name=archive]", "Archive")
        page.click(".mailconnect button[type=submit]")
        page.wait_for_url(f"{url}/email/accounts/{account_id}")
        with app.app_context():
            account = app.extensions["mailconnect"].session.get(MailAccount, account_id)
            assert (account.folder_sent, account.folder_archive) == ("Sent", "Archive")
        assert errors == []
        context.close()
