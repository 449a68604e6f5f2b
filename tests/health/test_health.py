"""Health checks and token keep-alive against real peers: aiosmtpd, Dovecot, the OAuth server.

``mailconnect.check(account)`` and ``flask mailconnect check`` / ``keep-alive`` on a SQLite
file (the CLI's worker threads each hold their own connection).
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_mailconnect import (
    AuditEvent,
    CheckResult,
    MailAccount,
    MailConnect,
    account_needs_reconnect,
)
from flask_mailconnect.models import utcnow
from tests import hostapp
from tests.conftest import cleaned_up
from tests.health_accounts import add, get
from tests.oauth_flows import provider_config
from tests.peers import MAILBOX_USER, free_port
from tests.peers.oauth import GOOGLE, MICROSOFT


@pytest.fixture
def happ(
    tmp_path: Path, oauth_provider: Any, smtp_starttls: Any, dovecot: Any, peer_config: dict
) -> Iterator[tuple[Flask, MailConnect]]:
    app, ext = hostapp.create_app(
        f"sqlite:///{tmp_path / 'health.db'}",
        **peer_config,
        MAILCONNECT_PROVIDERS=provider_config(oauth_provider),
        MAILCONNECT_ALLOW_PLAINTEXT_AUTH=True,  # the concurrency gauge speaks plain SMTP
        MAILCONNECT_CONNECT_TIMEOUT=5,
    )
    with cleaned_up(app):
        yield app, ext


def check(ext: MailConnect, account_id: int) -> CheckResult:
    """``ext.check()`` on the stored account, committed as the CLI does after each account."""
    result = ext.check(get(account_id))
    hostapp.db.session.commit()
    return result


@pytest.fixture
def reconnects() -> Iterator[list[dict[str, Any]]]:
    calls: list[dict[str, Any]] = []

    def receiver(sender: Any, **extra: Any) -> None:
        calls.append(extra)

    account_needs_reconnect.connect(receiver)
    yield calls
    account_needs_reconnect.disconnect(receiver)


def test_a_healthy_password_account_records_success_and_audits(
    happ: tuple[Flask, MailConnect], smtp_starttls: Any, dovecot: Any
) -> None:
    app, ext = happ
    with app.app_context():
        account_id = add(smtp_starttls, dovecot, last_error_code="timeout", status="error")
        result = check(ext, account_id)
        assert result.ok and result.outcome == "ok", result
        assert result.smtp is not None and result.smtp.ok
        assert result.imap is not None and result.imap.ok
        account = get(account_id)
        assert (account.status, account.last_error_code) == ("connected", None)
        assert account.last_success_at is not None
        event = hostapp.db.session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == "check")
        ).one()
        assert (event.outcome, event.account_id) == ("ok", account_id)
        assert "smtp=ok" in event.detail and "imap=ok" in event.detail


def test_a_token_revoked_at_the_provider_turns_needs_reconnect_and_signals_once(
    happ: tuple[Flask, MailConnect],
    oauth_provider: Any,
    smtp_starttls: Any,
    dovecot: Any,
    reconnects: list[dict[str, Any]],
) -> None:
    app, ext = happ
    with app.app_context():
        account_id = add(smtp_starttls, dovecot, oauth=GOOGLE, server=oauth_provider)
        first = check(ext, account_id)
        assert first.ok, first
        oauth_provider.revoke_user(MAILBOX_USER)  # the user removed the app's access
        second = check(ext, account_id)
        assert second.outcome == "needs_reconnect" and not second.retryable
        assert second.code == "token_revoked"
        assert "Sign in again" in second.message
        third = check(ext, account_id)  # found again: no second signal, no network
        assert third.outcome == "needs_reconnect" and third.skipped_reason == "needs_reconnect"
        account = get(account_id)
        assert (account.status, account.last_error_code) == ("needs_reconnect", "token_revoked")
        assert [c["reason"] for c in reconnects] == ["token_revoked"]
        assert reconnects[0]["account"].id == account_id


def test_keep_alive_refreshes_a_token_unused_for_80_days_but_not_a_recent_one(
    happ: tuple[Flask, MailConnect], oauth_provider: Any, smtp_starttls: Any, dovecot: Any
) -> None:
    app, ext = happ
    with app.app_context():
        old = add(
            smtp_starttls, dovecot, oauth=MICROSOFT, server=oauth_provider, owner_id="1",
            token_refreshed_at=utcnow() - timedelta(days=80),
        )  # fmt: skip
        recent = add(
            smtp_starttls, dovecot, oauth=MICROSOFT, server=oauth_provider, owner_id="2",
            token_refreshed_at=utcnow() - timedelta(days=10),
        )  # fmt: skip
        before = oauth_provider.refresh_requests
        result = check(ext, old)
        assert result.ok and result.kept_alive and result.token_refreshed, result
        assert oauth_provider.refresh_requests == before + 1
        assert utcnow() - get(old).token_refreshed_at < timedelta(minutes=1)
        result = check(ext, recent)
        assert result.ok and not result.kept_alive
        assert oauth_provider.refresh_requests == before + 1
        assert utcnow() - get(recent).token_refreshed_at > timedelta(days=9)

        # The light CLI companion does the same without logging in.
        account = get(recent)
        account.token_refreshed_at = utcnow() - timedelta(days=61)
        hostapp.db.session.commit()
    out = app.test_cli_runner().invoke(args=["mailconnect", "keep-alive"])
    assert out.exit_code == 0, out.output
    assert "Refreshed 1 token(s); 1 not due" in out.output
    assert oauth_provider.refresh_requests == before + 2


def test_a_wrong_password_needs_reconnect(
    happ: tuple[Flask, MailConnect],
    smtp_starttls: Any,
    dovecot: Any,
    reconnects: list[dict[str, Any]],
) -> None:
    app, ext = happ
    with app.app_context():
        account_id = add(smtp_starttls, dovecot, password="not-the-password")
        result = check(ext, account_id)
        assert result.outcome == "needs_reconnect" and result.code == "auth_failed"
        assert result.smtp is not None and result.smtp.code == "auth_failed"
        account = get(account_id)
        assert account.status == "needs_reconnect"
        assert account.last_error_message and "password" in account.last_error_message
        assert [c["reason"] for c in reconnects] == ["auth_failed"]


def test_a_server_that_is_down_is_an_error_not_a_reconnect(
    happ: tuple[Flask, MailConnect],
    smtp_starttls: Any,
    dovecot: Any,
    reconnects: list[dict[str, Any]],
) -> None:
    app, ext = happ
    with app.app_context():
        account_id = add(smtp_starttls, dovecot, smtp_port=free_port(), imap_port=free_port())
        result = check(ext, account_id)
        assert result.outcome == "error" and result.code == "refused" and result.retryable
        account = get(account_id)
        assert (account.status, account.last_error_code) == ("error", "refused")
        assert "refused the connection" in (account.last_error_message or "")
        assert reconnects == []
        # The server is back: the account recovers by itself.
        account.smtp_port, account.imap_port = smtp_starttls.port, dovecot.ssl_port
        hostapp.db.session.commit()
        assert check(ext, account_id).ok
        assert get(account_id).status == "connected"


def test_inactive_accounts_are_skipped(
    happ: tuple[Flask, MailConnect], smtp_starttls: Any, dovecot: Any
) -> None:
    app, ext = happ
    with app.app_context():
        account_id = add(smtp_starttls, dovecot, active=False, smtp_port=free_port())
        result = check(ext, account_id)
        assert (result.outcome, result.skipped_reason) == ("skipped", "inactive")
        assert get(account_id).last_checked_at is None


# -- the CLI over many accounts, with a gauge of simultaneous SMTP connections ------------------


class Gauge:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = self.peak = self.total = 0

    def enter(self) -> None:
        with self.lock:
            self.now += 1
            self.total += 1
            self.peak = max(self.peak, self.now)

    def leave(self) -> None:
        with self.lock:
            self.now -= 1


@pytest.fixture
def gauge_smtp(peer_certs: Any) -> Iterator[tuple[Any, Gauge]]:
    """A plain aiosmtpd peer (AUTH PLAIN/LOGIN) that answers EHLO after 50 ms and counts how
    many connections it holds at once."""
    from tests.peers.smtp_server import PeerHandler, PeerSMTP, start_smtp

    gauge = Gauge()

    class SlowHandler(PeerHandler):
        async def handle_EHLO(  # noqa: N802
            self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
        ) -> list[str]:
            await asyncio.sleep(0.05)
            session.host_name = hostname
            return responses

    class GaugeSMTP(PeerSMTP):
        def connection_made(self, transport: Any) -> None:
            gauge.enter()
            super().connection_made(transport)

        def connection_lost(self, exc: Exception | None) -> None:
            gauge.leave()
            super().connection_lost(exc)

    peer, controller = start_smtp(
        "plain",
        ca_file=peer_certs.ca_file,
        context=None,
        handler_class=SlowHandler,
        smtp_class=GaugeSMTP,
    )
    gauge.now = gauge.peak = gauge.total = 0  # the controller's readiness probe
    try:
        yield peer, gauge
    finally:
        controller.stop()


def test_cli_checks_30_accounts_four_at_a_time_with_progress_and_summary(
    happ: tuple[Flask, MailConnect],
    gauge_smtp: tuple[Any, Gauge],
    dovecot: Any,
    reconnects: list[dict[str, Any]],
) -> None:
    app, _ = happ
    smtp, gauge = gauge_smtp
    with app.app_context():
        ids = [add(smtp, dovecot, owner_id=str(n)) for n in range(26)]
        bad = [add(smtp, dovecot, owner_id=f"bad{n}", password="wrong") for n in range(2)]
        down = [
            add(smtp, dovecot, owner_id=f"down{n}", smtp_port=free_port(), imap_port=free_port())
            for n in range(2)
        ]
        add(smtp, dovecot, owner_id="inactive", active=False)
    result = app.test_cli_runner().invoke(
        args=["mailconnect", "check", "--concurrency", "4"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "Checking accounts" in result.output
    assert "Checked 30 account(s): 26 ok, 2 error, 2 need reconnecting, 0 skipped" in result.output
    for account_id in bad:
        assert re.search(rf"account {account_id}: needs_reconnect \(auth_failed\)", result.output)
    for account_id in down:
        assert f"account {account_id}: error (refused)" in result.output
    assert 2 <= gauge.peak <= 4, gauge.peak  # in parallel, never more than --concurrency
    assert gauge.total == 28
    assert len(reconnects) == 2
    with app.app_context():
        statuses = dict(
            hostapp.db.session.execute(sa.select(MailAccount.id, MailAccount.status)).all()
        )
        assert all(statuses[i] == "connected" for i in ids)
        assert {statuses[i] for i in bad} == {"needs_reconnect"}
        assert {statuses[i] for i in down} == {"error"}
        checks = hostapp.db.session.scalar(
            sa.select(sa.func.count()).where(AuditEvent.action == "check")
        )
        assert checks == 30
    # --strict turns found problems into a failing exit; --account / --scope narrow the run.
    strict = app.test_cli_runner().invoke(args=["mailconnect", "check", "--strict"])
    assert strict.exit_code == 1
    one = app.test_cli_runner().invoke(args=["mailconnect", "check", "--account", str(ids[0])])
    assert "Checked 1 account(s): 1 ok" in one.output
    scoped = app.test_cli_runner().invoke(args=["mailconnect", "check", "--scope", "user:bad0"])
    assert "0 ok, 0 error, 1 need reconnecting" in scoped.output


def test_a_check_with_an_actor_needs_manage_on_the_account(
    happ: tuple[Flask, MailConnect], smtp_starttls: Any, dovecot: Any
) -> None:
    from flask_mailconnect import PermissionDenied

    app, ext = happ
    with app.app_context():
        account_id = add(smtp_starttls, dovecot)
        owner = hostapp.db.session.get(hostapp.User, 1)
        stranger = hostapp.db.session.get(hostapp.User, 2)
        assert owner is not None and stranger is not None and not stranger.is_admin
        with pytest.raises(PermissionDenied):
            ext.check(get(account_id), actor=stranger)
        assert get(account_id).last_checked_at is None
        assert ext.check(get(account_id), actor=owner).ok


# -- check_many records a batch's common outcomes together, on every database ------------------


@pytest.mark.parametrize("concurrency", [1, 3])
def test_check_many_records_a_batch_as_one_by_one_checks_would(
    dbapp: tuple[Flask, MailConnect],
    smtp_starttls: Any,
    dovecot: Any,
    reconnects: list[dict[str, Any]],
    concurrency: int,
) -> None:
    from flask_mailconnect.health import check_many

    app, _ = dbapp
    with app.app_context():
        healthy = [add(smtp_starttls, dovecot, owner_id=str(n)) for n in range(3)]
        recovering = add(
            smtp_starttls, dovecot, owner_id="r", status="error", last_error_code="refused"
        )
        down = add(smtp_starttls, dovecot, owner_id="d", smtp_port=free_port(),
                   imap_port=free_port())  # fmt: skip
        wrong = add(smtp_starttls, dovecot, owner_id="w", password="not-the-password")
        gone = add(smtp_starttls, dovecot, owner_id="g")
        hostapp.db.session.delete(get(gone))
        hostapp.db.session.commit()
        ids = [*healthy, recovering, down, wrong, gone]
        results = {r.account_id: r for r in check_many(ids, concurrency=concurrency, app=app)}

        assert {i: results[i].outcome for i in ids} == {
            **dict.fromkeys([*healthy, recovering], "ok"), down: "error",
            wrong: "needs_reconnect", gone: "skipped",
        }  # fmt: skip
        assert results[recovering].status == "connected" and results[down].status == "error"
        assert results[down].code == "refused" and results[down].retryable
        for account_id in [*healthy, recovering]:
            account = get(account_id)
            assert (account.status, account.last_error_code) == ("connected", None)
            assert account.last_success_at is not None
            assert account.last_checked_at == account.last_success_at
        account = get(down)
        assert (account.status, account.last_error_code) == ("error", "refused")
        assert "refused the connection" in (account.last_error_message or "")
        assert account.last_success_at is None and account.last_checked_at is not None
        assert get(wrong).status == "needs_reconnect"
        assert [c["reason"] for c in reconnects] == ["auth_failed"]
        rows = hostapp.db.session.execute(
            sa.select(AuditEvent.account_id, AuditEvent.outcome, AuditEvent.owner_id,
                      AuditEvent.account_email, AuditEvent.actor_label)
            .where(AuditEvent.action == "check")
        ).all()  # fmt: skip
        assert sorted((r[0], r[1]) for r in rows) == sorted(
            [(i, "ok") for i in [*healthy, recovering]] + [(down, "failed"), (wrong, "failed")]
        )
        owners = {r[0]: r[2] for r in rows}
        assert owners[healthy[1]] == "1" and owners[down] == "d"
        assert {(r[3], r[4]) for r in rows} == {(MAILBOX_USER, "system")}


def test_a_batched_outcome_never_undoes_a_status_another_worker_wrote(
    dbapp: tuple[Flask, MailConnect], smtp_starttls: Any, dovecot: Any
) -> None:
    """The status moves in SQL from the state the outcome moves it out of: a success written
    after another worker marked the account needs_reconnect (or error -> connected by a later
    success) leaves that worker's status."""
    from flask_mailconnect.accounts.status import CheckRecord, record_checks

    app, _ = dbapp
    with app.app_context():
        marked = add(smtp_starttls, dovecot, owner_id="m", status="needs_reconnect")
        broken = add(smtp_starttls, dovecot, owner_id="b", status="error")
        fine = add(smtp_starttls, dovecot, owner_id="f")
        pending = add(smtp_starttls, dovecot, owner_id="p", status="pending_authorization")

        def outcome(account_id: int, ok: bool) -> CheckRecord:
            code = "ok" if ok else "timeout"
            return CheckRecord(account_id, MAILBOX_USER, "user", "x", ok=ok, code=code,
                               message="" if ok else "slow", detail=code)  # fmt: skip

        record_checks(
            hostapp.db.session,
            [outcome(marked, True), outcome(broken, True), outcome(fine, False),
             outcome(pending, False)],
            now=utcnow(),
        )  # fmt: skip
        hostapp.db.session.commit()
        assert get(marked).status == "needs_reconnect"
        assert get(broken).status == "connected"
        assert (get(fine).status, get(fine).last_error_message) == ("error", "slow")
        assert get(pending).status == "pending_authorization"


