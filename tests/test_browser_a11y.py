"""Accessibility in Chromium: axe-core at WCAG 2.2 AA on every page, and the keyboard alone.

axe-core comes from npm (package.json / package-lock.json; ``make test`` runs ``npm ci``) and is
injected into each loaded page with Playwright's ``add_script_tag``. Every page is checked in
the example host's layout and in our standalone base, with the rules tagged wcag2a, wcag2aa,
wcag21a, wcag21aa and wcag22aa, plus axe's best practices (landmarks, heading order, one main)
for what we render. The keyboard test connects an account with Tab, Enter and Space only:
the address, a failing then a passing Test connection (each announced through the form's
aria-live region), Save, then the account settings; every control it reaches inside our pages
shows our focus ring.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.axe_checks import AXE, axe
from tests.browser_helpers import chromium, serve
from tests.hosts import Seeded, example_hosts, sign_in
from tests.peers import require_peer

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 800}

# The focus ring of mailconnect.css: 2px solid --mc-focus-ring (#1d4ed8), offset from the edge.
FOCUS_JS = """() => {
  const el = document.activeElement;
  if (!el || !el.closest(".mailconnect")) return null;
  const cs = getComputedStyle(el);
  return {what: el.tagName.toLowerCase() + (el.name ? "[name=" + el.name + "]" : "")
            + " " + (el.innerText || el.value || "").trim().slice(0, 30),
          focusVisible: el.matches(":focus-visible"), style: cs.outlineStyle,
          width: cs.outlineWidth, color: cs.outlineColor};
}"""
RING = ("solid", "2px", "rgb(29, 78, 216)")
STANDALONE_PAGES = {"index", "connect", "account", "folders", "admin-accounts", "admin-provider",
                    "scope"}  # fmt: skip


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Seeded, Any, Any]]:
    if not AXE.exists():
        require_peer("axe-core", f"{AXE} missing: run `npm ci` (make test does)")
    hosts = example_hosts(tmp_path_factory.mktemp("a11y"))
    with hosts as (app, box, seeded), serve(app) as url, chromium() as browser:
        yield url, seeded, box, browser


@pytest.mark.parametrize("host", ["example", "standalone"])
def test_every_page_passes_axe(site: tuple[str, Seeded, Any, Any], host: str) -> None:
    url, seeded, _box, browser = site
    found: list[str] = []
    checked = 0
    # An administrator's view of every page, then what a person without accounts or admin
    # rights meets: the empty settings page, the 403 of an admin page, an OAuth error page.
    admin_pages = list(seeded.pages.items())
    if host == "standalone":  # the frame differs, not the pages: one of each kind
        admin_pages = [(n, p) for n, p in admin_pages if n in STANDALONE_PAGES]
    for who, password, pages in [
        ("admin@demo.test", "admin", admin_pages),
        ("bob@demo.test", "bob", [
            ("index-empty", "/email/"),
            ("admin-required", "/email/admin/accounts"),
            ("oauth-error", "/email/oauth/demo/callback?state=forged&code=x"),
        ]),
    ]:  # fmt: skip
        context = browser.new_context(viewport=DESKTOP)
        page = sign_in(context, url, host, who, password)
        for name, path in pages:
            response = page.goto(url + path)
            assert response.status in (200, 400, 403), f"{name}: {response.status}"
            assert page.locator(".mailconnect").count() == 1, name
            found += axe(page, name)
            checked += 1
        context.close()
    assert checked == len(admin_pages) + 3
    assert found == [], "\n".join(found)


def test_form_errors_pass_axe(site: tuple[str, Seeded, Any, Any]) -> None:
    """The connect form sent without the script (the server's error rendering)."""
    url, _seeded, _box, browser = site
    context = browser.new_context(viewport=DESKTOP, java_script_enabled=False)
    page = sign_in(context, url, "example", "bob@demo.test", "bob")
    page.goto(f"{url}/email/connect")
    page.fill("#email", "not-an-address")
    page.click("[name=continue_]")
    page.wait_for_selector(".mc-field--error")
    assert page.locator("#email").get_attribute("aria-invalid") == "true"
    described = page.locator("#email").get_attribute("aria-describedby") or ""
    assert "email-error" in described.split()
    # Scripts are off in this context: a second one with them on runs axe over the same HTML.
    html = page.content()
    context.close()
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.route(f"{url}/errors", lambda route: route.fulfill(body=html, content_type="text/html"))
    page.goto(f"{url}/errors")
    assert axe(page, "connect with errors") == []
    context.close()


def _tab_to(page: Any, selector: str, rings: list[str], limit: int = 60) -> None:
    """Press Tab until ``selector`` has focus; every stop inside our pages must show the ring."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        focus = page.evaluate(FOCUS_JS)
        if focus is not None:
            got = (focus["style"], focus["width"], focus["color"])
            if not focus["focusVisible"] or got != RING:
                rings.append(f"{focus['what']}: focus-visible={focus['focusVisible']} {got}")
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} not reached with {limit} presses of Tab")


def test_keyboard_only_connect_test_and_save(site: tuple[str, Seeded, Any, Any]) -> None:
    url, _seeded, box, browser = site
    context = browser.new_context(viewport=DESKTOP)
    page = sign_in(context, url, "example", "alice@demo.test", "alice")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    rings: list[str] = []
    page.goto(f"{url}/email/")

    _tab_to(page, "a.mc-option[href$='/email/connect']", rings)
    page.keyboard.press("Enter")
    page.wait_for_url("**/email/connect")
    _tab_to(page, "#email", rings)
    page.keyboard.type(box.address)
    # Leaving the field reveals the details (the script's change handler): on to the password.
    _tab_to(page, "#password", rings)
    page.keyboard.type("not-the-password")

    region = page.locator("[data-mc-result]")
    assert region.get_attribute("aria-live") == "polite"
    _tab_to(page, "[data-mc-test]", rings)
    page.keyboard.press("Space")
    page.wait_for_selector("[data-mc-result] .mc-result--fail", timeout=15_000)
    assert "Connection failed" in region.inner_text()
    # The result is announced by the region it lands in, not by a live region of its own.
    assert page.locator("[data-mc-result] [role=status], [data-mc-result] [aria-live]").count() == 0
    assert page.locator("[data-mc-save]").is_disabled()

    page.focus("#password")  # back to the field: Shift+Tab would do the same
    page.keyboard.press("Control+A")
    page.keyboard.type(box.password)
    _tab_to(page, "[data-mc-test]", rings)
    page.keyboard.press("Space")
    page.wait_for_selector("[data-mc-result] .mc-result--ok", timeout=15_000)
    assert "Connection works" in region.inner_text()
    found = axe(page, "connect, tested")

    _tab_to(page, "[data-mc-save]", rings)
    page.keyboard.press("Enter")
    page.wait_for_url("**/email/accounts/*")
    assert page.locator(".mailconnect h1").inner_text() == box.address
    found += axe(page, "account, after saving")

    # The settings form: a checkbox with Space, saved with Enter.
    _tab_to(page, "#mute_mobile", rings)
    before = page.locator("#mute_mobile").is_checked()
    page.keyboard.press("Space")
    assert page.locator("#mute_mobile").is_checked() is not before
    _tab_to(page, ".mc-form input[type=submit][name=submit]", rings)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.locator("#mute_mobile").is_checked() is not before
    found += axe(page, "account, settings saved")

    assert rings == [], "\n".join(rings)
    assert found == [], "\n".join(found)
    assert errors == []
    context.close()
