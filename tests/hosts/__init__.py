"""Three host layouts for the style and accessibility tests, on one example app.

- ``example``: the example app's own layout (``demo/layout.html``);
- ``bootstrap``: a Bootstrap 5 layout with a local copy of ``bootstrap.min.css`` (its reboot
  restyles every bare element);
- ``classless``: a layout shaped like Flask's tutorial with classless global rules on ``nav``,
  ``header``, ``h1``, ``form``, ``input``, ``button``, ``table``... (``static/classless.css``).

The app's ``MAILCONNECT_BASE_TEMPLATE`` is ``hosts/chooser.html``, which extends the layout named
by the ``mc_test_host`` cookie: one server and one database serve the three hosts, and each
browser context picks its host with a cookie.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Flask
from jinja2 import ChoiceLoader, FileSystemLoader

HERE = Path(__file__).resolve().parent
HOSTS = ("example", "bootstrap", "classless")
COOKIE = "mc_test_host"


@dataclass
class Seeded:
    """Ids of what :func:`seed` created, for building page URLs."""

    account_id: int = 0
    oauth_account_id: int = 0
    provider_id: int = 0
    alice_id: int = 0
    pages: dict[str, str] = field(default_factory=dict)


def install(app: Flask) -> None:
    """Serve the host layouts and their static files from ``app`` and pick them by cookie."""
    app.jinja_loader = ChoiceLoader(  # type: ignore[assignment]
        [FileSystemLoader(str(HERE / "templates")), app.jinja_loader]  # type: ignore[list-item]
    )
    app.register_blueprint(
        Blueprint(
            "test_hosts",
            __name__,
            static_folder=str(HERE / "static"),
            static_url_path="/hosts-static",
        )
    )
    app.config["MAILCONNECT_BASE_TEMPLATE"] = "hosts/chooser.html"


def seed(app: Flask, sandbox: Any) -> Seeded:
    """The admin's own accounts (one connected to the sandbox, one OAuth account), an admin
    provider, project accounts and audit rows: every page has something to show."""
    from example_app.models import Project, User, db
    from flask_mailconnect import MailAccount, MailConnect, ServerSettings
    from flask_mailconnect.models import AuditEvent, MailProvider, MailProviderDomain
    from flask_mailconnect.providers import forget_catalog

    out = Seeded()
    with app.app_context():
        users = {u.email: u for u in db.session.scalars(sa.select(User))}
        admin, alice = users["admin@demo.test"], users["alice@demo.test"]
        account = MailConnect.of(app).connect_manual(
            owner=("user", admin.id),
            settings=ServerSettings(
                email=sandbox.address,
                username=sandbox.address,
                password=sandbox.password,
                smtp_host=sandbox.smtp_host,
                smtp_port=sandbox.smtp_port,
                smtp_security=sandbox.smtp_security,
                imap_host=sandbox.imap_host,
                imap_port=sandbox.imap_port,
                imap_security=sandbox.imap_security,
            ),
            actor=admin,
            display_name="Ada Admin",
        )
        oauth = MailAccount(
            owner_kind="user", owner_id=str(admin.id), provider="gmail", auth_method="oauth2",
            email="ada.admin@gmail.com", username="ada.admin@gmail.com",
            smtp_host="smtp.gmail.com", smtp_port=465, smtp_security="ssl",
            imap_host="imap.gmail.com", imap_port=993, imap_security="ssl",
            status="needs_reconnect", last_error_code="auth_failed",
            last_error_message="Google no longer accepts this connection: sign in again.",
        )  # fmt: skip
        db.session.add(oauth)
        provider = MailProvider(
            key="northwind", name="Northwind Mail", smtp_host="smtp.northwind-traders.com",
            smtp_port=587, imap_host="imap.northwind-traders.com", imap_port=993,
        )  # fmt: skip
        provider.domains.append(MailProviderDomain(domain="northwind-traders.com"))
        db.session.add(provider)
        # Written straight to the table, not through the admin pages: drop the provider rows
        # this process cached while connect_manual() read the catalogue above.
        forget_catalog()
        projects = {p.name: p.id for p in db.session.scalars(sa.select(Project))}
        for project, email, status, active in [
            ("Apollo launch", "launch@northwind-traders.com", "connected", True),
            ("Website redesign", "web@northwind-traders.com", "error", False),
        ]:
            db.session.add(MailAccount(
                owner_kind="project", owner_id=str(projects[project]), provider="northwind",
                email=email, username=email, smtp_host="smtp.northwind-traders.com",
                smtp_port=587, smtp_security="starttls", status=status, active=active,
            ))  # fmt: skip
        db.session.add(AuditEvent(
            action="deactivated", outcome="ok", actor_id=str(admin.id), actor_label="Ada Admin",
            account_email="web@northwind-traders.com", owner_kind="project",
            owner_id=str(projects["Website redesign"]), remote_addr="127.0.0.1",
        ))  # fmt: skip
        db.session.commit()
        # Recent mail from the sandbox's INBOX: the account page's list and one message page.
        ext = MailConnect.of(app)
        ext.sync_recent(account, limit=5)
        db.session.commit()
        newest = max(m.uid for m in account.messages)
        out.account_id, out.oauth_account_id = account.id, oauth.id
        out.provider_id, out.alice_id = provider.id, alice.id
    a, p = out.account_id, out.provider_id
    out.pages = {
        "index": "/email/",
        "connect": "/email/connect",
        "reconnect": f"/email/accounts/{a}/reconnect",
        "account": f"/email/accounts/{a}",
        "account-oauth": f"/email/accounts/{out.oauth_account_id}",
        "message": f"/email/accounts/{a}/messages/INBOX/{newest}",
        "folders": f"/email/accounts/{a}/folders",
        "disconnect": f"/email/accounts/{a}/disconnect",
        "admin-accounts": "/email/admin/accounts",
        "admin-people": "/email/admin/users?q=alice",
        "admin-person": f"/email/admin/users/{out.alice_id}",
        "admin-providers": "/email/admin/providers",
        "admin-provider": f"/email/admin/providers/{p}",
        "admin-audit": "/email/admin/audit",
        "scope": "/email/scopes/project/",
        "scope-disconnect-all": "/email/scopes/project/disconnect-all",
    }
    return out


@contextmanager
def example_hosts(tmp: Path) -> Iterator[tuple[Flask, Any, Seeded]]:
    """The example app with the three host layouts and the demo sandbox, seeded."""
    from example_app import create_app
    from example_app.sandbox import Sandbox
    from tests.hostapp import TEST_KEY

    box = Sandbox(tmp / "sandbox", smtp_port=0, imap_port=0)
    box.start()
    try:
        app = create_app({
            **box.flask_config(),
            "INSTANCE_PATH": str(tmp / "instance"),
            "SECRET_KEY": "browser-hosts",
            "MAILCONNECT_ENCRYPTION_KEYS": [TEST_KEY],
            "MAILCONNECT_MX_LOOKUP": False,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp / 'hosts.db'}",
        })  # fmt: skip
        install(app)
        seeded = seed(app, box)
        try:
            yield app, box, seeded
        finally:
            with app.app_context():
                app.extensions["sqlalchemy"].engines[None].dispose()
    finally:
        box.stop()


def sign_in(context: Any, url: str, host: str, email: str = "admin@demo.test",
            password: str = "admin") -> Any:  # fmt: skip
    """A new page in ``context``, signed in through the example app's form, on ``host``."""
    context.add_cookies([{"name": COOKIE, "value": host, "url": url}])
    page = context.new_page()
    page.goto(f"{url}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")
    return page