@pytest.mark.parametrize("concurrency", [1, 3])
def test_check_many_reads_a_batch_with_its_passwords_in_one_query(
    dbapp: tuple[Flask, MailConnect],
    smtp_starttls: Any,
    dovecot: Any,
    reconnects: list[dict[str, Any]],
    concurrency: int,
) -> None:
    """The batch's SELECT brings the (sealed) passwords: no password query per account. An
    outcome committed mid-batch (a rejected password marks its account at once) does not make
    the later accounts read their rows again: they log in with their own passwords."""
    from flask_mailconnect.health import check_many

    app, _ = dbapp
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if re.search(r"\bFROM [`\"]?mailconnect_account\b", statement):
            statements.append(statement)

    with app.app_context():
        engine = hostapp.db.engine
        healthy = [add(smtp_starttls, dovecot, owner_id=str(n)) for n in range(4)]
        sa.event.listen(engine, "before_cursor_execute", seen)
        try:
            results = list(check_many(healthy, concurrency=concurrency, app=app))
        finally:
            sa.event.remove(engine, "before_cursor_execute", seen)
        assert {r.account_id: r.outcome for r in results} == dict.fromkeys(healthy, "ok")
        assert len(statements) == 1, statements  # one batch (up to 5 accounts), one query
        assert "password" in statements[0]

        wrong = add(smtp_starttls, dovecot, owner_id="w", password="not-the-password")
        later = [add(smtp_starttls, dovecot, owner_id=f"l{n}") for n in range(2)]
        statements.clear()
        sa.event.listen(engine, "before_cursor_execute", seen)
        try:
            results = list(check_many([wrong, *later], concurrency=concurrency, app=app))
        finally:
            sa.event.remove(engine, "before_cursor_execute", seen)
        # The batch's one SELECT; the mark's own statements neither re-read a row nor a password.
        reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
        assert len(reads) == 1, reads
        assert {r.account_id: r.outcome for r in results} == {
            wrong: "needs_reconnect",
            **dict.fromkeys(later, "ok"),
        }
        assert [c["reason"] for c in reconnects] == ["auth_failed"]
        assert all(get(i).status == "connected" for i in later)
        assert get(wrong).status == "needs_reconnect"
