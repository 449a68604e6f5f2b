"""check_many writes a batch's outcomes grouped by outcome: every account still gets its own.

The batch's successes are written with one UPDATE, its plain failures with one UPDATE per
distinct code and message; these tests mix outcomes in one batch, on every database, and read
back what a person sees on each account: status, last error code and its words, the audit row.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_mailconnect import AuditEvent, MailConnect
from tests import hostapp
from tests.peers import free_port
from tests.test_health import add, dbapp, get  # noqa: F401 - dbapp is a fixture used here


@pytest.mark.parametrize("concurrency", [1, 3])
def test_a_batch_with_different_failures_gives_each_account_its_own_error(
    dbapp: tuple[Flask, MailConnect],  # noqa: F811 - the fixture imported above
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
