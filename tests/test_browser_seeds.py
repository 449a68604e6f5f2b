"""The seed products' flows, replayed end to end in Chromium, one test per seed flow, named after
the seed; each test's docstring gives the flow step by step as the product describes it.
Screenshots at desktop and phone widths go to artifacts/screenshots/seed-*.png.

CARMIS, ELMA365, Carerix and Creatio run in the example app (its users, projects, admin pages
and new-mail toasts) against the real local peers: aiosmtpd (STARTTLS, PLAIN and XOAUTH2),
Dovecot (passwords and XOAUTH2 checked by introspection) and the local Authlib OAuth server as
Google, Microsoft and an admin-entered provider. VanillaSoft runs on the demo (``make demo``:
example app + sandbox + demo provider). One Chromium serves the whole module.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_mailconnect import MailAccount, MailConnect
from tests.browser_helpers import SCREENSHOTS, chromium, serve, shoot
from tests.mailboxes import fill, imap_client, message, reset_inbox
from tests.oauth_flows import providers
from tests.peers import MAILBOX_PASSWORD, MAILBOX_USER, free_port
from tests.peers.dovecot import DovecotPeer, dovecot_peer
from tests.peers.oauth import CLIENT_ID, CLIENT_SECRET

pytestmark = pytest.mark.browser

#: Alice's work address, typed by hand; her mailbox's login at aiosmtpd and Dovecot is
#: ``MAILBOX_USER`` (the validator refuses addresses at reserved names such as example.test).
WORK_ADDRESS = "alice@northwind-crm.com"
#: The agency's shared mailbox (Carerix), reached with the same login.
SHARED_ADDRESS = "jobs@northwind-crm.com"
#: The email domain of the provider an admin enters (Creatio).
ACME_DOMAIN = "acme-mail.net"
#: New mail for ELMA365's notification.
INVOICE = (
    b"From: Dana Whitfield <dana@fabrikam.example>\r\nTo: alice@northwind-crm.com\r\n"
    b"Subject: Invoice INV-2024-0193 is ready\r\nDate: Tue, 7 Jan 2025 09:30:00 +0000\r\n"
    b"Message-ID: <inv-0193@fabrikam.example>\r\n\r\n"
    b"Your invoice INV-2024-0193 for 1,240.00 EUR is ready. Payment is due in 30 days.\r\n"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium for every seed flow (each test opens its own context)."""
    with chromium() as found:
        yield found


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


# -- the example app against the real local peers ------------------------------------------------


@pytest.fixture(scope="module")
def imap(peer_certs: Any, oauth_introspection: Any) -> Iterator[DovecotPeer]:
    """This module's own Dovecot (its INBOX is reset and filled here): the password mailbox
    ``MAILBOX_USER``, and XOAUTH2 for any address the OAuth server vouches for."""
    yield from dovecot_peer(
        cert_file=peer_certs.cert_file,
        key_file=peer_certs.key_file,
        ca_file=peer_certs.ca_file,
        introspection=oauth_introspection,
    )


@dataclass
class Crm:
    """The example app ("Northwind CRM") at ``url`` and the peers behind it."""

    url: str
    app: Flask
    oauth: Any  # the local OAuth server (Google and Microsoft flavours)
    smtp: Any  # aiosmtpd, STARTTLS
    imap: DovecotPeer

    def register_callback(self, key: str) -> None:
        self.oauth.add_redirect_uri(CLIENT_ID, f"{self.url}/email/oauth/{key}/callback")

    def account(self, email: str) -> MailAccount:
        with self.app.app_context():
            session = self.app.extensions["mailconnect"].session
            found = session.scalars(sa.select(MailAccount).where(MailAccount.email == email))
            account = found.one()
            session.expunge(account)
            return account

    def person_id(self, email: str) -> str:
        from example_app.models import User, db

        with self.app.app_context():
            return str(db.session.scalar(sa.select(User.id).where(User.email == email)))


