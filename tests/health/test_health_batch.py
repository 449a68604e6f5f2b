"""check_many writes a batch's outcomes grouped by outcome: every account still gets its own.

The batch's successes are written with one UPDATE, its plain failures with one UPDATE per
distinct code and message; these tests mix outcomes in one batch, on every database, and read
back what a person sees on each account: status, last error code and its words, the audit row.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_mailconnect import AuditEvent, MailConnect
from flask_mailconnect.models import utcnow
from tests import hostapp
from tests.conftest import cleaned_up
from tests.health_accounts import add, get
from tests.oauth_flows import provider_config
from tests.peers import free_port
from tests.peers.oauth import GOOGLE, MICROSOFT


@pytest.mark.parametrize("concurrency", [1, 3])
def test_a_batch_with_different_failures_gives_each_account_its_own_error(
    dbapp: tuple[Flask, MailConnect],
    smtp_starttls: Any,
    dovecot: Any,
    concurrency: int,
) -> None:
    from flask_mailconnect.health import check_many

    app, _ = dbapp
    with app.app_context():
        healthy = add(smtp_starttls, dovecot, owner_id="h")
        # Two accounts whose server is down: the same code and words, one group.
        down = add(smtp_starttls, dovecot, owner_id="d", smtp_port=free_port())
        down_before = add(
            smtp_starttls, dovecot, owner_id="e", smtp_port=free_port(), status="error",
            last_error_code="timeout", last_error_message="old words",
        )  # fmt: skip
        # SSL/TLS chosen for the STARTTLS port: another code, another group.
        wrong_tls = add(smtp_starttls, dovecot, owner_id="t", smtp_security="ssl")
        ids = [healthy, down, wrong_tls, down_before]
        results = {r.account_id: r for r in check_many(ids, concurrency=concurrency, app=app)}

        assert {i: (results[i].outcome, results[i].code) for i in ids} == {
            healthy: ("ok", "ok"),
            down: ("error", "refused"),
            down_before: ("error", "refused"),
            wrong_tls: ("error", "wrong_security_for_port"),
        }
        seen = {i: get(i) for i in ids}
        assert (seen[healthy].status, seen[healthy].last_error_code) == ("connected", None)
        for account_id in (down, down_before):
            account = seen[account_id]
            assert (account.status, account.last_error_code) == ("error", "refused")
            assert "refused the connection" in (account.last_error_message or "")
            assert account.last_success_at is None
        tls = seen[wrong_tls]
        assert (tls.status, tls.last_error_code) == ("error", "wrong_security_for_port")
        assert tls.last_error_message and "refused" not in tls.last_error_message
        assert tls.last_error_message == results[wrong_tls].message
        rows = hostapp.db.session.execute(
            sa.select(AuditEvent.account_id, AuditEvent.outcome, AuditEvent.detail).where(
                AuditEvent.action == "check"
            )
        ).all()
        assert sorted((r[0], r[1]) for r in rows) == sorted(
            [(healthy, "ok"), (down, "failed"), (down_before, "failed"), (wrong_tls, "failed")]
        )
        details = {r[0]: r[2] for r in rows}
        assert "smtp=wrong_security_for_port" in details[wrong_tls]
        assert "smtp=refused" in details[down]


def test_token_endpoint_failures_are_errors_the_owner_cannot_fix_by_signing_in(
    tmp_path: Path, oauth_provider: Any, smtp_starttls: Any, dovecot: Any, peer_config: dict
) -> None:
    """Two OAuth accounts whose token is due: Google's token endpoint refuses our client (a
    wrong secret: configuration, not retried), Microsoft's cannot be reached (retry later).
    Neither account needs its owner to sign in again; each says why on the account."""
    from flask_mailconnect.health import check_many

    config = provider_config(oauth_provider)
    config["google"]["client_secret"] = "wrong"
    config["microsoft"]["token_url"] = f"http://127.0.0.1:{free_port()}/token"
    app, _ = hostapp.create_app(
        f"sqlite:///{tmp_path / 'tokens.db'}", **peer_config, MAILCONNECT_PROVIDERS=config,
        MAILCONNECT_CONNECT_TIMEOUT=2,
    )  # fmt: skip
    with cleaned_up(app), app.app_context():
        due = utcnow() - timedelta(minutes=1)
        refused = add(smtp_starttls, dovecot, owner_id="g", oauth=GOOGLE,
                      server=oauth_provider, token_expires_at=due)  # fmt: skip
        unreachable = add(smtp_starttls, dovecot, owner_id="m", oauth=MICROSOFT,
                          server=oauth_provider, token_expires_at=due)  # fmt: skip
        ids = [refused, unreachable]
        results = {r.account_id: r for r in check_many(ids, concurrency=1, app=app)}

        seen = {i: (r.outcome, r.code, r.retryable) for i, r in results.items()}
        assert seen == {
            refused: ("error", "token_error", False),
            unreachable: ("error", "token_refresh_unavailable", True),
        }
        for account_id in ids:
            account = get(account_id)
            assert (account.status, account.last_error_code) == ("error", seen[account_id][1])
            assert account.last_error_message == results[account_id].message
            assert account.last_error_message
        rows = hostapp.db.session.execute(
            sa.select(AuditEvent.account_id, AuditEvent.outcome).where(AuditEvent.action == "check")
        ).all()
        assert sorted(rows) == sorted([(refused, "failed"), (unreachable, "failed")])
