"""Background jobs on a real Redis (127.0.0.1:6379) and an RQ worker process in burst mode.

The worker builds the host app itself from ``MAILCONNECT_APP_FACTORY`` (here
:func:`worker_app`), on the same SQLite file as the test, exactly as a deployment would.
"""

from __future__ import annotations

import imaplib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from flask_mailconnect import MailAccount, jobs
from flask_mailconnect.models import SyncedMessage
from tests import hostapp
from tests.peers import MAILBOX_PASSWORD, MAILBOX_USER, require_peer

REDIS_DB = 13  #: a database of its own on the shared server, emptied of our keys afterwards
ROOT = Path(__file__).resolve().parent.parent


def worker_app() -> Flask:
    """The app factory the RQ worker calls (``MAILCONNECT_APP_FACTORY``)."""
    config = json.loads(os.environ["MAILCONNECT_TEST_JOBS_CONFIG"])
    app, _ = hostapp.create_app(os.environ["MAILCONNECT_TEST_JOBS_DB"], reset=False, **config)
    return app


@pytest.fixture
def redis_conn() -> Iterator[Any]:
    redis = pytest.importorskip("redis")
    conn = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB, socket_timeout=5)
    try:
        conn.ping()
    except redis.RedisError as exc:
        require_peer("redis", str(exc))
    yield conn
    conn.flushdb()  # our own database number: nothing else lives there
    conn.close()


@pytest.fixture
def japp(
    tmp_path: Path, smtp_starttls: Any, dovecot: Any, peer_config: dict[str, Any]
) -> Iterator[tuple[Flask, str, dict]]:
    """The app on a SQLite file, and the config the worker builds its own app with."""
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    app, _ = hostapp.create_app(url, **peer_config)
    yield app, url, peer_config
    with app.app_context():
        hostapp.db.session.remove()
        hostapp.db.engine.dispose()


def _append_messages(dovecot: Any, subjects: list[str]) -> None:
    import ssl

    context = ssl.create_default_context(cafile=dovecot.ca_file)
    with imaplib.IMAP4_SSL(dovecot.host, dovecot.ssl_port, ssl_context=context) as imap:
        imap.login(MAILBOX_USER, MAILBOX_PASSWORD)
        for subject in subjects:
            msg = EmailMessage()
            msg["From"], msg["To"], msg["Subject"] = "bob@example.test", MAILBOX_USER, subject
            msg["Message-ID"] = f"<{uuid.uuid4().hex}@example.test>"
            msg.set_content("hello from the jobs test")
            imap.append("INBOX", "", imaplib.Time2Internaldate(0), msg.as_bytes())


def _delete_messages(dovecot: Any, subjects: list[str]) -> None:
    """Leave the shared mailbox as we found it."""
    import ssl

    context = ssl.create_default_context(cafile=dovecot.ca_file)
    with imaplib.IMAP4_SSL(dovecot.host, dovecot.ssl_port, ssl_context=context) as imap:
        imap.login(MAILBOX_USER, MAILBOX_PASSWORD)
        imap.select("INBOX")
        for subject in subjects:
            _, found = imap.uid("SEARCH", "SUBJECT", f'"{subject}"')
            for uid in found[0].split():
                imap.uid("STORE", uid, "+FLAGS", "(\\Deleted)")
        imap.expunge()


