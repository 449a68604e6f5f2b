"""Every form our templates write carries the request's CSRF field one way
(``mailconnect_csrf_input()``): under the host's ``WTF_CSRF_FIELD_NAME``, accepted when posted
back, and absent where the host turned CSRF off."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient

from flask_mailconnect.models import MailAccount
from tests.conftest import login
from tests.hostapp import db
from tests.scopehost import add_account


def _fields(page: str, name: str) -> list[str]:
    return re.findall(rf'<input name="{name}" type="hidden" value="([^"]+)">', page)


def test_a_custom_field_name_is_written_in_every_form_and_accepted(
    app: Flask, client: FlaskClient
) -> None:
    app.config["WTF_CSRF_FIELD_NAME"] = "my_token"
    account_id = add_account(app, ("user", "1"), "alice@example.test", imap_host="imap.test")
    login(client, 1)
    page = client.get(f"/email/accounts/{account_id}").get_data(as_text=True)
    # The settings form, the new-mail form and the recent mail's Refresh: one token for all.
    tokens = _fields(page, "my_token")
    assert len(tokens) == 3 and len(set(tokens)) == 1
    assert 'name="csrf_token"' not in page
    with app.app_context():
        assert db.session.get(MailAccount, account_id).notify_new_mail is True
    saved = client.post(  # both boxes unticked: notifications off
        f"/email/accounts/{account_id}/notifications", data={"my_token": tokens[0]}
    )
    assert saved.status_code == 302
    with app.app_context():
        assert db.session.get(MailAccount, account_id).notify_new_mail is False
    refused = client.post(
        f"/email/accounts/{account_id}/notifications", data={"csrf_token": tokens[0]}
    )
    assert refused.status_code == 400


def test_no_field_where_the_host_turned_csrf_off(app: Flask, client: FlaskClient) -> None:
    app.config["WTF_CSRF_ENABLED"] = False
    account_id = add_account(app, ("user", "1"), "alice@example.test", imap_host="imap.test")
    login(client, 1)
    page = client.get(f"/email/accounts/{account_id}").get_data(as_text=True)
    assert 'type="hidden" value=' not in page.split('id="mc-recent-heading"', 1)[1]
    saved = client.post(
        f"/email/accounts/{account_id}/notifications", data={"notify_new_mail": "y"}
    )
    assert saved.status_code == 302
