"""The example app in Chromium: sign in, connect the demo mailbox through the form with "Test
connection", save, open the account, disconnect. Screenshots go to artifacts/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser_helpers import chromium, publish, serve, shoot

pytestmark = pytest.mark.browser


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Any]:
    from example_app.sandbox import Sandbox

    box = Sandbox(tmp_path / "sandbox", smtp_port=0, imap_port=0)
    box.start()
    try:
        yield box
    finally:
        box.stop()


@pytest.fixture
def live_url(sandbox: Any, tmp_path: Path) -> Iterator[str]:
    from example_app import create_app
    from tests.hostapp import TEST_KEY

    config = {
        **sandbox.flask_config(),
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "SECRET_KEY": "browser-test",
        "MAILCONNECT_ENCRYPTION_KEYS": [TEST_KEY],
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'browser.db'}",
    }
    app = create_app(config)
    with serve(app) as url:
        yield url
    with app.app_context():
        app.extensions["sqlalchemy"].engines[None].dispose()


def test_connect_the_demo_mailbox(live_url: str, sandbox: Any) -> None:
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda m: m.type == "error" and errors.append(m.text))
        bad: list[str] = []  # failed requests, except the host's missing favicon
        page.on("response", lambda r: r.status >= 400 and "favicon" not in r.url
                and bad.append(f"{r.status} {r.url}"))  # fmt: skip

        page.goto(f"{live_url}/login")
        page.fill("input[name=email]", "alice@demo.test")
        page.fill("input[name=password]", "alice")
        page.click("button[type=submit]")
        page.goto(f"{live_url}/email/")
        assert page.locator(".mailconnect h1").inner_text() == "Email accounts"
        shoot(page, "index-empty")

        page.click("text=Email address and password")
        # The click starts a navigation; wait for the new page (an immediate check raced it).
        page.wait_for_url("**/email/connect")
        page.wait_for_selector("[name=continue_]", state="visible")
        page.fill("#email", sandbox.address)
        # With the script, Continue reveals the details in place and fills in what it can.
        page.click("[name=continue_]")
        page.wait_for_selector("#smtp_port", state="visible")
        assert page.url.endswith("/email/connect")
        assert page.locator("[name=continue_]").count() == 0
        # The example app declares the sandbox in MAILCONNECT_PROVIDERS: detected by domain.
        assert page.locator("#provider").input_value() == "sandbox"
        assert page.locator("#smtp_port").input_value() == str(sandbox.smtp_port)
        assert page.locator("#username").input_value() == sandbox.address
        test_button = page.locator("[data-mc-test]")
        save_button = page.locator("[data-mc-save]")
        assert test_button.is_hidden() and save_button.is_disabled()

        page.fill("#password", sandbox.password)
        page.fill("#display_name", "Alice Martin")
        page.fill("#smtp_host", sandbox.smtp_host)
        page.fill("#smtp_port", str(sandbox.smtp_port))
        page.select_option("#smtp_security", sandbox.smtp_security)
        page.fill("#imap_host", sandbox.imap_host)
        page.fill("#imap_port", str(sandbox.imap_port))
        page.select_option("#imap_security", sandbox.imap_security)
        assert test_button.is_visible()

        test_button.click()
        page.wait_for_selector(".mc-result--ok", timeout=15_000)
        assert page.locator(".mc-result-row--ok").count() == 2
        assert save_button.is_enabled()
        publish(shoot(page, "connect"), "connect")

        # Changing a value after the test disables Save until it is tested again.
        page.fill("#smtp_port", "1")
        assert save_button.is_disabled()
        page.fill("#smtp_port", str(sandbox.smtp_port))
        assert save_button.is_enabled()

        save_button.click()
        page.wait_for_url("**/email/accounts/*")
        assert page.locator(".mailconnect h1").inner_text() == "Alice Martin"
        assert page.locator(".mc-badge").inner_text().strip() == "Connected"

        # Signature editor: bold text typed in the rich editor reaches the saved value.
        editor = page.locator("[data-mc-editor]")
        editor.click()
        page.keyboard.type("Alice ")
        page.click("[data-mc-cmd=bold]")
        page.keyboard.type("Martin")
        page.click("text=Save settings")
        page.wait_for_selector(".mc-preview b")
        assert page.locator(".mc-preview b").inner_text() == "Martin"
        shoot(page, "account")

        page.goto(f"{live_url}/email/")
        assert page.locator(".mc-card").count() == 1
        shoot(page, "index")

        page.goto(page.url)  # back to the account through its card
        page.click(".mc-card a.mc-btn")
        page.click("text=Disconnect")
        assert page.locator(".mailconnect h1").inner_text() == f"Disconnect {sandbox.address}?"
        shoot(page, "disconnect")
        page.click("[name=submit]")
        page.wait_for_url(f"{live_url}/email/")
        assert page.locator(".mc-card").count() == 0
        assert bad == []
        assert [e for e in errors if not e.startswith("Failed to load resource")] == []
        context.close()
