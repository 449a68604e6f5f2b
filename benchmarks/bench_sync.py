"""Sync of the newest 50: IMAP round trips and wall time, ``sync_recent`` vs plain imapclient.

Dovecot (its own process, IMAPS on 127.0.0.1) holds 60 messages in INBOX. Three runs, measured
in one go and printed as ratios:

- ours, full: ``mailconnect.sync_recent(account, limit=50)`` from an empty table (login,
  EXAMINE, one ``FETCH <n>:*`` for headers + flags + snippet, logout; rows stored in SQLite);
- the baseline: what a developer writes with imapclient directly: login, SELECT, ``SEARCH ALL``,
  ``FETCH`` of the newest 50 UIDs (the same header fields, flags and 200 body bytes), logout;
  nothing decoded or stored;
- ours, incremental: the next sync with 3 new messages (``UID FETCH <uidnext>:*`` plus one
  flags-only ``UID FETCH`` of the kept range).

Round trips are IMAP commands sent (each waits for its tagged answer), counted by wrapping
imaplib's ``_command``; the TLS handshake and greeting are the same for both.
"""

from __future__ import annotations

import ssl
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from imapclient import IMAPClient

from tests.peers.certs import make_certs
from tests.peers.dovecot import DovecotPeer, dovecot_available, start_dovecot, stop_dovecot

ROUNDS = 15
FIELDS = "BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE MESSAGE-ID)]"


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
    return IMAPClient(peer.host, peer.ssl_port, ssl_context=context, timeout=10)


def plain_imapclient(peer: DovecotPeer, sent: list[str]) -> int:
    """The baseline: newest 50 headers with imapclient, no decoding, no database."""
    client = _client(peer)
    client.login(peer.user, peer.password)
    _count_commands(client, sent)
    client.select_folder("INBOX", readonly=True)
    uids = client.search("ALL")[-50:]
    data = client.fetch(uids, ["FLAGS", FIELDS, "BODY.PEEK[TEXT]<0.200>"])
    client.logout()
    return len(data)


def _median(func: Callable[[], Any]) -> float:
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    print("Sync of the newest 50 (Dovecot IMAPS on 127.0.0.1, 60 messages in INBOX)")
    reason = dovecot_available()
    if reason:
        print(f"  skipped: Dovecot unavailable ({reason})")
        return
    from flask_mailconnect import MailAccount, SyncedMessage
    from flask_mailconnect import sync as sync_module
    from flask_mailconnect.transport.imap import open_imap
    from tests import hostapp

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        directory.chmod(0o755)
        certs = make_certs(directory)
        peer = start_dovecot(
            cert_file=certs.cert_file, key_file=certs.key_file, ca_file=certs.ca_file
        )
        try:
            filler = _client(peer)
            filler.login(peer.user, peer.password)
            for n in range(1, 61):
                filler.append("INBOX", _message(n))
            filler.logout()

            app, ext = hostapp.create_app(
                MAILCONNECT_ALLOW_PRIVATE_HOSTS=True,
                MAILCONNECT_IMAP_PORTS=None,
                MAILCONNECT_CA_FILE=certs.ca_file,
            )
            sent: list[str] = []

            def counting_open_imap(*args: Any, **kwargs: Any) -> IMAPClient:
                return _count_commands(open_imap(*args, **kwargs), sent)

            sync_module.open_imap = counting_open_imap  # type: ignore[assignment]
            with app.app_context():
                db = hostapp.db
                account = MailAccount(
                    owner_kind="user", owner_id="1", provider="other", email="a@example.com",
                    username=peer.user, password=peer.password, smtp_host="localhost",
                    smtp_port=587, smtp_security="starttls", imap_host="localhost",
                    imap_port=peer.ssl_port, imap_security="ssl",
                )  # fmt: skip
                db.session.add(account)
                db.session.commit()

                def ours_full() -> None:
                    db.session.query(SyncedMessage).delete()
                    account.sync_uidvalidity = account.sync_uidnext = None
                    result = ext.sync_recent(account, limit=50)
                    db.session.commit()
                    assert result.new == 50, result

                sent.clear()
                ours_full()
                ours_commands = len(sent) + 1  # + the LOGIN before the wrapper
                sent.clear()
                assert plain_imapclient(peer, sent) == 50
                plain_commands = len(sent) + 1
                ours_time = _median(ours_full)
                plain_time = _median(lambda: plain_imapclient(peer, []))

                ours_full()
                filler = _client(peer)
                filler.login(peer.user, peer.password)
                for n in range(61, 64):
                    filler.append("INBOX", _message(n))
                filler.logout()
                sent.clear()
                start = time.perf_counter()
                result = ext.sync_recent(account, limit=50)
                db.session.commit()
                incremental_time = time.perf_counter() - start
                incremental_commands = len(sent) + 1
                assert result.new == 3 and result.fetched == 3
            sync_module.open_imap = open_imap  # type: ignore[assignment]
        finally:
            stop_dovecot(peer)

    print(f"  round trips: sync_recent {ours_commands} vs plain imapclient {plain_commands} "
          f"(ratio {ours_commands / plain_commands:.2f}); incremental (3 new) "
          f"{incremental_commands}")  # fmt: skip
    print(f"  wall time (median of {ROUNDS}): sync_recent {ours_time * 1000:.1f} ms "
          f"(decode + store 50 rows) vs plain imapclient {plain_time * 1000:.1f} ms "
          f"(ratio {ours_time / plain_time:.2f}); "
          f"incremental {incremental_time * 1000:.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
