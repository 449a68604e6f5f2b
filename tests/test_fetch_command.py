"""The sync's FETCH command against a server that refuses it.

Dovecot answers every FETCH here; some servers answer ``NO`` (a message expunged by another
session, Exchange's "[UNAVAILABLE]", a mailbox that went away). A scripted IMAP server on
loopback speaks that exchange on the wire, and :func:`fetch_reader.fetch` must report it as
IMAPClient reports its own commands' ``NO`` (``IMAPClientError``, the server's words kept),
and stay usable for the next command.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from flask_mailconnect.transport.fetch_reader import fetch

REFUSAL = b"NO [UNAVAILABLE] Message store temporarily unavailable"


class RefusingImap:
    """One IMAP session: logs in, selects INBOX (one message), answers ``NO`` to any FETCH and
    ``OK`` to NOOP and LOGOUT. It records the commands it received."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.received: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn, conn.makefile("rb") as lines:
            conn.sendall(b"* OK [CAPABILITY IMAP4rev1] ready\r\n")
            for line in lines:
                tag, _, rest = line.rstrip(b"\r\n").partition(b" ")
                command = rest.split(b" ", 2)
                verb = command[0].upper()
                if verb == b"UID":
                    verb = b"UID " + command[1].upper()
                self.received.append(verb)
                if verb == b"CAPABILITY":
                    conn.sendall(b"* CAPABILITY IMAP4rev1\r\n" + tag + b" OK done\r\n")
                elif verb == b"LOGIN":
                    conn.sendall(tag + b" OK logged in\r\n")
                elif verb in (b"SELECT", b"EXAMINE"):
                    conn.sendall(
                        b"* 1 EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY 7] ok\r\n"
                        b"* OK [UIDNEXT 2] ok\r\n* FLAGS (\\Seen)\r\n"
                        + tag + b" OK [READ-ONLY] selected\r\n"
                    )  # fmt: skip
                elif verb in (b"FETCH", b"UID FETCH"):
                    conn.sendall(tag + b" " + REFUSAL + b"\r\n")
                elif verb == b"LOGOUT":
                    conn.sendall(b"* BYE bye\r\n" + tag + b" OK done\r\n")
                    return
                else:
                    conn.sendall(tag + b" OK done\r\n")

    def close(self) -> None:
        self.listener.close()
        self.thread.join(timeout=5)


@pytest.fixture
def client() -> Iterator[tuple[IMAPClient, RefusingImap]]:
    server = RefusingImap()
    imap = IMAPClient("127.0.0.1", port=server.port, ssl=False, timeout=5)
    imap.login("user", "secret")
    imap.select_folder("INBOX", readonly=True)
    try:
        yield imap, server
    finally:
        imap.logout()
        server.close()


@pytest.mark.parametrize("by_uid", [True, False], ids=["uid-fetch", "fetch"])
def test_a_refused_fetch_is_imapclients_error_with_the_servers_words(
    client: tuple[IMAPClient, RefusingImap], by_uid: bool
) -> None:
    imap, server = client
    with pytest.raises(IMAPClientError) as raised:
        fetch(imap, "1:*", ["UID", "FLAGS"], by_uid=by_uid)
    assert str(raised.value) == "fetch failed: [UNAVAILABLE] Message store temporarily unavailable"
    assert server.received[-1] == (b"UID FETCH" if by_uid else b"FETCH")
    imap.noop()  # the session is still in step: the next command gets its own answer
    assert server.received[-1] == b"NOOP"
