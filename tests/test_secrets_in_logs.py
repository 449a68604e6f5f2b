"""Stored secrets stay ciphertext in SQL logs (issue 9, item 6).

With ``SQLALCHEMY_ECHO = "debug"`` SQLAlchemy logs every statement and every row it reads. Our
encrypted columns are read as :class:`~flask_mailconnect.columns.Sealed` (the ciphertext) and
decrypted only where the secret is used, so a host that turns on SQL debugging never writes a
password, token or client secret to its logs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_mailconnect.columns import Sealed, open_secret
from flask_mailconnect.credentials import server_settings
from flask_mailconnect.models import MailAccount, MailProvider
from flask_mailconnect.oauth.locks import read_row
from flask_mailconnect.providers import current_catalog
from flask_mailconnect.runtime import current_runtime
from tests import hostapp

PASSWORD = "pässwörd-in-the-log?"
ACCESS = "access-token-in-the-log"
REFRESH = "refresh-token-in-the-log"
CLIENT_SECRET = "client-secret-in-the-log"


@pytest.fixture
def echo_app() -> Iterator[Flask]:
    app, _ = hostapp.create_app(SQLALCHEMY_ECHO="debug")
    with app.app_context():
        session = hostapp.db.session
        session.add_all(
            [
                MailAccount(
                    owner_kind="user", owner_id="1", provider="other", auth_method="password",
                    email="ann@example.org", username="ann@example.org", password=PASSWORD,
                    smtp_host="smtp.example.org", smtp_port=587, smtp_security="starttls",
                ),
                MailAccount(
                    owner_kind="user", owner_id="1", provider="acme-mail", auth_method="oauth2",
                    email="ann@acme.example", username="ann@acme.example",
                    access_token=ACCESS, refresh_token=REFRESH,
                    smtp_host="smtp.acme.example", smtp_port=587, smtp_security="starttls",
                ),
                MailProvider(
                    key="acme-mail", name="Acme Mail", auth_method="oauth2", client_id="acme",
                    client_secret=CLIENT_SECRET, has_client_secret=True,
                    authorize_url="https://id.acme.example/authorize",
                    token_url="https://id.acme.example/token",
                    userinfo_url="https://id.acme.example/userinfo",
                    smtp_host="smtp.acme.example", smtp_port=587, smtp_security="starttls",
                ),
            ]
        )  # fmt: skip
        session.commit()
    yield app
    with app.app_context():
        hostapp.db.session.remove()
        hostapp.db.engine.dispose()


def test_sql_debug_logs_show_only_ciphertext(
    echo_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.engine")
    with echo_app.test_request_context("/"):
        runtime = current_runtime()
        password_account = runtime.session.get(MailAccount, 1)
        assert password_account is not None
        # Every path that reads a secret, as the package reads them:
        assert server_settings(runtime, password_account).password == PASSWORD
        row = read_row(runtime.session, 2, lock=False)
        assert (row.access_token, row.refresh_token) == (ACCESS, REFRESH)
        assert current_catalog().get("acme-mail").client_secret == CLIENT_SECRET  # type: ignore[union-attr]
    logged = caplog.text
    assert "Row (" in logged  # the rows were logged: the check below looked at them
    assert "Sealed(gAAAA" in logged  # as ciphertext
    for secret in (PASSWORD, ACCESS, REFRESH, CLIENT_SECRET):
        assert secret not in logged


def test_the_refresh_rows_tokens_stay_out_of_its_repr() -> None:
    """The row the refresh lock reads holds plaintext tokens; a %r of it (or of the holder that
    keeps it) must not print them."""
    from flask_mailconnect.oauth.locks import Row

    row = Row("AT-plain", "RT-plain", None, None, "mail", "connected", None, "GT-plain",
              None, None, None)  # fmt: skip
    shown = repr(row)
    assert "status='connected'" in shown
    assert not any(secret in shown for secret in ("AT-plain", "RT-plain", "GT-plain"))


def test_a_sealed_value_is_not_a_string(echo_app: Flask) -> None:
    """Code that forgets to open a secret fails loudly instead of sending ciphertext."""
    with echo_app.app_context():
        stored = hostapp.db.session.scalar(
            sa.select(MailAccount.password).where(MailAccount.id == 1)
        )
        assert isinstance(stored, Sealed) and not isinstance(stored, str)
        assert PASSWORD not in repr(stored)
        assert open_secret(stored) == PASSWORD
        assert open_secret(None) is None
