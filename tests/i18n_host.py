"""The test host speaking the language asked for, for the fast-path i18n tests:
tests/test_pages_fast_i18n.py and tests/test_account_page_fast.py."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Flask, request
from flask_babel import Babel

from flask_mailconnect.models import MailAccount
from tests import hostapp


def i18n_app(**config: Any) -> Flask:
    """The test host with Flask-Babel choosing the language from ``?lang=`` (English without),
    and one password account of Alice's (``other``: its card names the provider in words)."""
    app, _ext = hostapp.create_app(**config)
    Babel(app, locale_selector=lambda: request.args.get("lang") or "en")
    with app.app_context():
        hostapp.db.session.execute(
            sa.insert(MailAccount),
            [{"owner_kind": "user", "owner_id": "1", "provider": "other",
              "auth_method": "password", "email": "alice@example.test",
              "username": "alice@example.test", "smtp_host": "smtp.example.test",
              "smtp_port": 587, "smtp_security": "starttls", "is_default": True,
              "status": "connected", "active": True}],
        )  # fmt: skip
        hostapp.db.session.commit()
    return app
