"""Project email settings and "Disconnect all" in Chromium (the example app, as its admin and as
a project manager). Screenshots at desktop and phone widths go to artifacts/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from tests.browser_helpers import chromium, serve, shoot

pytestmark = pytest.mark.browser


@pytest.fixture
def example(tmp_path: Path) -> Iterator[tuple[Flask, str]]:
    from example_app import create_app
    from example_app.models import Project, db
    from flask_mailconnect import MailAccount
    from tests.hostapp import TEST_KEY

    app = create_app(
        {
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "SECRET_KEY": "browser-test",
            "MAILCONNECT_ENCRYPTION_KEYS": [TEST_KEY],
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'browser.db'}",
        }
    )
    with app.app_context():
        ids = {p.name: str(p.id) for p in db.session.scalars(sa.select(Project))}
        seeds = [
            ("Apollo launch", "launch@northwind.example", "connected", True),
            ("Website redesign", "web-team@northwind.example", "needs_reconnect", True),
            ("Website redesign", "web-old@northwind.example", "connected", False),
        ]
        for project, email, status, active in seeds:
            db.session.add(
                MailAccount(
                    owner_kind="project", owner_id=ids[project], provider="other", email=email,
                    username=email, password="stored", smtp_host="smtp.northwind.example",
                    smtp_port=587, smtp_security="starttls", status=status, active=active,
                    is_default=email != "web-old@northwind.example",
                )
            )  # fmt: skip
        db.session.commit()
    with serve(app) as url:
        yield app, url
    with app.app_context():
        app.extensions["sqlalchemy"].engines[None].dispose()


def _watch(page: Any) -> list[str]:
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    # The console repeats failed loads (the host's missing favicon): responses are checked below.
    page.on("console", lambda m: m.type == "error" and not m.text.startswith("Failed to load")
            and problems.append(m.text))  # fmt: skip
    page.on("response", lambda r: r.status >= 400 and "favicon" not in r.url
            and problems.append(f"{r.status} {r.url}"))  # fmt: skip
    return problems


def _sign_in(page: Any, url: str, email: str, password: str) -> None:
    page.goto(f"{url}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")


def test_project_email_settings_and_disconnect_all(example: tuple[Flask, str]) -> None:
    app, url = example
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        problems = _watch(page)

        # A manager finds the settings from the host's Projects page.
        _sign_in(page, url, "bob@demo.test", "bob")
        page.click("nav >> text=Projects")
        page.wait_for_selector(".project")  # count() does not wait for the page
        assert page.locator(".project").count() == 3
        shoot(page, "projects")
        page.click("text=Project email settings")
        page.wait_for_url("**/email/scopes/project/")
        rows = page.locator(".mc-scope-row")
        assert rows.count() == 3
        apollo = page.locator(".mc-scope-row", has_text="Apollo launch")
        assert apollo.locator(".mc-badge").inner_text().strip() == "Connected"
        assert apollo.get_by_text("Connect another").is_visible()
        # Bob only manages Apollo: no buttons on the others.
        web = page.locator(".mc-scope-row", has_text="Website redesign")
        assert web.locator("a.mc-btn").count() == 0
        # An inactive account: the status badge's "Inactive", as on every page, and nothing else.
        assert web.locator(".mc-badge--inactive").inner_text().strip() == "Inactive"
        assert web.get_by_text("Active:").count() == 0
        shoot(page, "project-settings-manager")
        page.click(".user-menu summary")
        page.click("text=Sign out")
        page.wait_for_url("**/login")

        # The admin sees and configures every project.
        _sign_in(page, url, "admin@demo.test", "admin")
        page.goto(f"{url}/email/scopes/project/")
        assert page.locator(".mc-scope-actions a").count() == 3
        assert page.locator(".mc-badge--needs-reconnect").count() == 1
        shoot(page, "project-settings")

        page.click("text=Disconnect all")
        page.wait_for_url("**/disconnect-all")
        assert "Disconnect every project account?" in page.locator("h1").inner_text()
        assert "3 accounts of 2 projects" in page.locator(".mc-confirm").inner_text()
        shoot(page, "project-disconnect-all-confirm")
        page.click(".mc-confirm [name=submit]")
        page.wait_for_selector("#mc-report-heading")
        report = page.locator(".mc-report")
        assert "2 projects disconnected." in page.locator("[role=status]").inner_text()
        assert report.locator(".mc-report-row--disconnected").count() == 2
        assert report.locator(".mc-report-row--nothing").count() == 1
        shoot(page, "project-disconnect-all-report")

        page.click("text=Back to projects")
        assert page.locator(".mc-scope-account").count() == 0
        assert page.locator(".mc-badge--none").count() == 3
        assert problems == []
        context.close()
