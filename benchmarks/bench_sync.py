"""Sync of the newest 50: wall time and IMAP round trips, ``sync_recent`` vs plain imapclient.

Dovecot (its own process, IMAPS on 127.0.0.1) holds 60 messages in INBOX. Measured in one go,
round after round (ours and the baseline alternate, so both see the same machine):

- ours, full: ``mailconnect.sync_recent(account, limit=50)`` from an empty table: login,
  EXAMINE, one ``FETCH <n>:*`` (UID, FLAGS, INTERNALDATE, six header fields, the first 4 KiB
  of the body), each message's headers decoded once and a snippet made, 50 rows stored in
  SQLite with one cached INSERT, logout;
- the baseline: what a developer writes with imapclient for the same items: login, SELECT
  (read-only), ``SEARCH ALL``, ``FETCH`` of the newest 50 UIDs with exactly the items ours
  fetches, logout; nothing decoded or stored;
- ours, incremental: the next sync after 3 new messages (``UID FETCH <uidnext>:*`` plus one
  flags-only ``UID FETCH`` of the kept range), reported beside the full sync.

Both connect to the same name, ``localhost`` (the account's ``imap_host``; Dovecot's
certificate names it), so both resolve it: an account's server is a name, and the guard's
lookup is part of what ours costs.

Round trips are IMAP commands sent (each waits for its tagged answer), counted by wrapping
imaplib's ``_command``; the TLS handshake and greeting are the same for both.

``python -m benchmarks.bench_sync`` prints the rows; ``make bench`` collects them
(:func:`rows`, in the shared format of ``benchmarks/table.py``).
"""

from __future__ import annotations

import ssl
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from imapclient import IMAPClient

from benchmarks.table import Row, measured, print_table, samples, skipped
from tests.peers.certs import make_certs
from tests.peers.dovecot import DovecotPeer, dovecot_available, start_dovecot, stop_dovecot

ROUNDS = 15
GOAL = 1.2  #: issue 13: at most 1.2x imapclient fetching the same items
FIGURE = "sync newest {limit} (Dovecot IMAPS, SQLite)"
#: The server name both sides connect to (see the module docstring).
IMAP_HOST = "localhost"


def _count_commands(client: IMAPClient, sent: list[str]) -> IMAPClient:
    real = client._imap._command

    def command(name: str, *args: Any) -> Any:
        sent.append(name)
        return real(name, *args)

    client._imap._command = command  # type: ignore[method-assign]
    return client


def _message(n: int) -> bytes:
    return (
        f"From: Sender {n} <s{n}@example.com>\r\nSubject: Message {n:02d}\r\n"
        f"Date: Mon, 6 Jan 2025 10:00:00 +0000\r\nMessage-ID: <m{n}@example.com>\r\n\r\n"
        f"Hello number {n}, " + "some text " * 40 + "\r\n"
    ).encode()


def _client(peer: DovecotPeer) -> IMAPClient:
    context = ssl.create_default_context(cafile=peer.ca_file)
    return IMAPClient(IMAP_HOST, peer.ssl_port, ssl_context=context, timeout=10)


def plain_imapclient(peer: DovecotPeer, sent: list[str], limit: int = 50) -> int:
    """The baseline: the newest ``limit`` messages' items with imapclient; no decoding."""
    from flask_mailconnect.transport.mailbox import FETCH_ITEMS

    client = _client(peer)
    client.login(peer.user, peer.password)
    _count_commands(client, sent)
    client.select_folder("INBOX", readonly=True)
    uids = client.search("ALL")[-limit:]
    data = client.fetch(uids, [i for i in FETCH_ITEMS if i != "UID"])
    client.logout()
    return len(data)


def _timed(func: Callable[[], Any]) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def _fill(peer: DovecotPeer, numbers: range) -> None:
    filler = _client(peer)
    filler.login(peer.user, peer.password)
    for n in numbers:
        filler.append("INBOX", _message(n))
    filler.logout()


