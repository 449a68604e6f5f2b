"""OAuth end to end in Chromium, no mocks in between: the example app's settings page, "Connect
with Google" (its endpoints pointed at the local OAuth server), Allow on the local consent page,
back connected; Test connection logs in with XOAUTH2 to aiosmtpd and Dovecot, which check the
token by introspection at the same server. The same for a Microsoft-shaped provider, and Deny.
Screenshots (desktop and phone) go to artifacts/screenshots/oauth-*.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser_helpers import chromium, serve, shoot
from tests.oauth_flows import EMAIL, providers
from tests.peers.oauth import CLIENT_ID

pytestmark = pytest.mark.browser


@pytest.fixture
def live(
    tmp_path: Path, oauth_provider: Any, smtp_starttls: Any, dovecot: Any, peer_config: dict
) -> Iterator[tuple[str, Any]]:
    from example_app import create_app
    from tests.hostapp import TEST_KEY

    config: dict[str, Any] = {
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "SECRET_KEY": "browser-oauth",
        "MAILCONNECT_ENCRYPTION_KEYS": [TEST_KEY],
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'oauth.db'}",
        "MAILCONNECT_PROVIDERS": providers(oauth_provider, smtp_starttls, dovecot),
        **peer_config,
    }
    app = create_app(config)
    with serve(app) as url:
        app.config["MAILCONNECT_EXTERNAL_URL"] = url
        for key in ("google", "microsoft"):
            oauth_provider.add_redirect_uri(CLIENT_ID, f"{url}/email/oauth/{key}/callback")
        yield url, oauth_provider
    with app.app_context():
        app.extensions["sqlalchemy"].engines[None].dispose()


def _page(browser: Any) -> tuple[Any, Any, list[str]]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def console(message: Any) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", console)
    return context, page, errors


def _sign_in(page: Any, url: str) -> None:
    page.goto(f"{url}/login")
    page.fill("input[name=email]", "alice@demo.test")
    page.fill("input[name=password]", "alice")
    page.click("button[type=submit]")
    page.goto(f"{url}/email/")


def _connect(page: Any, url: str, name: str) -> None:
    page.click(f"text=Connect with {name}")
    page.wait_for_selector("button[value=allow]")  # the provider's consent page
    assert page.locator("#email").input_value() == EMAIL
    page.click("button[value=allow]")
    page.wait_for_url(f"{url}/email/accounts/*")


@pytest.mark.parametrize(("key", "name"), [("google", "Google"), ("microsoft", "Microsoft")])
def test_connect_and_test_in_chromium(live: tuple[str, Any], key: str, name: str) -> None:
    url, server = live
    with chromium() as browser:
        context, page, errors = _page(browser)
        _sign_in(page, url)
        assert page.locator(f"[data-mc-oauth={key}]").is_visible()
        if key == "google":
            shoot(page, "oauth-index")
        _connect(page, url, name)
        lede = page.locator("[data-mc-connected-with]").inner_text()
        assert f"Connected with {name}" in lede and EMAIL in lede
        assert page.locator(".mc-result--ok .mc-result-row--ok").count() == 2
        assert page.locator("input[name=smtp_host]").count() == 0  # servers are text only
        shoot(page, f"oauth-{key}-connected")

        page.click("[data-mc-oauth-test]")
        page.wait_for_selector(".mc-result--ok")
        assert page.locator(".mc-result-row--ok").count() == 2
        assert page.locator(".mc-badge").first.inner_text().strip() == "Connected"

        page.goto(f"{url}/email/")
        assert page.locator(".mc-card").count() == 1
        assert f"Connected with {name}" in page.locator(".mc-card-sub").inner_text()
        if key == "microsoft":
            page.click(".mc-card a.mc-btn")
            page.wait_for_url(f"{url}/email/accounts/*")
            page.click("text=Disconnect")
            # Wait for the confirmation page: is_visible() alone does not wait for navigation.
            hint = page.wait_for_selector("[data-mc-access-hint]", state="visible")
            assert hint is not None and "myapps.microsoft.com" in hint.inner_text()
            shoot(page, "oauth-microsoft-disconnect")
        assert [e for e in errors if not e.startswith("Failed to load resource")] == []
        context.close()


def test_denied_consent_in_chromium(live: tuple[str, Any]) -> None:
    url, _server = live
    with chromium() as browser:
        context, page, errors = _page(browser)
        _sign_in(page, url)
        page.click("text=Connect with Google")
        page.wait_for_selector("button[value=deny]")
        page.click("button[value=deny]")
        page.wait_for_selector("[data-mc-oauth-error=access_denied]")
        assert page.locator("h1").last.inner_text() == "You did not allow access"
        shoot(page, "oauth-error")
        page.click("button:has-text('Try again')")  # starts a new flow: back on the consent page
        page.wait_for_selector("button[value=allow]")
        context.close()


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """The example app with its sandbox, as ``make demo`` runs it (random ports)."""
    from example_app import create_app
    from example_app.sandbox import Sandbox
    from tests.hostapp import TEST_KEY

    box = Sandbox(tmp_path / "sandbox", smtp_port=0, imap_port=0, oauth_port=0).start()
    try:
        app = create_app(
            {
                **box.flask_config(),
                "INSTANCE_PATH": str(tmp_path / "instance"),
                "SECRET_KEY": "browser-demo",
                "MAILCONNECT_ENCRYPTION_KEYS": [TEST_KEY],
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'demo.db'}",
            }
        )
        with serve(app) as url:
            app.config["MAILCONNECT_EXTERNAL_URL"] = url
            box.allow_redirect(f"{url}/email/oauth/demo/callback")
            yield url, box
        with app.app_context():
            app.extensions["sqlalchemy"].engines[None].dispose()
    finally:
        box.stop()


def test_demo_provider_in_the_example_app(demo: tuple[str, Any]) -> None:
    """make demo: "Connect with Demo provider", Allow, connected; the sandbox's own SMTP and
    IMAP servers accept the token with XOAUTH2 (introspection at the demo provider)."""
    url, box = demo
    with chromium() as browser:
        context, page, errors = _page(browser)
        _sign_in(page, url)
        page.click("text=Connect with Demo provider")
        page.wait_for_selector("button[value=allow]")
        assert page.locator("#email").input_value() == box.address
        page.click("button[value=allow]")
        page.wait_for_url(f"{url}/email/accounts/*")
        assert (
            "Connected with Demo provider" in page.locator("[data-mc-connected-with]").inner_text()
        )
        assert page.locator(".mc-result--ok .mc-result-row--ok").count() == 2
        shoot(page, "oauth-demo-connected")
        assert [e for e in errors if not e.startswith("Failed to load resource")] == []
        context.close()


def test_sign_in_again_in_chromium(live: tuple[str, Any]) -> None:
    """Access removed at the provider: Test connection's refresh gets invalid_grant, the card
    says "Sign in again", and signing in again restores the same account."""
    url, server = live
    server.expires_in = 60  # shorter than the refresh margin: every use refreshes first
    with chromium() as browser:
        context, page, errors = _page(browser)
        _sign_in(page, url)
        _connect(page, url, "Google")
        account_url = page.url
        server.revoke_user(EMAIL)
        page.click("[data-mc-oauth-test]")
        page.wait_for_selector(".mc-reconnect-cta")
        page.goto(f"{url}/email/")
        assert page.locator(".mc-badge").first.inner_text().strip() == "Needs reconnect"
        shoot(page, "oauth-needs-reconnect")
        page.click(".mc-card button:has-text('Sign in again')")
        page.wait_for_selector("button[value=allow]")
        page.click("button[value=allow]")
        page.wait_for_url(account_url)
        assert page.locator(".mc-badge").first.inner_text().strip() == "Connected"
        assert page.locator(".mc-result--ok .mc-result-row--ok").count() == 2
        assert [e for e in errors if not e.startswith("Failed to load resource")] == []
        context.close()