@pytest.fixture
def crm(
    tmp_path: Path,
    oauth_provider: Any,
    smtp_starttls: Any,
    imap: DovecotPeer,
    peer_config: dict[str, Any],
) -> Iterator[Crm]:
    """The example app with Google and Microsoft at the local OAuth server, their mail servers
    (and any typed by hand) at aiosmtpd and Dovecot; server look-ups off the network (the
    connect page asks only the catalogue), the newest mail loaded on save."""
    from example_app import create_app
    from tests.hostapp import TEST_KEY

    reset_inbox(imap)  # and every other folder: make the Sent folder sent mail is copied to
    client = imap_client(imap)
    client.create_folder("Sent")
    client.logout()
    app = create_app(
        {
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "SECRET_KEY": "browser-seeds-crm",
            "MAILCONNECT_ENCRYPTION_KEYS": [TEST_KEY],
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'crm.db'}",
            "MAILCONNECT_PROVIDERS": providers(oauth_provider, smtp_starttls, imap),
            "MAILCONNECT_CONNECT_TIMEOUT": 5,
            "MAILCONNECT_MX_LOOKUP": False,
            "MAILCONNECT_ISPDB_URL": None,
            "MAILCONNECT_AUTOCONFIG_URLS": [],
            "MAILCONNECT_DETECT_AUTODISCOVER": False,
            "MAILCONNECT_DETECT_TIMEOUT": 1.0,
            # SRV look-ups go to a port where nothing answers: no query leaves the machine.
            "MAILCONNECT_DNS_NAMESERVERS": [f"127.0.0.1:{free_port()}"],
            **peer_config,
        }
    )
    with serve(app) as url:
        app.config["MAILCONNECT_EXTERNAL_URL"] = url
        env = Crm(url, app, oauth_provider, smtp_starttls, imap)
        for key in ("google", "microsoft"):
            env.register_callback(key)
        yield env
    with app.app_context():
        app.extensions["sqlalchemy"].engines[None].dispose()


def _page(browser: Any) -> tuple[Any, Any, list[str]]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return context, page, errors


def _no_errors(errors: list[str]) -> None:
    assert [e for e in errors if not e.startswith("Failed to load resource")] == []


