"""Where a disconnect returns: to the page it started from (the admin's account list with its
filters, a person's admin page) through a checked ``next``, same-site paths only; without one,
shared accounts go back to their scope page and personal ones to the index, as before."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from flask_mailconnect import MailConnect
from flask_mailconnect.models import MailAccount
from tests.conftest import login
from tests.hostapp import User

#: Off-site or disguised targets: each must be ignored (browsers drop tabs and newlines, so
#: "/\t/evil" would become "//evil").
UNSAFE = [
    "//evil.example/",
    "https://evil.example/",
    "/\\evil.example",
    "/\t/evil.example",
    "javascript:alert(1)",
    "evil.example",
]


@pytest.fixture(autouse=True)
def host_callbacks(mailconnect: MailConnect, db: Any) -> None:
    mailconnect.user_getter(
        lambda user_id: db.session.get(User, int(user_id)) if user_id.isdigit() else None
    )


def add(app: Flask, db: Any, owner: tuple[str, str], email: str) -> int:
    with app.app_context():
        account = MailAccount(
            owner_kind=owner[0], owner_id=owner[1], provider="other", email=email,
            username=email, smtp_host="smtp.corp.example", smtp_port=587,
            smtp_security="starttls", is_default=True,
        )  # fmt: skip
        db.session.add(account)
        db.session.commit()
        return account.id


def disconnect_link(page: str, account_id: int) -> str:
    """The Disconnect link of ``account_id``'s row, unescaped."""
    match = re.search(rf'href="(/email/accounts/{account_id}/disconnect[^"]*)"', page)
    assert match, page[:2000]
    return html.unescape(match.group(1))


def confirm(client: FlaskClient, url: str) -> tuple[str, dict[str, str]]:
    """Open the confirmation page at ``url``; its form fields (CSRF token, ``next``)."""
    page = client.get(url)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    fields = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', text))
    fields.update(
        (name, value)
        for value, name in re.findall(r'<input[^>]*value="([^"]*)"[^>]*name="([^"]+)"', text)
    )
    return text, {k: html.unescape(v) for k, v in fields.items()}


def gone(app: Flask, db: Any, account_id: int) -> bool:
    with app.app_context():
        return db.session.get(MailAccount, account_id) is None


def test_disconnect_from_the_admin_list_returns_to_it(
    client: FlaskClient, app: Flask, db: Any
) -> None:
    account_id = add(app, db, ("user", "1"), "alice@corp.example")
    login(client, 3)
    listing = "/email/admin/accounts?q=corp.example&status=connected"
    link = disconnect_link(client.get(listing).get_data(as_text=True), account_id)
    assert link.startswith(f"/email/accounts/{account_id}/disconnect?next=")
    page, fields = confirm(client, link)
    assert fields["next"] == listing  # the list with its search and filter kept
    assert f'href="{html.escape(listing)}">Cancel</a>' in page  # Cancel goes back there too
    response = client.post(link.split("?")[0], data={"csrf_token": fields["csrf_token"],
                                                     "next": fields["next"]})  # fmt: skip
    assert response.status_code == 302 and response.location == listing
    assert gone(app, db, account_id)


def test_disconnect_from_a_persons_admin_page_returns_to_it(
    client: FlaskClient, app: Flask, db: Any
) -> None:
    account_id = add(app, db, ("user", "1"), "alice@corp.example")
    login(client, 3)
    link = disconnect_link(client.get("/email/admin/users/1").get_data(as_text=True), account_id)
    _page, fields = confirm(client, link)
    assert fields["next"] == "/email/admin/users/1"
    response = client.post(link.split("?")[0], data=fields)
    assert response.location == "/email/admin/users/1"
    assert gone(app, db, account_id)


@pytest.mark.parametrize("target", UNSAFE)
def test_unsafe_next_is_ignored(client: FlaskClient, app: Flask, db: Any, target: str) -> None:
    personal = add(app, db, ("user", "1"), "alice@corp.example")
    shared = add(app, db, ("organization", "main"), "team@corp.example")
    login(client, 3)
    page, fields = confirm(client, f"/email/accounts/{personal}/disconnect?next={target}")
    assert "next" not in fields and "evil" not in page
    url = f"/email/accounts/{personal}/disconnect"
    response = client.post(url, data={"csrf_token": fields["csrf_token"], "next": target})
    assert response.status_code == 302 and response.location == "/email/"
    # A shared account still goes back to its scope page.
    url = f"/email/accounts/{shared}/disconnect"
    response = client.post(url, data={"csrf_token": fields["csrf_token"], "next": target})
    assert response.location == "/email/scopes/organization/"
    assert gone(app, db, personal) and gone(app, db, shared)


@pytest.mark.parametrize("target", UNSAFE)
def test_unsafe_next_is_ignored_by_deactivate(
    client: FlaskClient, app: Flask, db: Any, target: str
) -> None:
    account_id = add(app, db, ("user", "1"), "alice@corp.example")
    login(client, 3)
    _page, fields = confirm(client, f"/email/accounts/{account_id}/disconnect")
    response = client.post(
        f"/email/admin/accounts/{account_id}/deactivate",
        data={"csrf_token": fields["csrf_token"], "next": target},
    )
    assert response.status_code == 302 and response.location == "/email/admin/accounts"
    with app.app_context():
        assert db.session.scalars(sa.select(MailAccount.active)).one() is False


def test_without_next_as_before(client: FlaskClient, app: Flask, db: Any) -> None:
    """The owner's own disconnect returns to their index; a shared account's to its scope."""
    personal = add(app, db, ("user", "1"), "alice@corp.example")
    login(client, 1)
    page, fields = confirm(client, f"/email/accounts/{personal}/disconnect")
    assert "next" not in fields
    assert f'href="/email/accounts/{personal}">Cancel</a>' in page
    response = client.post(f"/email/accounts/{personal}/disconnect", data=fields)
    assert response.location == "/email/"
    shared = add(app, db, ("organization", "main"), "team@corp.example")
    login(client, 3)
    _page, fields = confirm(client, f"/email/accounts/{shared}/disconnect")
    response = client.post(f"/email/accounts/{shared}/disconnect", data=fields)
    assert response.location == "/email/scopes/organization/"
