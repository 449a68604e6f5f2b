"""Issue 11, provider-aware admin pages: providers declared in configuration are listed (read
only, with their domains), so a domain they claim is no surprise; the provider form shows only
the chosen authentication's fields."""

from __future__ import annotations

import html
import re

from tests import hostapp
from tests.admin_forms import create
from tests.conftest import login

DECLARED = {
    "corpmail": {
        "name": "Corp Mail", "domains": ["corp-mail.net", "corp-group.net"],
        "smtp": {"host": "smtp.corp-mail.net", "port": 587, "security": "starttls"},
        "imap": {"host": "imap.corp-mail.net", "port": 993, "security": "ssl"},
    }
}  # fmt: skip


def _row(page: str, key: str) -> str:
    found = re.search(rf'<tr data-declared-provider="{key}".*?</tr>', page, re.S)
    assert found, "no row for " + key
    return html.unescape(re.sub(r"<[^>]+>", " ", found.group(0)))


def test_declared_providers_are_listed_with_their_domains() -> None:
    app, _ext = hostapp.create_app(MAILCONNECT_PROVIDERS=DECLARED)
    client = app.test_client()
    login(client, 3)
    page = client.get("/email/admin/providers").get_data(as_text=True)
    assert "Declared in configuration" in page
    row = " ".join(_row(page, "corpmail").split())
    assert "Corp Mail" in row and "corp-mail.net, corp-group.net" in row
    assert "SMTP smtp.corp-mail.net:587" in row and "Password" in row
    # Adding one of its domains is refused with the provider's name, which the list shows.
    response = create(client, domains="corp-group.net")
    assert response.status_code == 422
    assert "corp-group.net is already claimed by Corp Mail." in response.get_data(as_text=True)


def test_no_declared_section_without_declared_providers() -> None:
    app, _ext = hostapp.create_app()
    client = app.test_client()
    login(client, 3)
    page = client.get("/email/admin/providers").get_data(as_text=True)
    assert "Declared in configuration" not in page
    assert "Built in" in page


def test_the_form_shows_only_the_chosen_authentications_fields() -> None:
    app, _ext = hostapp.create_app()
    client = app.test_client()
    login(client, 3)
    page = client.get("/email/admin/providers/new").get_data(as_text=True)
    assert re.search(r"<div class=\"mc-grid\" data-mc-oauth-fields hidden>", page)
    # OAuth chosen (here: a submitted form with an error) shows them.
    response = create(client, auth_method="oauth2", client_id="", domains="")
    assert response.status_code == 422
    assert re.search(
        r"<div class=\"mc-grid\" data-mc-oauth-fields>", response.get_data(as_text=True)
    )
