"""The account page asks for an account's recent mail only when it can have some."""

from __future__ import annotations

from datetime import datetime, timezone

from flask_mailconnect import MailAccount
from flask_mailconnect.models import SyncedMessage
from tests.account_rows import account_rows, insert_rows
from tests.conftest import count_queries, login
from tests.hostapp import db
from tests.scopehost import ALICE


def test_account_page_reads_recent_mail_only_once_synced() -> None:
    """An account that never synced says "Not synced yet" without a query for its messages (a
    sync stores its rows and ``last_synced_at`` together); once synced, the page lists them."""
    from tests import hostapp

    app, ext = hostapp.create_app()
    try:
        rows = account_rows([("user", str(ALICE))])
        rows[0].update(imap_host="imap.example.test", imap_port=993, imap_security="ssl")
        insert_rows(app, rows)
        client = app.test_client()
        login(client, ALICE)
        with count_queries(app) as never:
            page = client.get("/email/accounts/1").get_data(as_text=True)
        assert "Not synced yet" in page
        assert not any("mailconnect_synced_message" in s for s in never)
        with app.app_context():
            db.session.add(SyncedMessage(account_id=1, uid=7, subject="Quarterly <report>"))
            db.session.get(MailAccount, 1).last_synced_at = datetime.now(timezone.utc)
            db.session.commit()
        with count_queries(app) as synced:
            page = client.get("/email/accounts/1").get_data(as_text=True)
        assert "Quarterly &lt;report&gt;" in page and "Not synced yet" not in page
        assert len(synced) == len(never) + 1
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
