"""A batch of checks gives its session back as it found it.

The batch turns ``expire_on_commit`` off on its session (an account committed mid-batch must not
make the later ones read their rows again). Host code that met that session during the batch (a
session event listener here) and goes on using it must find it expiring on commit again, whether
the batch ended well or raised: else it would keep reading rows another writer changed as they
were before.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import ORMExecuteState, Session

from flask_mailconnect.models import metadata as mailconnect_metadata
from tests import hostapp
from tests.conftest import cleaned_up
from tests.health_accounts import add


@pytest.fixture
def file_app(tmp_path: Path, peer_config: dict) -> Iterator[Flask]:
    """The host on a SQLite file: a connection per session, so another writer is possible."""
    app, _ = hostapp.create_app(
        f"sqlite:///{tmp_path / 'host.db'}", **peer_config, MAILCONNECT_CONNECT_TIMEOUT=5
    )
    with cleaned_up(app):
        yield app


@contextmanager
def sessions_seen() -> Iterator[list[Session]]:
    """The sessions that ran an ORM statement in the block, as a host's listener meets them."""
    seen: list[Session] = []

    def listener(state: ORMExecuteState) -> None:
        if all(state.session is not s for s in seen):
            seen.append(state.session)

    sa.event.listen(Session, "do_orm_execute", listener)
    try:
        yield seen
    finally:
        sa.event.remove(Session, "do_orm_execute", listener)


def sees_what_another_writer_committed(session: Session) -> bool:
    """Read a host row in ``session``, let another connection change it, commit ``session``:
    is the row read again (expired on commit), showing the change?"""
    user = session.get(hostapp.User, 1)
    assert user is not None
    changed = "changed-" + user.email
    with hostapp.db.engine.begin() as other:
        other.execute(sa.update(hostapp.User).where(hostapp.User.id == 1).values(email=changed))
    session.commit()
    return bool(user.email == changed)


def test_a_batch_with_a_mid_batch_commit_gives_its_session_back_expiring_on_commit(
    file_app: Flask, smtp_starttls: Any, dovecot: Any
) -> None:
    from flask_mailconnect.health import check_many

    with file_app.app_context():
        # A rejected password marks its account and commits mid-batch; the success is deferred.
        wrong = add(smtp_starttls, dovecot, owner_id="w", password="not-the-password")
        fine = add(smtp_starttls, dovecot, owner_id="f")
        with sessions_seen() as seen:
            results = list(check_many([wrong, fine], concurrency=1, app=file_app))
        assert {r.account_id: r.outcome for r in results} == {wrong: "needs_reconnect", fine: "ok"}
        assert len(seen) == 1  # the batch's one session
        assert seen[0].expire_on_commit
        assert sees_what_another_writer_committed(seen[0])


def test_a_batch_that_raised_gives_its_session_back_expiring_on_commit(file_app: Flask) -> None:
    """Our tables are gone (a host that dropped them): the batch's first query raises."""
    from flask_mailconnect.health import check_many

    with file_app.app_context():
        mailconnect_metadata.drop_all(hostapp.db.engine)
        with sessions_seen() as seen, pytest.raises(sa.exc.OperationalError, match="no such table"):
            list(check_many([1, 2], concurrency=1, app=file_app))
        assert len(seen) == 1
        assert seen[0].expire_on_commit
        assert sees_what_another_writer_committed(seen[0])
