"""Admin pages of the example app in Chromium: add and edit a provider (with a validation error
shown in the page), the account list with filters and deactivate. Screenshots at desktop and
phone widths go to artifacts/screenshots/admin-*.png."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.browser_helpers import chromium, publish, serve, shoot

pytestmark = pytest.mark.browser


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    from example_app import create_app
    from flask_mailconnect.models import MailAccount
    from tests.hostapp import TEST_KEY

    app = create_app({
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "SECRET_KEY": "browser-test",
        "MAILCONNECT_ENCRYPTION_KEYS": [TEST_KEY],
        "MAILCONNECT_MX_LOOKUP": False,
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'admin.db'}",
    })  # fmt: skip
    db = app.extensions["sqlalchemy"]
    with app.app_context():
        alice = db.session.scalar(sa.text("SELECT id FROM demo_user WHERE email='alice@demo.test'"))
        rows = [
            ("user", str(alice), "gmail", "alice.martin@gmail.com", "connected", True),
            ("user", str(alice), "other", "alice@northwind-traders.com", "needs_reconnect", True),
            ("organization", "main", "microsoft365", "sales@northwind-traders.com", "connected",
             True),
            ("organization", "main", "other", "support@northwind-traders.com", "error", False),
            ("user", str(alice), "yahoo", "alice.m@yahoo.com", "connected", False),
        ]  # fmt: skip
        for kind, ident, provider, email, status, active in rows:
            db.session.add(MailAccount(
                owner_kind=kind, owner_id=ident, provider=provider, email=email, username=email,
                smtp_host="smtp.example.org", smtp_port=587, smtp_security="starttls",
                status=status, active=active,
            ))  # fmt: skip
        db.session.commit()
    with serve(app) as url:
        yield url, app
    with app.app_context():
        db.engines[None].dispose()


def sign_in(page: Any, url: str, email: str, password: str) -> None:
    page.goto(f"{url}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def test_provider_edit_and_account_list(live: tuple[str, Any]) -> None:
    url, _app = live
    with chromium() as browser:
        page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        sign_in(page, url, "admin@demo.test", "admin")
        page.click("text=Admin")
        # count() does not wait: let the list arrive first (a slow machine saw 0 rows).
        page.wait_for_selector("tr[data-account-id]")
        assert page.url.endswith("/email/admin/accounts")
        assert page.locator("tr[data-account-id]").count() == 5
        assert page.locator(".mc-badge--inactive").count() == 2
        publish(shoot(page, "admin-accounts"), "admin-accounts")

        # Filter, then deactivate one account from the list.
        page.select_option("#mc-scope", "organization")
        page.click("text=Filter")
        page.wait_for_url("**scope=organization**")
        page.wait_for_selector("tr[data-account-id]")
        assert page.locator("tr[data-account-id]").count() == 2
        row = page.locator("tr", has_text="sales@northwind-traders.com")
        row.locator("button", has_text="Deactivate").click()
        page.wait_for_load_state()
        assert "scope=organization" in page.url  # back to the same filtered list
        row = page.locator("tr", has_text="sales@northwind-traders.com")
        assert row.locator(".mc-badge--inactive").count() == 1

        # Add a provider: a bad port is refused in the page, then saved.
        page.goto(f"{url}/email/admin/providers/new")
        page.fill("#name", "Northwind Mail")
        page.fill("#smtp_host", "smtp.northwind-traders.com")
        page.fill("#smtp_port", "70000")
        page.fill("#imap_host", "imap.northwind-traders.com")
        page.fill("#domains", "northwind-traders.com")
        page.click("text=Save provider")
        page.wait_for_selector("[data-field=smtp_port].mc-field--error")
        assert "Enter a port number between 1 and 65535." in page.content()
        page.fill("#smtp_port", "587")
        page.select_option("#auth_method", "oauth2")
        page.fill("#client_id", "northwind-crm")
        page.fill("#client_secret", "browser-secret-value")
        page.fill(
            "#server_metadata_url",
            "https://login.northwind-traders.com/.well-known/openid-configuration",
        )
        page.click("text=Save provider")
        page.wait_for_url("**/email/admin/providers")
        page.wait_for_selector("tr[data-provider]")
        assert "northwind-traders.com" in page.content()
        shoot(page, "admin-providers")

        page.click("a.mc-strong:has-text('Northwind Mail')")
        page.wait_for_selector(".mc-secret-state")
        assert "browser-secret-value" not in page.content()
        assert page.locator(".mc-secret-state").inner_text().startswith("Set")
        shoot(page, "admin-provider-edit")
        page.fill("#name", "Northwind Mail (EU)")
        page.click("text=Save provider")
        page.wait_for_selector("a.mc-strong:has-text('Northwind Mail (EU)')")

        # People: open Alice, see her accounts and the hand-over form.
        page.click("text=People")
        page.fill("#mc-user-q", "alice")
        page.click("button:has-text('Search')")
        page.click("a.mc-person:has-text('alice@demo.test')")
        page.wait_for_selector("#mc-handover-heading")
        assert page.locator("tr[data-account-id]").count() == 3
        shoot(page, "admin-user")

        page.click("text=Audit trail")
        page.wait_for_selector("tr[data-event]")
        assert "deactivated" in page.content()
        shoot(page, "admin-audit")
        assert errors == []
