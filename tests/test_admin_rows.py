"""The admin account list writes its rows in Python (views/admin/account_rows.py): what an admin
sees must be what the Jinja row template wrote, every value from a person still escaped."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import render_template_string
from markupsafe import Markup

from flask_mailconnect import MailAccount
from tests.admin_row_template import JINJA_ROWS
from tests.conftest import captured_context, cleaned_up, login
from tests.hostapp import db

HOSTILE = "<script>alert(\"x\")</script> & 'q'"


def _row(n: int, **values: Any) -> dict[str, Any]:
    email = f"box{n}@example.com"
    row = {
        "owner_kind": "user", "owner_id": "2", "provider": "other", "auth_method": "password",
        "email": email, "username": email, "smtp_host": "smtp.example.test", "smtp_port": 587,
        "smtp_security": "starttls", "status": "connected", "active": True,
    }  # fmt: skip
    row.update(values)
    return row


def test_rows_are_what_the_template_wrote_and_escape_every_value() -> None:
    from tests import hostapp

    app, ext = hostapp.create_app()
    projects = {"7": HOSTILE, "8": "Eight"}
    ext.register_scope(
        "project",
        load=lambda ident: ident if ident in projects else None,
        label=lambda ident: projects[ident],
        list=lambda: list(projects),
        ident=str,
        can_manage=lambda user, project: False,
    )
    with cleaned_up(app):
        with app.app_context():
            db.session.execute(sa.update(hostapp.User).where(hostapp.User.id == 2).values(
                email=f"{HOSTILE}@example.com"))  # fmt: skip
            db.session.execute(sa.insert(MailAccount), [
                _row(1, display_name=HOSTILE),
                _row(2, email=f"a{HOSTILE}@example.com".replace(" ", ""), active=False),
                _row(3, owner_kind="project", owner_id="7", status="needs_reconnect"),
                _row(4, owner_kind="project", owner_id="8", provider="no-such-provider"),
                _row(5, owner_kind="organization", owner_id="main", status="some_new_state"),
                _row(6, owner_kind="user", owner_id="999", provider="gmail", active=False),
                _row(7, provider="google", auth_method="oauth2", status="pending_authorization"),
            ])  # fmt: skip
            db.session.commit()
        client = app.test_client()
        login(client, 3)  # the admin
        with captured_context(app) as captured:
            page = client.get("/email/admin/accounts?q=").get_data(as_text=True)
        assert page.count("<tr data-account-id=") == 7
        assert "<script>" not in page and "&lt;script&gt;alert(&#34;x&#34;)" in page
        with app.test_request_context("/email/admin/accounts?q="):
            expected = render_template_string(JINJA_ROWS, **captured)
        assert isinstance(captured["rows_html"], Markup)
        assert str(captured["rows_html"]) == expected
        assert expected in page
