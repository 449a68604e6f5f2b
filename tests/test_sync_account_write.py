"""How a sync writes the account row: once when its compare-and-set wins, and still when it loses.

The winner's UIDNEXT, UIDVALIDITY, last-synced and success times go out in one UPDATE, and the
account object shows what that UPDATE set by itself (``updated_at``); a worker whose
compare-and-set found UIDNEXT already moved still records that it synced.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
import sqlalchemy as sa

from flask_mailconnect import MailAccount
from tests import hostapp
from tests.conftest import database_urls
from tests.mailboxes import fill, make_account
from tests.peers.dovecot import DovecotPeer

pytestmark = pytest.mark.peers


def account_updates(engine: Any) -> tuple[list[str], Any]:
    sent: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE MAILCONNECT_ACCOUNT"):
            sent.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    return sent, record


@pytest.mark.parametrize("url", database_urls(), ids=lambda u: u.split(":")[0])
def test_winner_writes_the_account_once_and_the_loser_still_records_its_sync(
    url: str, peer_config: dict[str, Any], inbox: DovecotPeer, tmp_path: Any
) -> None:
    if url == "sqlite://":  # one connection per session needs a file, not :memory:
        url = f"sqlite:///{tmp_path / 'workers.db'}"
    app, ext = hostapp.create_app(url, **peer_config, MAILCONNECT_CONNECT_TIMEOUT=5)
    db = hostapp.db
    try:
        with app.app_context():
            account_id = make_account(db, inbox).id
            table = MailAccount.__table__
            long_ago = datetime(2000, 1, 1, tzinfo=timezone.utc)
            with db.engine.begin() as conn:  # an account last changed long ago
                conn.execute(
                    table.update().where(table.c.id == account_id).values(updated_at=long_ago)
                )
            db.session.commit()  # a new snapshot (MariaDB's REPEATABLE READ) and reloads
            sent, record = account_updates(db.engine)
            account = db.session.get(MailAccount, account_id)
            assert account is not None and account.updated_at == long_ago
            first = ext.sync_recent(account)
            # updated_at was set by the UPDATE itself (onupdate): the object shows it, not 2000
            assert account.updated_at > long_ago
            db.session.commit()
            assert first.new == 50 and len(sent) == 1, sent  # one UPDATE for the account
            fill(inbox, range(61, 63))
            with app.app_context():  # worker B: reads the account before A commits
                stale = db.session.get(MailAccount, account_id)
                assert stale is not None
                with app.app_context():  # worker A wins
                    fresh = db.session.get(MailAccount, account_id)
                    assert ext.sync_recent(fresh).announced == (62, 61)
                    db.session.commit()
                    db.session.remove()
                # A long time ago, as far as the row knows: whatever B's sync stores is newer,
                # at any DATETIME precision (MariaDB's is whole seconds, like A's and B's).
                before = datetime(2000, 1, 1, tzinfo=timezone.utc)
                with db.engine.begin() as conn:
                    conn.execute(
                        table.update().where(table.c.id == account_id).values(last_synced_at=before)
                    )
                sent.clear()
                late = ext.sync_recent(stale)  # B's compare-and-set matches nothing
                db.session.commit()
                assert late.announced == () and len(sent) == 2, sent
                db.session.remove()
            sa.event.remove(db.engine, "before_cursor_execute", record)
            stored = db.session.get(MailAccount, account_id)
            assert stored is not None
            assert stored.sync_uidnext == 63
            assert stored.last_synced_at is not None
            assert stored.last_synced_at > before  # B's sync is recorded all the same
            assert stored.last_error_code is None
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
