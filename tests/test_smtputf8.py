"""Sending that used to break on real servers: international (non-ASCII) local parts through
SMTPUTF8, the server's SIZE limit, and TLS closed with close_notify (SMTP and IMAP).

aiosmtpd is the peer for SMTPUTF8 and SIZE (``smtputf8`` / ``size_limit`` knobs; it records
every MAIL FROM and DATA command). For close_notify a small TLS server here plays SMTP or IMAP
and records whether the client's TLS shutdown arrived before the TCP connection closed (the
server's ``unwrap()`` completes) or the connection was just cut.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from flask import Flask

from flask_mailconnect import InvalidMessage, MailAccount, MailConnect, PermanentSendError
from flask_mailconnect.exceptions import InternationalAddressUnsupported, MessageTooLarge
from flask_mailconnect.transport.imap import check_imap
from flask_mailconnect.transport.settings import TransportOptions
from flask_mailconnect.transport.smtp import check_smtp, open_smtp
from flask_mailconnect.transport.submit import quit_quietly
from tests.peers.settings import peer_settings
from tests.sending import make_account

pytestmark = pytest.mark.peers

INTERNATIONAL = "ünïcode@example.org"


def message(to: str = INTERNATIONAL, body: str = "Hi,\nsee you.\n") -> EmailMessage:
    msg = EmailMessage()
    msg["To"] = to
    msg["Subject"] = "Grüße"
    msg.set_content(body)
    return msg


@pytest.fixture
def account(peer_app: Flask, db: Any, smtp_starttls: Any) -> Iterator[MailAccount]:
    with peer_app.app_context():
        yield make_account(db, smtp_starttls)


# -- SMTPUTF8 ------------------------------------------------------------------------------------


def test_non_ascii_local_part_is_delivered_when_the_server_offers_smtputf8(
    mailconnect: MailConnect, account: MailAccount, smtp_starttls: Any
) -> None:
    smtp_starttls.smtputf8 = True
    result = mailconnect.send(message(f"Ünï <{INTERNATIONAL}>, bob@example.com"), account=account)
    assert result.accepted == [INTERNATIONAL, "bob@example.com"]
    [delivered] = smtp_starttls.messages
    assert delivered.rcpt_tos == [INTERNATIONAL, "bob@example.com"]
    [mail_from] = smtp_starttls.mail_commands
    assert "SMTPUTF8" in mail_from.upper().split()
    # The headers travel as UTF-8 (RFC 6532), not as encoded words.
    assert f"To: Ünï <{INTERNATIONAL}>, bob@example.com".encode() in delivered.data
    assert "Subject: Grüße".encode() in delivered.data


def test_without_smtputf8_the_typed_error_names_the_recipient_and_keeps_the_connection(
    mailconnect: MailConnect, account: MailAccount, smtp_starttls: Any
) -> None:
    assert smtp_starttls.smtputf8 is False  # aiosmtpd's default, like many servers
    with mailconnect.sending(account) as conn:
        with pytest.raises(InternationalAddressUnsupported) as refused:
            conn.send(message())
        conn.send(message("bob@example.com"))  # the same connection, still usable
    error = refused.value
    assert isinstance(error, PermanentSendError) and not error.retryable
    assert error.code == "smtputf8_unsupported" and error.addresses == [INTERNATIONAL]
    assert INTERNATIONAL in str(error) and "SMTPUTF8" in str(error)
    # Refused before MAIL FROM: the server saw one transaction, the ASCII message's.
    assert len(smtp_starttls.mail_commands) == 1 and smtp_starttls.connections == 2  # STARTTLS
    assert [m.rcpt_tos for m in smtp_starttls.messages] == [["bob@example.com"]]


def test_recipients_are_still_parsed_strictly(
    mailconnect: MailConnect, account: MailAccount, smtp_starttls: Any
) -> None:
    smtp_starttls.smtputf8 = True
    for bad in ("ünï..code@example.org", "ünïcode@-example.org", "ünï code@example.org"):
        with pytest.raises(InvalidMessage) as refused:
            mailconnect.send(message(bad), account=account)
        assert refused.value.code == "invalid_message", bad
    assert smtp_starttls.connections == 0  # refused before any connection


# -- SIZE ----------------------------------------------------------------------------------------


def test_message_over_the_advertised_size_is_refused_before_data(
    mailconnect: MailConnect, account: MailAccount, smtp_starttls: Any
) -> None:
    smtp_starttls.size_limit = 4000
    with mailconnect.sending(account) as conn:
        with pytest.raises(MessageTooLarge) as refused:
            conn.send(message("bob@example.com", body="x" * 70 + "\n" * 100 + "y" * 5000))
        assert smtp_starttls.data_commands == 0 and smtp_starttls.mail_commands == []
        conn.send(message("bob@example.com"))  # a small one goes, over the same connection
    error = refused.value
    assert error.code == "message_too_large" and not error.retryable
    assert error.limit == 4000 and error.size is not None and error.size > 4000
    assert "4,000 bytes" in str(error)
    [mail_from] = smtp_starttls.mail_commands
    size = int(next(p for p in mail_from.split() if p.upper().startswith("SIZE="))[5:])
    [delivered] = smtp_starttls.messages
    assert size == len(delivered.data) and smtp_starttls.data_commands == 1


def test_without_size_no_size_parameter_is_sent(
    mailconnect: MailConnect, account: MailAccount, smtp_starttls: Any
) -> None:
    smtp_starttls.size_limit = None  # no SIZE in EHLO
    mailconnect.send(message("bob@example.com", body="z" * 10000), account=account)
    assert "SIZE=" not in smtp_starttls.mail_commands[0].upper()
    assert len(smtp_starttls.messages) == 1


# -- close_notify ----------------------------------------------------------------------------------


class TlsPeer:
    """One-connection TLS server speaking just enough SMTP or IMAP; after the client's last
    command it records how the TLS connection ended: ``"close_notify"`` (the client's TLS
    shutdown arrived and the server's own ``unwrap()`` completed) or ``"cut"``."""

    def __init__(
        self, context: ssl.SSLContext, protocol: str, *, starttls: bool = False,
        answer_close: bool = True,
    ) -> None:  # fmt: skip
        self.context = context
        self.protocol = protocol
        self.starttls = starttls
        self.answer_close = answer_close
        self.ended: str | None = None
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.host, self.port = self.listener.getsockname()[:2]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _wrap(self, sock: socket.socket) -> ssl.SSLSocket:
        return self.context.wrap_socket(sock, server_side=True, suppress_ragged_eofs=False)

    def _serve(self) -> None:
        self.listener.settimeout(10)
        conn, _ = self.listener.accept()
        conn.settimeout(10)
        sock: socket.socket = conn if self.starttls else self._wrap(conn)
        reader = Lines(sock)
        try:
            if self.protocol == "smtp":
                sock = self._smtp(sock, reader)
            else:
                self._imap(sock, reader)
            if not self.answer_close:
                time.sleep(4)  # never answers the client's close_notify
                self.ended = "ignored"
                return
            assert isinstance(sock, ssl.SSLSocket)
            self.ended = "cut"
            if sock.recv(1024) == b"":  # a TLS close_notify, not a bare TCP end
                sock.unwrap()
                self.ended = "close_notify"
        except (OSError, ssl.SSLError):
            pass
        finally:
            for one in (reader.sock, sock, conn):
                one.close()
            self.listener.close()

    def _smtp(self, sock: socket.socket, reader: Lines) -> socket.socket:
        sock.sendall(b"220 localhost ESMTP\r\n")
        while True:
            line = reader.line().upper()
            if line.startswith(b"EHLO"):
                tls = b"250-STARTTLS\r\n" if not isinstance(sock, ssl.SSLSocket) else b""
                sock.sendall(b"250-localhost\r\n" + tls + b"250 AUTH PLAIN\r\n")
            elif line.startswith(b"STARTTLS"):
                sock.sendall(b"220 go ahead\r\n")
                sock = self._wrap(sock)
                reader.sock = sock
            elif line.startswith(b"AUTH"):
                sock.sendall(b"235 2.7.0 Authenticated\r\n")
            elif line.startswith(b"QUIT"):
                sock.sendall(b"221 2.0.0 Bye\r\n")
                return sock
            else:
                sock.sendall(b"250 OK\r\n")

    def _imap(self, sock: socket.socket, reader: Lines) -> None:
        sock.sendall(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n")
        while True:
            tag, _, rest = reader.line().partition(b" ")
            command = rest.split(b" ", 1)[0].upper()
            if command == b"CAPABILITY":
                sock.sendall(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n" + tag + b" OK done\r\n")
            elif command in (b"SELECT", b"EXAMINE"):
                sock.sendall(
                    b"* 0 EXISTS\r\n* OK [UIDVALIDITY 1] ok\r\n" + tag + b" OK [READ-ONLY] done\r\n"
                )
            elif command == b"LOGOUT":
                sock.sendall(b"* BYE logging out\r\n" + tag + b" OK done\r\n")
                return
            else:
                sock.sendall(tag + b" OK done\r\n")


class Lines:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line


@pytest.fixture
def tls_peer(peer_certs: Any) -> Iterator[Callable[..., TlsPeer]]:
    peers: list[TlsPeer] = []

    def start(protocol: str, **kwargs: Any) -> TlsPeer:
        peers.append(TlsPeer(peer_certs.server_context(), protocol, **kwargs))
        return peers[-1]

    yield start
    for peer in peers:
        peer.thread.join(10)


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_smtp_tls_is_closed_with_close_notify(
    tls_peer: Callable[..., TlsPeer], peer_options: TransportOptions, security: str
) -> None:
    peer = tls_peer("smtp", starttls=security == "starttls")
    settings = peer_settings(None, smtp_port=peer.port, smtp_security=security)
    assert check_smtp(settings, peer_options).ok
    peer.thread.join(5)
    assert peer.ended == "close_notify"


def test_imap_tls_is_closed_with_close_notify(
    tls_peer: Callable[..., TlsPeer], peer_options: TransportOptions
) -> None:
    peer = tls_peer("imap")
    settings = peer_settings(
        None, imap=peer, imap_port=peer.port, imap_security="ssl", username="a", password="b"
    )
    assert check_imap(settings, peer_options).ok
    peer.thread.join(5)
    assert peer.ended == "close_notify"


def test_a_server_that_ignores_close_notify_costs_at_most_a_second(
    tls_peer: Callable[..., TlsPeer], peer_options: TransportOptions
) -> None:
    peer = tls_peer("smtp", answer_close=False)
    client = open_smtp(peer_settings(None, smtp_port=peer.port), peer_options)
    started = time.monotonic()
    quit_quietly(client)
    assert time.monotonic() - started < 2.5
