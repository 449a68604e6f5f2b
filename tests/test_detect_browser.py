"""The connect page's server look-up in Chromium: "Looking up servers for ..." while the server
asks the (local) sources, then the servers filled in with where they came from, the fields still
editable; a detected OAuth provider's "Connect with ..." button instead of the password form;
and the look-up requests never carry the password. Screenshots (desktop and phone) go to
artifacts/screenshots/detect-*.png."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from flask_mailconnect.detection.workers import MAX_DETECTIONS
from tests.browser_helpers import chromium, serve, shoot
from tests.detection_helpers import ACME, BOUND, detect_in, eventually, in_thread
from tests.peers.certs import TestCerts, make_certs
from tests.peers.detect_env import DetectPeers, detect_peers, fixture
from tests.peers.web_server import Route

pytestmark = pytest.mark.browser
PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TestCerts:
    return make_certs(tmp_path_factory.mktemp("detect-browser-certs"))


@pytest.fixture
def peers(certs: TestCerts) -> Iterator[DetectPeers]:
    with detect_peers(certs, {}) as found:
        # Slow enough to see (and photograph) the look-up state; well within the deadline.
        found.ispdb("isp-one.net", Route(body=fixture("several.xml"), delay=4.0))
        found.ispdb("acme-customer.net", Route(body=fixture("oauth2.xml")))
        yield found


@pytest.fixture
def page_at(peers: DetectPeers) -> Iterator[tuple[Any, str, list[str]]]:
    app = peers.app(MAILCONNECT_PROVIDERS=ACME, MAILCONNECT_DETECT_TIMEOUT=6.0)
    with serve(app) as url, chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.request.post(f"{url}/test-login/1")
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        # Failed loads are counted by their responses below (the host has no favicon).
        page.on("console", lambda m: m.type == "error" and not m.text.startswith(
            "Failed to load resource") and errors.append(m.text))  # fmt: skip
        page.on("response", lambda r: r.status >= 400 and "favicon" not in r.url
                and errors.append(f"{r.status} {r.url}"))  # fmt: skip
        asked: list[str] = []
        page.on("request", lambda r: "/detect" in r.url and asked.append(
            f"{r.method} {r.url} {r.post_data or ''}"))  # fmt: skip
        page.goto(f"{url}/email/connect")
        yield page, url, asked
        assert errors == []


def test_lookup_state_then_the_result_with_its_source(page_at: tuple[Any, str, list[str]]) -> None:
    page, _url, asked = page_at
    page.fill("input[name=email]", "ana@isp-one.net")
    page.keyboard.press("Tab")
    status = page.locator("[data-mc-detect]")
    status.wait_for(state="visible")
    assert status.inner_text().strip() == "Looking up servers for isp-one.net…"
    assert page.locator("[data-mc-detect-busy]").is_visible()
    page.fill("input[name=password]", PASSWORD)  # typed while the look-up runs
    shoot(page, "detect-looking-up")
    page.wait_for_function(
        "document.querySelector('[data-mc-detect-text]').textContent.startsWith('Servers for')"
    )
    assert status.inner_text().strip() == (
        "Servers for isp-one.net found from Mozilla's ISP database. Check them below: any "
        "field can be changed."
    )
    assert not page.locator("[data-mc-detect-busy]").is_visible()
    assert page.input_value("input[name=smtp_host]") == "smtp.isp-one.net"
    assert page.input_value("input[name=smtp_port]") == "465"
    assert page.input_value("select[name=smtp_security]") == "ssl"
    assert page.input_value("input[name=imap_host]") == "imap.isp-one.net"
    assert page.input_value("input[name=username]") == "ana@isp-one.net"
    assert page.input_value("input[name=password]") == PASSWORD  # nothing typed is lost
    # The found servers stay editable.
    page.fill("input[name=imap_host]", "mail.isp-one.net")
    assert page.input_value("input[name=imap_host]") == "mail.isp-one.net"
    shoot(page, "detect-found")
    # Another address: looked up again, still without the password.
    page.fill("input[name=email]", "bo@nobody-knows.net")
    page.keyboard.press("Tab")
    page.wait_for_function(
        "document.querySelector('[data-mc-detect-text]').textContent.startsWith('No settings')"
    )
    assert len(asked) == 2
    assert all(a.startswith("GET ") and PASSWORD not in a for a in asked)


def test_a_detected_oauth_provider_replaces_the_password_form(
    page_at: tuple[Any, str, list[str]],
) -> None:
    page, _url, _asked = page_at
    page.fill("input[name=email]", "ana@acme-customer.net")
    page.keyboard.press("Tab")
    offer = page.locator('[data-mc-oauth-offer="acme"]')
    offer.wait_for(state="visible")
    assert "acme-customer.net uses Acme Mail" in offer.inner_text()
    assert (
        page.locator("button[form=mc-oauth-acme]").inner_text().startswith("Connect with Acme Mail")
    )
    assert not page.locator("input[name=password]").is_visible()
    assert page.locator("#mc-oauth-acme [name=login_hint]").input_value() == "ana@acme-customer.net"
    shoot(page, "detect-oauth-offer")
    page.click("[data-mc-use-password]")
    assert page.locator("input[name=password]").is_visible()
    assert not offer.is_visible()


def test_admin_providers_page_and_form_in_the_browser(peers: DetectPeers) -> None:
    declared = {
        "corpmail": {
            "name": "Corp Mail", "domains": ["corp-mail.net", "corp-group.net"],
            "smtp": {"host": "smtp.corp-mail.net", "port": 587, "security": "starttls"},
            "imap": {"host": "imap.corp-mail.net", "port": 993, "security": "ssl"},
        },
        **ACME,
    }  # fmt: skip
    app = peers.app(MAILCONNECT_PROVIDERS=declared)
    with serve(app) as url, chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.request.post(f"{url}/test-login/3")  # the admin
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{url}/email/admin/providers")
        row = page.locator('tr[data-declared-provider="corpmail"]')
        assert "corp-mail.net, corp-group.net" in row.inner_text()
        assert "OAuth 2.0" in page.locator('tr[data-declared-provider="acme"]').inner_text()
        shoot(page, "detect-admin-providers")
        page.goto(f"{url}/email/admin/providers/new")
        oauth_fields = page.locator("[data-mc-oauth-fields]")
        assert not oauth_fields.is_visible()  # Password is the default
        page.select_option("select[name=auth_method]", "oauth2")
        assert oauth_fields.is_visible()
        assert page.locator("input[name=client_id]").is_visible()
        shoot(page, "detect-admin-provider-form-oauth")
        page.select_option("select[name=auth_method]", "password")
        assert not oauth_fields.is_visible()
        assert errors == []


def test_the_login_is_filled_for_the_address_typed_not_the_previous_one(
    page_at: tuple[Any, str, list[str]], peers: DetectPeers
) -> None:
    page, _url, asked = page_at
    peers.ispdb("placeholder-host.net", Route(body=fixture("placeholders.xml")))
    page.fill("input[name=email]", "ana.lima@placeholder-host.net")
    page.keyboard.press("Tab")
    page.wait_for_function(
        "document.querySelector('[data-mc-detect-text]').textContent.startsWith('Servers for')"
    )
    assert page.input_value("input[name=username]") == "ana.lima"  # %EMAILLOCALPART%
    # Another person at the same domain: their own login, not Ana's.
    page.fill("input[name=email]", "bo@placeholder-host.net")
    page.keyboard.press("Tab")
    page.wait_for_function("document.querySelector('input[name=username]').value === 'bo'")
    assert page.input_value("input[name=imap_host]") == "mail.placeholder-host.net"
    assert len(asked) == 2  # each address has its own answer (the second from the cache)
    page.fill("input[name=email]", "ana.lima@placeholder-host.net")  # remembered in the page
    page.keyboard.press("Tab")
    page.wait_for_function("document.querySelector('input[name=username]').value === 'ana.lima'")
    assert len(asked) == 2


def test_a_busy_server_says_so_and_the_page_asks_again_later(
    page_at: tuple[Any, str, list[str]], peers: DetectPeers
) -> None:
    page, _url, asked = page_at
    release = threading.Event()
    for n in range(MAX_DETECTIONS):  # every place of the pool taken by a dripping answer
        peers.ispdb(f"held{n}.net", Route(drip=0.05, release=release))
    app = peers.apps[-1]
    held = [in_thread(lambda n=n: detect_in(app, f"x@held{n}.net")) for n in range(MAX_DETECTIONS)]
    try:
        assert eventually(lambda: len(set(peers.web.dripping)) == MAX_DETECTIONS)
        page.fill("input[name=email]", "ana@acme-customer.net")
        page.keyboard.press("Tab")
        page.wait_for_function(
            "document.querySelector('[data-mc-detect-text]').textContent.includes('busy')"
        )
        assert page.locator("[data-mc-detect]").inner_text().strip() == (
            "Servers for acme-customer.net could not be looked up right now (this site is busy "
            "looking up others): enter them below, or try again in a moment."
        )
        assert page.locator("input[name=smtp_host]").is_editable()
        shoot(page, "detect-busy")
    finally:
        release.set()
    for thread, _out in held:
        thread.join(BOUND)
    # Not remembered: the same address is asked again once the server has room.
    page.fill("input[name=email]", "bo@other.net")
    page.keyboard.press("Tab")
    page.wait_for_function(
        "document.querySelector('[data-mc-detect-text]').textContent.startsWith('No settings')"
    )
    page.fill("input[name=email]", "ana@acme-customer.net")
    page.keyboard.press("Tab")
    page.locator('[data-mc-oauth-offer="acme"]').wait_for(state="visible")
    assert len(asked) == 3