def _sign_in(page: Any, url: str, email: str, password: str) -> None:
    page.goto(f"{url}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    with page.expect_navigation():  # signed in (the next goto must not cut the POST short)
        page.click("button[type=submit]")


def _connect_with_password(
    page: Any, crm: Crm, *, email: str, password: str, username: str = MAILBOX_USER
) -> None:
    """On a connect page (anyone's): type the address, Continue, type the servers by hand,
    Test connection (both rows green), Save; lands on the saved account's page."""
    page.wait_for_selector("[name=continue_]", state="visible")
    page.fill("#email", email)
    page.click("[name=continue_]")
    page.wait_for_selector("#smtp_host", state="visible")
    save = page.locator("[data-mc-save]")
    assert save.is_disabled()  # nothing tested yet
    page.fill("#username", username)
    page.fill("#password", password)
    page.fill("#smtp_host", crm.smtp.host)
    page.fill("#smtp_port", str(crm.smtp.port))
    page.select_option("#smtp_security", crm.smtp.security)
    page.fill("#imap_host", crm.imap.host)
    page.fill("#imap_port", str(crm.imap.ssl_port))
    page.select_option("#imap_security", "ssl")
    page.click("[data-mc-test]")
    page.wait_for_selector(".mc-result--ok, .mc-result--fail", timeout=15_000)


def _save(page: Any, lands: str = "**/email/accounts/*") -> None:
    """Save after a passing test; waits for the page the save lands on."""
    assert page.locator(".mc-result-row--ok").count() == 2
    page.locator("[data-mc-save]").click()
    page.wait_for_url(lands)


def _consent(page: Any, email: str | None = None) -> None:
    """At the provider's consent page: sign in as ``email`` (else the hinted one), Allow."""
    page.wait_for_selector("button[value=allow]")
    if email is not None:
        page.fill("#email", email)
    page.click("button[value=allow]")


def _send(
    crm: Crm, subject: str, *, account_id: int | None = None, owner: tuple[str, str] | None = None
) -> EmailMessage:
    """The host sends (what the CRM does from a contact's card), from ``account_id`` or the
    account it resolves for ``owner``: returns the message aiosmtpd received."""
    before = len(crm.smtp.messages)
    with crm.app.app_context():
        ext = MailConnect.of(crm.app)
        msg = EmailMessage()
        msg["To"] = "Dana Whitfield <dana@northwind.example>"
        msg["Subject"] = subject
        msg.set_content("Hello Dana,\n\nthe quote is attached.\n")
        msg.add_alternative("<p>Hello Dana,</p><p>the quote is attached.</p>", subtype="html")
        account = ext.get_account(account_id) if account_id is not None else None
        ext.send(msg, account=account, owner=owner)
    assert len(crm.smtp.messages) == before + 1
    parsed = message_from_bytes(crm.smtp.messages[-1].data, policy=email_policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_carmis_person_connects_mailbox_sets_signature_sends_disconnects_and_reconnects(
    crm: Crm, browser: Any
) -> None:
    """CARMIS, "Почта" settings of an employee:

    1. The employee opens their email settings: no mailbox yet, "Connect" offers Google,
       Microsoft and a mailbox by address and password.
    2. They type the address, then the SMTP and IMAP servers by hand, and press Test
       connection: a wrong password says so plainly; with the right one both checks pass and
       Save becomes possible.
    3. They save: the mailbox is connected and theirs.
    4. They set the sender name and a formatted signature.
    5. Mail sent from the CRM goes out through it, from that name, with that signature.
    6. They disconnect it (after a confirmation), then connect again, this time with Google.
    """
    context, page, errors = _page(browser)
    url = crm.url
    _sign_in(page, url, "alice@demo.test", "alice")
    page.goto(f"{url}/email/")
    assert "No email account connected yet" in page.content()
    options = page.locator(".mc-connect-options")
    for label in ("Connect with Google", "Connect with Microsoft", "Email address and password"):
        assert label in options.inner_text()
    shoot(page, "seed-carmis-empty")

    page.click("text=Email address and password")
    page.wait_for_url("**/email/connect")
    _connect_with_password(page, crm, email=WORK_ADDRESS, password="not-the-password")
    failed = page.locator("[data-mc-result]").inner_text()
    assert "password" in failed.lower() and page.locator("[data-mc-save]").is_disabled()
    shoot(page, "seed-carmis-test-failed")
    page.fill("#password", MAILBOX_PASSWORD)
    page.click("[data-mc-test]")
    page.wait_for_selector(".mc-result--ok", timeout=15_000)
    assert page.locator("[data-mc-save]").is_enabled()
    shoot(page, "seed-carmis-test-ok")
    _save(page)
    assert page.locator(".mc-badge").first.inner_text().strip() == "Connected"
    account = crm.account(WORK_ADDRESS)
    assert account.owner == ("user", crm.person_id("alice@demo.test"))

    # Sender name and signature.
    page.fill("#display_name", "Alice Martin")
    page.locator("[data-mc-editor]").click()
    page.keyboard.type("Alice Martin, ")
    page.click("[data-mc-cmd=bold]")
    page.keyboard.type("Northwind Sales")
    page.click("text=Save settings")
    page.wait_for_selector(".mc-preview b")
    assert page.locator("h1.mc-title").inner_text().strip() == "Alice Martin"
    assert page.locator(".mc-preview b").inner_text() == "Northwind Sales"
    shoot(page, "seed-carmis-signature")

    sent = _send(crm, "Quote for 40 standing desks", account_id=account.id)
    assert sent["From"] == f"Alice Martin <{WORK_ADDRESS}>"
    html, text = sent.get_body(("html",)), sent.get_body(("plain",))
    assert html is not None and text is not None
    assert "Alice Martin, <b>Northwind Sales</b>" in html.get_content()
    plain = text.get_content().replace("\r\n", "\n")
    assert plain.endswith("\n-- \nAlice Martin, Northwind Sales\n")
    client = imap_client(crm.imap)  # and a copy is in the mailbox's Sent folder
    client.select_folder("Sent", readonly=True)
    assert len(client.search(["SUBJECT", "Quote for 40 standing desks"])) == 1
    client.logout()

    # Disconnect, then connect again with Google.
    page.click("text=Disconnect")
    page.wait_for_selector("[name=submit]")
    assert page.locator("h1").last.inner_text() == f"Disconnect {WORK_ADDRESS}?"
    shoot(page, "seed-carmis-disconnect")
    page.click("[name=submit]")
    page.wait_for_url(f"{url}/email/")
    assert page.locator(".mc-card").count() == 0
    page.click("text=Connect with Google")
    _consent(page)
    page.wait_for_url(f"{url}/email/accounts/*")
    assert "Connected with Google" in page.locator("[data-mc-connected-with]").inner_text()
    assert page.locator(".mc-result--ok .mc-result-row--ok").count() == 2
    page.goto(f"{url}/email/")
    card = page.locator(".mc-card")
    assert card.count() == 1 and f"{MAILBOX_USER} · Connected with Google" in card.inner_text()
    shoot(page, "seed-carmis-reconnected")
    _no_errors(errors)
    context.close()


def test_elma365_new_mail_pops_up_with_author_and_subject_and_opens_the_message(
    crm: Crm, browser: Any
) -> None:
    """ELMA365, "Email" in the profile and its "Email notifications":

    1. The employee adds their mailbox (address, password, servers) and saves it: the 50 most
       recent messages of the inbox are there at once, without pressing anything.
    2. In the mailbox's settings they keep "Email notifications" on and tick "Do not notify on
       my phone".
    3. A message arrives: a pop-up notification shows its author and subject (on the
       computer, not at phone width).
    4. Clicking it opens the message: headers and body; the notification is gone.
    5. With notifications off, new mail arrives without a pop-up.
    """
    fill(crm.imap, range(1, 61))  # 60 messages waiting in the inbox
    context, page, errors = _page(browser)
    url = crm.url
    _sign_in(page, url, "alice@demo.test", "alice")
    page.goto(f"{url}/email/connect")
    _connect_with_password(page, crm, email=WORK_ADDRESS, password=MAILBOX_PASSWORD)
    _save(page)
    recent = page.locator("[data-mc-recent] li")
    assert recent.count() == 50  # loaded on save: the newest 50 of 60
    assert "Message 60" in recent.first.inner_text() and "Sender 60" in recent.first.inner_text()
    assert page.locator("[data-toast]").count() == 0  # mail that was already there is not new
    shoot(page, "seed-elma365-saved")

    settings = page.locator("[data-mc-new-mail-settings]")
    assert settings.locator("input[name=notify_new_mail]").is_checked()
    settings.locator("input[name=mute_new_mail_mobile]").check()
    with page.expect_navigation():  # saved, and the page shows what was stored
        settings.locator("button, input[type=submit]").last.click()
    settings = page.locator("[data-mc-new-mail-settings]")
    assert settings.locator("input[name=notify_new_mail]").is_checked()
    assert settings.locator("input[name=mute_new_mail_mobile]").is_checked()

    client = imap_client(crm.imap)
    client.append("INBOX", INVOICE)
    client.logout()
    page.click("[data-mc-sync]")
    toast = page.locator("[data-toast]")
    toast.wait_for()
    assert toast.count() == 1
    assert toast.locator(".toast-author").inner_text() == "Dana Whitfield <dana@fabrikam.example>"
    assert toast.locator(".toast-subject").inner_text() == "Invoice INV-2024-0193 is ready"
    assert f"New mail · {WORK_ADDRESS}" in toast.inner_text()
    shoot(page, "seed-elma365-toast")
    toast.screenshot(path=str(SCREENSHOTS / "seed-elma365-toast-detail-desktop.png"))
    page.set_viewport_size({"width": 390, "height": 844})
    assert not toast.is_visible()  # "do not notify on my phone"
    page.set_viewport_size({"width": 1280, "height": 800})
    assert toast.is_visible()

    page.click("[data-toast-open]")
    page.wait_for_selector("[data-mc-message]")
    assert page.locator("#mc-mail-subject").inner_text() == "Invoice INV-2024-0193 is ready"
    header = page.locator("[data-mc-message]").inner_text()
    assert "Dana Whitfield" in header and "dana@fabrikam.example" in header
    assert "1,240.00 EUR" in page.locator("[data-mc-mail-body]").inner_text()
    assert page.locator("[data-toast]").count() == 0  # opened: seen
    shoot(page, "seed-elma365-message")

    # Notifications off: the next message arrives quietly.
    page.goto(f"{url}/email/accounts/{crm.account(WORK_ADDRESS).id}")
    settings = page.locator("[data-mc-new-mail-settings]")
    settings.locator("input[name=notify_new_mail]").uncheck()
    with page.expect_navigation():
        settings.locator("button, input[type=submit]").last.click()
    assert not page.locator("[data-mc-new-mail-settings] input[name=notify_new_mail]").is_checked()
    client = imap_client(crm.imap)
    client.append("INBOX", message(61, "Quiet"))
    client.logout()
    page.click("[data-mc-sync]")
    page.wait_for_selector("[data-mc-recent] li:has-text('Quiet 61')")
    assert page.locator("[data-toast]").count() == 0
    _no_errors(errors)
    context.close()


def test_carerix_admin_sets_up_shared_mailbox_and_manages_a_recruiters_account(
    crm: Crm, browser: Any
) -> None:
    """Carerix, "E-mail settings" of the agency and its recruiters:

    1. The administrator connects the agency's shared mailbox (jobs@...) for the whole
       organisation: address, the login it is reached with, servers, Test connection, Save.
    2. A recruiter connects their own mailbox with Microsoft 365 (sign in, allow).
    3. The administrator sees every mailbox with its owner, and deactivates the recruiter's:
       it stays, marked inactive, on the recruiter's own page too.
    4. Mail the CRM sends for a project without its own mailbox goes out through the shared
       mailbox.
    5. The audit trail shows who connected and deactivated what.
    """
    context, page, errors = _page(browser)
    url = crm.url
    _sign_in(page, url, "admin@demo.test", "admin")
    page.goto(f"{url}/email/organization/")
    page.wait_for_url("**/email/scopes/organization/")
    org = page.locator("li.mc-scope-row[data-owner^='organization:']")
    org.locator("a.mc-btn:has-text('Connect')").click()
    _connect_with_password(page, crm, email=SHARED_ADDRESS, password=MAILBOX_PASSWORD)
    _save(page, lands=f"{url}/email/scopes/organization/")
    shared = page.locator(f"li.mc-scope-account:has-text('{SHARED_ADDRESS}')")
    assert shared.count() == 1 and "Connected" in shared.inner_text()
    shoot(page, "seed-carerix-organisation")
    assert crm.account(SHARED_ADDRESS).owner_kind == "organization"

    # The recruiter connects theirs with Microsoft.
    context.clear_cookies()
    _sign_in(page, url, "bob@demo.test", "bob")
    page.goto(f"{url}/email/")
    page.click("text=Connect with Microsoft")
    _consent(page, "bob@example.test")
    page.wait_for_url(f"{url}/email/accounts/*")
    assert "Connected with Microsoft" in page.locator("[data-mc-connected-with]").inner_text()
    assert page.locator(".mc-result--ok .mc-result-row--ok").count() == 2
    bob_account = crm.account("bob@example.test")
    assert bob_account.owner == ("user", crm.person_id("bob@demo.test"))

    # The administrator's list: both, each with its owner; Bob's is deactivated.
    context.clear_cookies()
    _sign_in(page, url, "admin@demo.test", "admin")
    page.goto(f"{url}/email/admin/accounts")
    row_shared = page.locator(f"tr[data-account-id='{crm.account(SHARED_ADDRESS).id}']")
    row_bob = page.locator(f"tr[data-account-id='{bob_account.id}']")
    assert "Organization" in row_shared.inner_text()
    # The owner as the host labels people (its email here; the people pages add the name).
    assert "bob@demo.test" in row_bob.inner_text() and "Microsoft" in row_bob.inner_text()
    with page.expect_navigation():
        row_bob.locator("button:has-text('Deactivate')").click()
    row_bob = page.locator(f"tr[data-account-id='{bob_account.id}']")
    assert "Inactive" in row_bob.inner_text()
    shoot(page, "seed-carerix-admin-accounts")

    # A project without its own mailbox sends through the shared one.
    from example_app.models import Project, db

    with crm.app.app_context():
        apollo = db.session.scalar(sa.select(Project.id).where(Project.name == "Apollo launch"))
    sent = _send(crm, "Interview on Thursday", owner=("project", str(apollo)))
    assert sent["From"] == SHARED_ADDRESS

    page.goto(f"{url}/email/admin/audit")
    events = [" ".join(row.split()) for row in page.locator("tr[data-event]").all_inner_texts()]
    assert any(
        f"admin admin@demo.test connected the organization's account {SHARED_ADDRESS}" in e
        for e in events
    )
    assert "admin admin@demo.test deactivated bob@demo.test's account bob@example.test" in events[0]
    shoot(page, "seed-carerix-audit")

    context.clear_cookies()
    _sign_in(page, url, "bob@demo.test", "bob")
    page.goto(f"{url}/email/")
    card = page.locator(".mc-card")
    assert "Inactive" in card.inner_text()
    shoot(page, "seed-carerix-recruiter")
    _no_errors(errors)
    context.close()


def test_creatio_admin_adds_oauth_provider_and_its_domain_offers_its_sign_in(
    crm: Crm, browser: Any
) -> None:
    """Creatio, "Mail service providers" and a user's "Add mailbox":

    1. The administrator opens the providers list: those set up in configuration are listed
       (read only) with their domains.
    2. They add a provider with OAuth 2.0 sign-in: the form shows the OAuth fields only once
       OAuth is chosen; client id and secret, the endpoints, the servers and its email
       domain; saving shows the redirect URI to register at the provider.
    3. A user adds a mailbox by typing an address at that domain: instead of a password form
       they are offered "Connect with <provider>".
    4. They sign in there (the address is filled in) and allow: the mailbox is connected,
       sending and receiving both work.
    """
    urls = crm.oauth.google
    context, page, errors = _page(browser)
    url = crm.url
    _sign_in(page, url, "admin@demo.test", "admin")
    page.goto(f"{url}/email/admin/providers")
    google = page.locator("tr[data-declared-provider=google]")
    assert "gmail.com" in google.inner_text() and "OAuth 2.0" in google.inner_text()
    shoot(page, "seed-creatio-providers")

    page.click("text=Add provider")
    page.wait_for_url("**/admin/providers/new")
    oauth_fields = page.locator("[data-mc-oauth-fields]")
    assert not oauth_fields.is_visible()
    page.fill("input[name=name]", "Acme Mail")
    page.fill("input[name=smtp_host]", crm.smtp.host)
    page.fill("input[name=smtp_port]", str(crm.smtp.port))
    page.select_option("select[name=smtp_security]", crm.smtp.security)
    page.fill("input[name=imap_host]", crm.imap.host)
    page.fill("input[name=imap_port]", str(crm.imap.ssl_port))
    page.select_option("select[name=imap_security]", "ssl")
    page.select_option("select[name=auth_method]", "oauth2")
    assert oauth_fields.is_visible()
    page.fill("input[name=client_id]", CLIENT_ID)
    page.fill("input[name=client_secret]", CLIENT_SECRET)
    page.fill("input[name=authorize_url]", urls.authorize_url)
    page.fill("input[name=token_url]", urls.token_url)
    page.fill("input[name=revoke_url]", urls.revoke_url)
    page.fill("input[name=userinfo_url]", urls.userinfo_url)
    page.fill("textarea[name=domains]", ACME_DOMAIN)
    shoot(page, "seed-creatio-provider-form")
    with page.expect_navigation():
        page.locator("[data-mc-provider-form] [type=submit]").last.click()
    assert "Acme Mail" in page.content()
    page.goto(f"{url}/email/admin/providers")
    row = page.locator("tr[data-provider=acme-mail]")
    assert ACME_DOMAIN in row.inner_text() and "OAuth 2.0" in row.inner_text()
    row.locator("a.mc-strong").click()
    callback = page.locator("#mc-redirect-uri").input_value()
    assert callback == f"{url}/email/oauth/acme-mail/callback"
    crm.oauth.add_redirect_uri(CLIENT_ID, callback)  # registered at the provider, as told

    context.clear_cookies()
    _sign_in(page, url, "alice@demo.test", "alice")
    page.goto(f"{url}/email/connect")
    page.fill("#email", f"alice@{ACME_DOMAIN}")
    page.keyboard.press("Tab")
    offer = page.locator('[data-mc-oauth-offer="acme-mail"]')
    offer.wait_for(state="visible")
    assert f"{ACME_DOMAIN} uses Acme Mail" in offer.inner_text()
    assert not page.locator("input[name=password]").is_visible()
    shoot(page, "seed-creatio-offer")
    offer.locator("button:has-text('Connect with Acme Mail')").click()
    page.wait_for_selector("button[value=allow]")
    assert page.locator("#email").input_value() == f"alice@{ACME_DOMAIN}"
    page.click("button[value=allow]")
    page.wait_for_url(f"{url}/email/accounts/*")
    assert "Connected with Acme Mail" in page.locator("[data-mc-connected-with]").inner_text()
    assert page.locator(".mc-result--ok .mc-result-row--ok").count() == 2
    account = crm.account(f"alice@{ACME_DOMAIN}")
    assert (account.provider, account.auth_method) == ("acme-mail", "oauth2")
    assert account.owner == ("user", crm.person_id("alice@demo.test"))
    shoot(page, "seed-creatio-connected")
    _no_errors(errors)
    context.close()


def test_vanillasoft_admin_signs_in_for_caller(demo: tuple[str, Any, Any], browser: Any) -> None:
    """VanillaSoft, "Email settings" of a caller, set up by an admin:

    1. The admin searches the caller (name and address on each result) and opens their page.
    2. They click "Connect with <provider>" and sign in for the caller at the provider (the
       caller's address is filled in), allowing access.
    3. The account is the caller's, connected; the audit trail says the admin did it on
       their behalf.
    4. The caller sees it as theirs, connected, with nothing left to complete.
    """
    url, app, _box = demo
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
    _no_errors(errors)
    context.close()


def test_vanillasoft_handover_when_signing_in_for_callers_is_off(
    demo: tuple[str, Any, Any], browser: Any
) -> None:
    """The organisation forbids admins to sign in for others
    (``MAILCONNECT_ADMIN_OAUTH_ON_BEHALF = False``): the admin hands the account over, the
    caller's card says where to sign in (not "Connected with"), and completing it says so."""
    url, app, _box = demo
    app.config["MAILCONNECT_ADMIN_OAUTH_ON_BEHALF"] = False
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
    _no_errors(errors)
    context.close()