def _measure(peer: DovecotPeer, certs: Any, rounds: int, total: int, limit: int) -> list[Row]:
    from flask_mailconnect import MailAccount, SyncedMessage
    from flask_mailconnect import sync as sync_module
    from flask_mailconnect.transport.imap import open_imap
    from tests import hostapp

    _fill(peer, range(1, total + 1))
    app, ext = hostapp.create_app(
        MAILCONNECT_ALLOW_PRIVATE_HOSTS=True,
        MAILCONNECT_IMAP_PORTS=None,
        MAILCONNECT_CA_FILE=certs.ca_file,
    )
    sent: list[str] = []

    def counting_open_imap(*args: Any, **kwargs: Any) -> IMAPClient:
        return _count_commands(open_imap(*args, **kwargs), sent)

    sync_module.open_imap = counting_open_imap  # type: ignore[assignment]
    try:
        with app.app_context():
            db = hostapp.db
            account = MailAccount(
                owner_kind="user", owner_id="1", provider="other", email="a@example.com",
                username=peer.user, password=peer.password, smtp_host="localhost",
                smtp_port=587, smtp_security="starttls", imap_host=IMAP_HOST,
                imap_port=peer.ssl_port, imap_security="ssl",
            )  # fmt: skip
            db.session.add(account)
            db.session.commit()

            def reset() -> None:  # not timed: back to an account that never synced
                db.session.query(SyncedMessage).delete()
                account.sync_uidvalidity = account.sync_uidnext = None
                db.session.commit()

            def sync() -> None:
                result = ext.sync_recent(account, limit=limit)
                db.session.commit()
                assert result.new == limit, result

            def ours_full() -> None:
                reset()
                sync()

            sent.clear()
            ours_full()
            ours_commands = len(sent) + 1  # + the LOGIN before the wrapper
            sent.clear()
            assert plain_imapclient(peer, sent, limit) == limit
            plain_commands = len(sent) + 1
            ours_full()  # warm both (imports, caches) before measuring
            plain_imapclient(peer, [], limit)
            ours: list[float] = []
            plain: list[float] = []
            for _ in range(rounds):  # alternate, so both see the same machine
                reset()
                ours.append(_timed(sync))
                plain.append(_timed(lambda: plain_imapclient(peer, [], limit)))

            ours_full()
            _fill(peer, range(total + 1, total + 4))
            sent.clear()
            start = time.perf_counter()
            result = ext.sync_recent(account, limit=limit)
            db.session.commit()
            incremental = time.perf_counter() - start
            incremental_commands = len(sent) + 1
            assert result.new == 3 and result.fetched == 3
    finally:
        sync_module.open_imap = open_imap  # type: ignore[assignment]
        with app.app_context():
            hostapp.db.session.remove()
            hostapp.db.engine.dispose()
    return [
        measured(
            FIGURE.format(limit=limit),
            samples(ours, "ms", 1000),
            samples(plain, "ms", 1000),
            at_most=GOAL,
            against="imapclient, same items",
            note=f"round trips {ours_commands} vs {plain_commands}; {rounds} rounds each, "
            f"median (min-max); incremental sync of 3 new: {incremental * 1000:.1f} ms, "
            f"{incremental_commands} round trips",
        )  # fmt: skip
    ]


def rows(*, smoke: bool = False) -> list[Row]:
    """The sync row (``smoke``: 12 messages, one round, no meaning in the figures)."""
    reason = dovecot_available()
    if reason:
        return [skipped(FIGURE.format(limit=50), f"Dovecot unavailable ({reason})", at_most=GOAL)]
    rounds, total, limit = (1, 12, 10) if smoke else (ROUNDS, 60, 50)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        directory.chmod(0o755)
        certs = make_certs(directory)
        peer = start_dovecot(
            cert_file=certs.cert_file, key_file=certs.key_file, ca_file=certs.ca_file
        )
        try:
            return _measure(peer, certs, rounds, total, limit)
        finally:
            stop_dovecot(peer)


def main() -> None:
    print_table(rows())


if __name__ == "__main__":
    main()
