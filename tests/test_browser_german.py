"""The settings and connect pages in German, in Chromium: a host with Flask-Babel whose locale
selector answers "de". The words the script writes (look-up status, field errors, the save hint)
come from the catalogue too. Screenshots: artifacts/screenshots/german-*.png."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from flask import Flask
from flask_babel import Babel

from flask_mailconnect.models import MailAccount
from tests import hostapp
from tests.browser_helpers import chromium, serve, shoot

pytestmark = pytest.mark.browser


@pytest.fixture
def german_app() -> Iterator[Flask]:
    app, _ext = hostapp.create_app()
    Babel(app, locale_selector=lambda: "de")
    yield app
    with app.app_context():
        hostapp.db.engine.dispose()


@pytest.fixture
def german_url(german_app: Flask) -> Iterator[str]:
    with serve(german_app) as url:
        yield url


def _add_account(app: Flask) -> int:
    """Alice's account, stored directly (no mail server needed for these pages)."""
    with app.app_context():
        account = MailAccount(
            owner_kind="user", owner_id="1", provider="yahoo", email="ana.lopez@yahoo.com",
            username="ana.lopez@yahoo.com", password="app-password",
            smtp_host="smtp.mail.yahoo.com", smtp_port=465, smtp_security="ssl",
            imap_host="imap.mail.yahoo.com", imap_port=993, imap_security="ssl",
            display_name="Ana López", is_default=True,
            last_success_at=datetime.now(timezone.utc) - timedelta(minutes=3),
        )  # fmt: skip
        hostapp.db.session.add(account)
        hostapp.db.session.commit()
        return account.id


def _page(browser: Any, url: str, user_id: int) -> tuple[Any, list[str]]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="de-DE")
    assert context.request.post(f"{url}/test-login/{user_id}").ok
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # Failed requests, except the host's missing favicon (Chromium logs that one too).
    page.on("response", lambda r: r.status >= 400 and "favicon" not in r.url
            and errors.append(f"{r.status} {r.url}"))  # fmt: skip
    return page, errors


def test_settings_and_connect_pages_in_german(german_app: Flask, german_url: str) -> None:
    with chromium() as browser:
        page, errors = _page(browser, german_url, 1)

        page.goto(f"{german_url}/email/")
        assert page.locator(".mailconnect h1").inner_text() == "E-Mail-Konten"
        assert page.locator(".mc-empty-title").inner_text() == "Noch kein E-Mail-Konto verbunden"
        options = page.locator(".mc-connect-options")
        assert options.locator("h2").inner_text() == "E-Mail-Konto verbinden"
        assert "E-Mail-Adresse und Passwort" in options.inner_text()
        shoot(page, "german-settings-empty")

        account_id = _add_account(german_app)
        page.goto(f"{german_url}/email/")
        card = page.locator(f"[data-account-id='{account_id}']")
        assert "Standard" in card.inner_text() and "Verbunden" in card.inner_text()
        assert "Letzte erfolgreiche Prüfung: vor 3 Minuten" in card.inner_text()
        assert card.locator("a", has_text="Verwalten").is_visible()
        assert page.locator(".mc-connect-options h2").inner_text() == "Weiteres Konto verbinden"
        shoot(page, "german-settings")

        page.goto(f"{german_url}/email/accounts/{account_id}")
        assert page.locator("#mc-settings-heading").inner_text() == "Einstellungen"
        assert page.locator("label", has_text="Als Standardkonto verwenden").is_visible()
        assert page.locator("[data-mc-cmd=bold]").get_attribute("aria-label") == "Fett"
        shoot(page, "german-account")

        page.goto(f"{german_url}/email/")
        page.click("text=E-Mail-Adresse und Passwort")
        page.wait_for_url("**/email/connect")
        assert page.title().startswith("E-Mail-Konto verbinden")
        assert page.locator(".mailconnect h1").inner_text() == "E-Mail-Konto verbinden"
        lede = page.locator(".mc-lede").inner_text()
        assert lede == "Geben Sie Ihre Adresse ein: Wir ermitteln die Servereinstellungen."

        # The script's own words: a field error for a mistyped address ...
        page.fill("#email", "ana-at-example")
        page.click("[name=continue_]")
        error = page.locator('[data-error-for="email"]')
        assert error.inner_text() == "Geben Sie eine E-Mail-Adresse ein, etwa name@example.com."

        # ... and, for a known provider, the settings it filled in and the save hint.
        page.fill("#email", "ana.lopez@yahoo.com")
        page.click("[name=continue_]")
        page.wait_for_selector("#smtp_port", state="visible")
        assert error.is_hidden()  # the corrected address clears the message
        status = page.locator("[data-mc-detect-text]").inner_text()
        assert status == "Einstellungen für Yahoo Mail eingetragen."
        assert page.locator("h2", has_text="Senden (SMTP)").is_visible()
        assert page.locator("h2", has_text="Empfangen (IMAP)").is_visible()
        hint = page.locator("[data-mc-save-hint]").inner_text()
        assert hint == "Testen Sie die Verbindung, um speichern zu können."
        assert page.locator(".mc-actions a", has_text="Abbrechen").is_visible()
        page.fill("#password", "app-password")
        assert page.locator("[data-mc-test]").get_attribute("value") == "Verbindung testen"
        assert page.locator("label", has_text="Anzeigename").is_visible()
        shoot(page, "german-connect")
        assert errors == []


def test_admin_provider_form_in_german(german_url: str) -> None:
    with chromium() as browser:
        page, errors = _page(browser, german_url, 3)
        page.goto(f"{german_url}/email/admin/providers/new")
        assert page.locator(".mailconnect h1").inner_text() == "Anbieter hinzufügen"
        tabs = page.locator(".mc-tabs").inner_text()
        assert "Anbieter" in tabs and "Protokoll" in tabs
        page.select_option("[data-mc-auth-method]", "oauth2")
        assert page.locator("label", has_text="Client-Secret").is_visible()
        shoot(page, "german-provider-form")
        assert errors == []