def _run_worker(queue: str, url: str, config: dict[str, Any]) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "MAILCONNECT_APP_FACTORY": "tests.test_jobs:worker_app",
        "MAILCONNECT_TEST_JOBS_DB": url,
        "MAILCONNECT_TEST_JOBS_CONFIG": json.dumps(config),
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.run(
        [
            sys.executable, "-m", "rq.cli", "worker", "--burst",
            "--url", f"redis://127.0.0.1:6379/{REDIS_DB}",
            "--worker-class", "rq.worker.SimpleWorker", queue,
        ],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _add_account(smtp: Any, dovecot: Any) -> int:
    account = MailAccount(
        owner_kind="user", owner_id="1", email=MAILBOX_USER, username=MAILBOX_USER,
        password=MAILBOX_PASSWORD, smtp_host=smtp.host, smtp_port=smtp.port,
        smtp_security="starttls", imap_host=dovecot.host, imap_port=dovecot.ssl_port,
        imap_security="ssl", status="error", last_error_code="timeout",
    )  # fmt: skip
    hostapp.db.session.add(account)
    hostapp.db.session.commit()
    return account.id


def _finished(job: Any, ran: subprocess.CompletedProcess) -> Any:
    job.refresh()
    latest = job.latest_result()
    assert job.get_status() == "finished", (ran.stderr[-3000:], latest and latest.exc_string)
    return job.return_value()


def test_a_check_job_runs_on_an_rq_worker_and_updates_the_database(
    japp: tuple[Flask, str, dict[str, Any]], redis_conn: Any, smtp_starttls: Any, dovecot: Any
) -> None:
    from rq import Queue

    app, url, config = japp
    with app.app_context():
        account_id = _add_account(smtp_starttls, dovecot)
    name = f"mailconnect-test-{uuid.uuid4().hex[:8]}"
    queue = Queue(name, connection=redis_conn)
    check_job = queue.enqueue("flask_mailconnect.jobs.check_account", account_id)
    twice = queue.enqueue(jobs.check_account, account_id)  # idempotent: run it again
    gone_job = queue.enqueue(jobs.check_account, 999_999)  # deleted meanwhile: a no-op
    ran = _run_worker(name, url, config)
    assert ran.returncode == 0, ran.stderr[-3000:]

    checked = _finished(check_job, ran)
    assert checked["outcome"] == "ok" and checked["status"] == "connected", checked
    assert [r["code"] for r in checked["results"]] == ["ok", "ok"]
    assert _finished(twice, ran)["outcome"] == "ok"
    assert _finished(gone_job, ran) == {"account_id": 999_999, "outcome": "skipped",
                                        "code": "deleted"}  # fmt: skip
    with app.app_context():
        hostapp.db.session.expire_all()
        stored = hostapp.db.session.get(MailAccount, account_id)
        assert stored is not None
        assert (stored.status, stored.last_error_code) == ("connected", None)
        assert stored.last_success_at is not None


def test_a_sync_job_runs_on_an_rq_worker_and_stores_recent_mail(
    japp: tuple[Flask, str, dict[str, Any]], redis_conn: Any, smtp_starttls: Any, dovecot: Any
) -> None:

    pytest.importorskip("flask_mailconnect.sync", reason="sync_recent is not in this version")
    app, url, config = japp
    subjects = [f"jobs test {uuid.uuid4().hex[:8]} #{n}" for n in range(2)]
    _append_messages(dovecot, subjects)
    try:
        _sync_twice(app, url, config, redis_conn, smtp_starttls, dovecot, subjects)
    finally:
        _delete_messages(dovecot, subjects)


def _sync_twice(
    app: Flask,
    url: str,
    config: dict[str, Any],
    redis_conn: Any,
    smtp: Any,
    dovecot: Any,
    subjects: list[str],
) -> None:
    from rq import Queue

    with app.app_context():
        account_id = _add_account(smtp, dovecot)
    name = f"mailconnect-test-{uuid.uuid4().hex[:8]}"
    queue = Queue(name, connection=redis_conn)
    sync_job = queue.enqueue(jobs.sync_account, account_id, limit=50)
    again = queue.enqueue(jobs.sync_account, account_id, limit=50)  # incremental, no duplicates
    ran = _run_worker(name, url, config)
    assert ran.returncode == 0, ran.stderr[-3000:]

    synced = _finished(sync_job, ran)
    assert synced["outcome"] == "ok" and synced["fetched"] >= 2, synced
    assert _finished(again, ran)["new"] == 0
    with app.app_context():
        hostapp.db.session.expire_all()
        stored = hostapp.db.session.get(MailAccount, account_id)
        assert stored is not None and stored.last_synced_at is not None
        found = [m.subject for m in hostapp.db.session.query(SyncedMessage).all()]
        assert set(subjects) <= set(found) and len(found) == len(set(found))


def test_jobs_run_in_the_current_app_context_and_say_when_there_is_no_app(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(jobs.APP_FACTORY_ENV, raising=False)
    with pytest.raises(RuntimeError, match="MAILCONNECT_APP_FACTORY"):
        jobs.check_account(1)
    app, _ = hostapp.create_app()
    with app.app_context():
        assert jobs.check_account(42)["code"] == "deleted"
        assert jobs.refresh_account(42)["code"] == "deleted"
        hostapp.db.session.remove()
        hostapp.db.engine.dispose()


def test_a_failing_sync_job_keeps_the_recorded_failure(
    japp: tuple[Flask, str, dict[str, Any]], smtp_starttls: Any, dovecot: Any
) -> None:
    from flask_mailconnect.exceptions import SyncError
    from flask_mailconnect.models import AuditEvent

    app, _, _ = japp
    with app.app_context():
        account_id = _add_account(smtp_starttls, dovecot)
        account = hostapp.db.session.get(MailAccount, account_id)
        assert account is not None
        account.password = "wrong password"
        hostapp.db.session.commit()
        with pytest.raises(SyncError) as caught:
            jobs.sync_account(account_id)
        assert caught.value.code == "auth_failed"
        hostapp.db.session.rollback()  # what a job system's cleanup does: nothing is lost
        hostapp.db.session.expire_all()
        stored = hostapp.db.session.get(MailAccount, account_id)
        assert stored is not None and stored.status == "needs_reconnect"
        assert stored.last_error_code == "auth_failed"
        events = hostapp.db.session.query(AuditEvent).filter_by(account_id=account_id).all()
        assert any(e.outcome == "failed" for e in events), [(e.action, e.outcome) for e in events]
        hostapp.db.session.remove()


def _queued_message(message_id: str | None) -> bytes:
    msg = EmailMessage()
    msg["To"], msg["Subject"] = "bob@example.com", "Queued"
    if message_id:
        msg["Message-ID"] = message_id
    msg.set_content("sent by a job")
    return msg.as_bytes()


def test_a_send_job_delivered_twice_sends_once(
    japp: tuple[Flask, str, dict[str, Any]], smtp_starttls: Any, dovecot: Any
) -> None:
    from email.utils import make_msgid

    from flask_mailconnect.exceptions import InvalidMessage, TransientSendError
    from flask_mailconnect.models import SendClaim

    app, _, _ = japp
    with app.app_context():
        account_id = _add_account(smtp_starttls, dovecot)
        with pytest.raises(InvalidMessage, match="Message-ID"):
            jobs.send_message(account_id, _queued_message(None))

        data = _queued_message(make_msgid(domain="example.com"))
        first = jobs.send_message(account_id, data)
        again = jobs.send_message(account_id, data)  # the job system delivered it twice
        assert first["outcome"] == "ok"
        assert again == {**again, "outcome": "skipped", "code": "already_sent"}
        assert len(smtp_starttls.messages) == 1

        # A failure before the server took the data releases the claim: the retry sends.
        retry = _queued_message(make_msgid(domain="example.com"))
        smtp_starttls.inject("MAIL", reply="451 4.3.0 Try again later")
        with pytest.raises(TransientSendError):
            jobs.send_message(account_id, retry)
        assert jobs.send_message(account_id, retry)["outcome"] == "ok"
        assert len(smtp_starttls.messages) == 2

        # "Delivery unknown" keeps the claim: never sent again.
        unknown = _queued_message(make_msgid(domain="example.com"))
        smtp_starttls.inject("END", drop=True, deliver=True)
        with pytest.raises(Exception, match="(?i)delivery unknown"):
            jobs.send_message(account_id, unknown)
        assert jobs.send_message(account_id, unknown)["code"] == "already_unknown"
        assert len(smtp_starttls.messages) == 3
        states = sorted(s for (s,) in hostapp.db.session.query(SendClaim.state).all())
        assert states == ["sent", "sent", "unknown"]
        hostapp.db.session.remove()
