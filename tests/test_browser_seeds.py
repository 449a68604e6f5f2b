"""The seed products' flows, replayed in Chromium on the demo (example app + sandbox), one test
per seed flow. Screenshots at desktop and phone widths go to artifacts/screenshots/seed-*.png.

- VanillaSoft: an admin searches a caller, opens their page, clicks "Connect with ..." and signs
  in for them at the provider; the account is the caller's, connected, and the audit trail says
  the admin did it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser_helpers import chromium, serve, shoot

pytestmark = pytest.mark.browser


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[str, Any, Any]]:
    """``make demo`` on random ports: the example app, its sandbox and the demo provider."""
    from example_app import create_app
    from example_app.sandbox import Sandbox
    from tests.hostapp import TEST_KEY

    box = Sandbox(tmp_path / "sandbox", smtp_port=0, imap_port=0, oauth_port=0).start()
    try:
        app = create_app(
            {
                **box.flask_config(),
                "INSTANCE_PATH": str(tmp_path / "instance"),
                "SECRET_KEY": "browser-seeds",
                "MAILCONNECT_ENCRYPTION_KEYS": [TEST_KEY],
                "MAILCONNECT_MX_LOOKUP": False,
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'seeds.db'}",
            }
        )
        with serve(app) as url:
            app.config["MAILCONNECT_EXTERNAL_URL"] = url
            box.allow_redirect(f"{url}/email/oauth/demo/callback")
            yield url, app, box
        with app.app_context():
            app.extensions["sqlalchemy"].engines[None].dispose()
    finally:
        box.stop()


def _page(browser: Any) -> tuple[Any, Any, list[str]]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return context, page, errors


def _sign_in(page: Any, url: str, email: str, password: str) -> None:
    page.goto(f"{url}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def test_vanillasoft_admin_signs_in_for_caller(demo: tuple[str, Any, Any]) -> None:
    url, app, _box = demo
    with chromium() as browser:
        context, page, errors = _page(browser)
        _sign_in(page, url, "admin@demo.test", "admin")
        # Search the caller: name and address on each result.
        page.goto(f"{url}/email/admin/users")
        page.fill("#mc-user-q", "alice")
        page.click("button:has-text('Search')")
        person = page.locator("a.mc-person").first
        assert "Alice Martin" in person.inner_text() and "alice@demo.test" in person.inner_text()
        shoot(page, "seed-vanillasoft-people")
        person.click()
        page.wait_for_selector("[data-mc-on-behalf]")
        assert page.locator("h1.mc-title").inner_text().strip() == "Alice Martin"
        assert page.locator("[data-mc-person-email]").inner_text() == "alice@demo.test"
        shoot(page, "seed-vanillasoft-person")
        person_url = page.url
        # Connect with the provider, signing in for her (her address is pre-filled there).
        page.click("[data-mc-on-behalf] button:has-text('Connect with Demo provider')")
        page.wait_for_selector("button[value=allow]")
        assert page.title() == "Sign in with Demo provider"
        assert page.locator("#email").input_value() == "alice@demo.test"
        page.click("button[value=allow]")
        page.wait_for_url(person_url)
        assert "Connected alice@demo.test with Demo provider for Alice Martin." in page.content()
        assert "sending and receiving both work" in page.content()
        row = page.locator("tr[data-account-id]")
        assert row.count() == 1 and "alice@demo.test" in row.inner_text()
        assert row.locator(".mc-badge").first.inner_text().strip() == "Connected"
        shoot(page, "seed-vanillasoft-connected")
        # The audit trail names the admin as the one who connected Alice's account.
        page.goto(f"{url}/email/admin/audit")
        first = page.locator("tr[data-event=connect]").first.inner_text()
        assert "admin admin@demo.test connected alice@demo.test's account alice@demo.test" in first
        assert "on behalf" in first
        # Alice sees it as hers, connected, with nothing to complete.
        context.clear_cookies()
        _sign_in(page, url, "alice@demo.test", "alice")
        page.goto(f"{url}/email/")
        card = page.locator(".mc-card").first
        assert "Connected with Demo provider" in card.inner_text()
        assert "Complete authorization" not in page.content()
        shoot(page, "seed-vanillasoft-caller")
        assert [e for e in errors if not e.startswith("Failed to load resource")] == []
        context.close()


def test_vanillasoft_handover_when_signing_in_for_callers_is_off(
    demo: tuple[str, Any, Any],
) -> None:
    """The organisation forbids admins to sign in for others
    (``MAILCONNECT_ADMIN_OAUTH_ON_BEHALF = False``): the admin hands the account over, the
    caller's card says where to sign in (not "Connected with"), and completing it says so."""
    url, app, _box = demo
    app.config["MAILCONNECT_ADMIN_OAUTH_ON_BEHALF"] = False
    with chromium() as browser:
        context, page, errors = _page(browser)
        _sign_in(page, url, "admin@demo.test", "admin")
        page.goto(f"{url}/email/admin/users")
        page.fill("#mc-user-q", "alice")
        page.click("button:has-text('Search')")
        page.locator("a.mc-person").first.click()
        page.wait_for_selector("#mc-handover-heading")
        assert page.locator("[data-mc-on-behalf]").count() == 0
        page.fill("input[name=email]", "alice@demo.test")
        page.click("form[action$='/handover'] [type=submit]")
        page.wait_for_selector("tr[data-account-id]")
        badge = page.locator("tr[data-account-id] .mc-badge").first.inner_text().strip()
        assert badge == "Awaiting authorization"
        context.clear_cookies()
        _sign_in(page, url, "alice@demo.test", "alice")
        page.goto(f"{url}/email/")
        card = page.locator(".mc-card").first
        assert "Sign in at Demo provider" in card.inner_text()
        assert "Connected with" not in card.inner_text()
        assert "Awaiting authorization" in card.inner_text()
        shoot(page, "seed-vanillasoft-handover-pending")
        card.locator("button:has-text('Complete authorization')").click()
        page.wait_for_selector("button[value=allow]")
        assert page.locator("#email").input_value() == "alice@demo.test"
        page.click("button[value=allow]")
        page.wait_for_url(f"{url}/email/accounts/*")
        content = page.content()
        assert "Authorization complete: alice@demo.test is connected with Demo provider." in content
        assert "Signed in again" not in content
        shoot(page, "seed-vanillasoft-handover-done")
        assert [e for e in errors if not e.startswith("Failed to load resource")] == []
        context.close()
