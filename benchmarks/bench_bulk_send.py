"""Bulk send of N messages through one account, side by side with what a host would otherwise use.

Every client logs in once over STARTTLS to the same lean SMTP sink (benchmarks/smtp_sink.py, its
own process, so the sink is never the bottleneck and never shares our GIL) and sends N messages,
each a short text to one recipient, From with a display name, a signature appended, Date and
Message-ID set, built inside the timed loop:

- ours: ``mailconnect.sending(account)``; the host builds a ``Draft`` (To, Subject and the body:
  the recommended bulk input), we add From, Date, Message-ID and the account's signature, check
  headers and recipients strictly, write the bytes and run MAIL/RCPT/DATA ourselves;
- smtplib + the email package: an ``EmailMessage`` with the same headers and the signed body,
  ``as_bytes()`` and ``sendmail`` on one connection;
- Flask-Mail: ``mail.connect()`` and ``conn.send(Message(...))`` with the same sender, body and
  signature.

Rounds are interleaved (ours, smtplib, Flask-Mail, ours...), every message is counted at the
sink. At the first size, ours with an ``EmailMessage`` built by the host (what ``send`` took
before ``Draft``) is measured in the same rounds: an informational row, without a goal. Also
measured: peak traced memory of ours at N and 10 N messages (flat: the session keeps no
per-message state), and ours with a Sent copy to Dovecot against ours without.
"""

from __future__ import annotations

import os
import smtplib
import ssl
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path
from typing import Any

from benchmarks.smtp_sink import Sink, start_sink
from benchmarks.table import Row, informational, measured, samples, skipped
from tests.peers.certs import make_certs

SIZES = (1000, 10_000)
ROUNDS = 3
#: The Sent-copy row's rounds: a batch takes a fifth of a second, and the copy runs beside the
#: sending on a second core, so a moment of other load moves one round's ratio a lot (three
#: rounds once gave 0.84-1.30x on an idle machine).
COPY_ROUNDS = 9
SENDER = "Bench Sender"
SIGNATURE = "Bench Sender"
SIGNATURE_HTML = "<p>Bench <b>Sender</b></p>"


def _body(i: int) -> str:
    return f"Hello {i},\nthis is a bulk message.\n"


def _host_draft(i: int) -> Any:
    """What a host hands to ``conn.send``: we add From, Date, Message-ID and the signature."""
    from flask_mailconnect import Draft

    return Draft(to=f"rcpt{i}@example.com", subject=f"Bulk message {i}", text=_body(i))


def _host_message(i: int) -> EmailMessage:
    """The same message as an ``EmailMessage`` built by the host."""
    msg = EmailMessage()
    msg["To"] = f"rcpt{i}@example.com"
    msg["Subject"] = f"Bulk message {i}"
    msg.set_content(_body(i))
    return msg


def smtplib_loop(sink: Sink, ca_file: str, n: int) -> None:
    """The floor a developer writes by hand: the email package builds, smtplib sends."""
    client = smtplib.SMTP("localhost", sink.port, timeout=10)
    client.starttls(context=ssl.create_default_context(cafile=ca_file))
    client.login(sink.user, sink.password)
    sender = formataddr((SENDER, sink.user))
    for i in range(n):
        msg = EmailMessage()
        msg["From"] = sender
        msg["To"] = f"rcpt{i}@example.com"
        msg["Subject"] = f"Bulk message {i}"
        msg["Date"] = format_datetime(datetime.now(timezone.utc))
        msg["Message-ID"] = make_msgid(domain="example.com")
        msg.set_content(_body(i).rstrip("\n") + "\n\n-- \n" + SIGNATURE + "\n")
        client.sendmail(sink.user, [f"rcpt{i}@example.com"], msg.as_bytes())
    client.quit()


def _flask_mail(sink: Sink) -> tuple[Any, Any]:
    from flask import Flask
    from flask_mail import Mail

    app = Flask("bench_flask_mail")
    app.config.update(
        MAIL_SERVER="localhost", MAIL_PORT=sink.port, MAIL_USE_TLS=True,
        MAIL_USERNAME=sink.user, MAIL_PASSWORD=sink.password,
        MAIL_DEFAULT_SENDER=(SENDER, sink.user),
    )  # fmt: skip
    return app, Mail(app)


def flask_mail_loop(app: Any, mail: Any, n: int) -> None:
    from flask_mail import Message

    with app.app_context(), mail.connect() as conn:
        for i in range(n):
            conn.send(
                Message(
                    subject=f"Bulk message {i}",
                    recipients=[f"rcpt{i}@example.com"],
                    body=_body(i).rstrip("\n") + "\n\n-- \n" + SIGNATURE + "\n",
                )
            )


def _mailconnect(sink: Sink, ca_file: str, dovecot: Any = None) -> tuple[Any, Any, int, int | None]:
    """The host app with one send-only account, and one with a Sent copy when Dovecot runs."""
    from flask_mailconnect import MailAccount
    from tests import hostapp

    app, ext = hostapp.create_app(
        MAILCONNECT_ALLOW_PRIVATE_HOSTS=True, MAILCONNECT_SMTP_PORTS=None,
        MAILCONNECT_IMAP_PORTS=None, MAILCONNECT_CA_FILE=ca_file,
    )  # fmt: skip

    def account(owner: str, **imap: Any) -> MailAccount:
        return MailAccount(
            owner_kind="user", owner_id=owner, provider="other", email=sink.user,
            username=sink.user, password=sink.password, smtp_host="localhost",
            smtp_port=sink.port, smtp_security="starttls", display_name=SENDER,
            signature_html=SIGNATURE_HTML, signature_text=SIGNATURE, **imap,
        )  # fmt: skip

    with app.app_context():
        plain = account("1")
        hostapp.db.session.add(plain)
        copying = None
        if dovecot is not None:
            copying = account(
                "2",
                imap_host="localhost", imap_port=dovecot.ssl_port, imap_security="ssl",
                folder_sent="Sent",
            )  # fmt: skip
            hostapp.db.session.add(copying)
        hostapp.db.session.commit()
        return app, ext, plain.id, (copying.id if copying is not None else None)


def mailconnect_loop(
    app: Any, ext: Any, account_id: int, n: int, build: Callable[[int], Any] = _host_draft
) -> None:
    from tests import hostapp

    with app.app_context():
        account = ext.get_account(account_id)
        with ext.sending(account) as conn:
            for i in range(n):
                conn.send(build(i))
        hostapp.db.session.commit()


def mailconnect_email_loop(app: Any, ext: Any, account_id: int, n: int) -> None:
    mailconnect_loop(app, ext, account_id, n, _host_message)


def _timed(sink: Sink, n: int, func: Callable[..., None], *args: Any) -> float:
    start = time.perf_counter()
    func(*args, n)
    took = time.perf_counter() - start
    got = sink.delivered()
    if got != n:
        raise RuntimeError(f"{getattr(func, '__name__', func)}: {got} of {n} delivered")
    return took


def _peak_memory(app: Any, ext: Any, account_id: int, n: int, sink: Sink) -> float:
    """Peak traced memory (MiB) of a session sending ``n`` messages, above what was allocated
    before it began."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        mailconnect_loop(app, ext, account_id, n)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    sink.delivered()
    return (peak - base) / 2**20


#: A RAM-backed directory for the Dovecot peer's mail, when the machine has one.
RAM_DIR = Path("/dev/shm")


def _dovecot(certs: Any, sink: Sink) -> tuple[Any, str | None]:
    """The test suite's Dovecot peer, tuned with ``mail_fsync = never`` and its maildir on a
    RAM-backed filesystem when there is one: the Sent-copy row measures what the copy adds on
    the client's side, not the server's disk. Dovecot's default fsyncs each saved message
    (0.75-1.7 ms apiece here, more than our whole send); without fsync, creating each message's
    file on this shared machine's disk still took 0.8 ms (strace: openat) and an APPEND 3-9 ms
    a message whenever other processes wrote to the disk, against 0.07-0.09 ms on tmpfs: the
    row then measured the neighbours' I/O, 0.7x to 2.1x from one run to the next."""
    from imapclient import IMAPClient

    from tests.peers import dovecot as peers

    reason = peers.dovecot_available()
    if reason:
        return None, reason
    config = peers._config
    peers._config = lambda *a, **k: f"{config(*a, **k)}\nmail_fsync = never\n"  # type: ignore[assignment]
    temp_root = tempfile.tempdir
    if RAM_DIR.is_dir() and os.access(RAM_DIR, os.W_OK):
        tempfile.tempdir = str(RAM_DIR)  # start_dovecot makes its directory with mkdtemp
    try:
        peer = peers.start_dovecot(
            cert_file=certs.cert_file, key_file=certs.key_file, ca_file=certs.ca_file,
            user=sink.user, password=sink.password,
        )  # fmt: skip
    finally:
        peers._config = config  # type: ignore[assignment]
        tempfile.tempdir = temp_root
    context = ssl.create_default_context(cafile=certs.ca_file)
    with IMAPClient("localhost", peer.ssl_port, ssl_context=context, timeout=10) as client:
        client.login(sink.user, sink.password)
        client.create_folder("Sent")
    return peer, None


def _email_input_row(n: int, ours: list[float], flask_mail: list[float]) -> Row:
    """Ours fed ``EmailMessage`` objects against Flask-Mail: informational, no goal. Ratio:
    throughput, Flask-Mail's time per message over ours (as the goal rows)."""
    ms = 1000 / n
    return informational(
        f"bulk {n:,} ours with EmailMessage input vs Flask-Mail",
        samples(ours, "ms/msg", ms),
        samples(flask_mail, "ms/msg", ms),
        samples(flask_mail, "").median / samples(ours, "").median,
        against="Flask-Mail",
        note="informational, no goal: throughput when the host builds an "
        "email.message.EmailMessage per message instead of a Draft",
    )


def rows(*, smoke: bool = False) -> list[Row]:
    sizes = (20,) if smoke else SIZES
    rounds = 1 if smoke else ROUNDS
    out: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        directory.chmod(0o755)
        certs = make_certs(directory)
        sink = start_sink(certs.cert_file, certs.key_file)
        dovecot, no_dovecot = None, None
        try:
            dovecot, no_dovecot = _dovecot(certs, sink)
            app, ext, plain_id, copy_id = _mailconnect(sink, certs.ca_file, dovecot)
            try:
                fm_app, fm_mail = _flask_mail(sink)
                no_flask_mail = None
            except ImportError as exc:
                no_flask_mail = f"Flask-Mail is not installed ({exc})"
            for n in sizes:
                ours, floor, flask_mail, ours_email = [], [], [], []
                for _ in range(rounds):
                    ours.append(_timed(sink, n, mailconnect_loop, app, ext, plain_id))
                    floor.append(_timed(sink, n, smtplib_loop, sink, certs.ca_file))
                    if no_flask_mail is None:
                        flask_mail.append(_timed(sink, n, flask_mail_loop, fm_app, fm_mail))
                        if n == sizes[0]:
                            ours_email.append(
                                _timed(sink, n, mailconnect_email_loop, app, ext, plain_id)
                            )
                ms = 1000 / n
                s_ours = samples(ours, "ms/msg", ms)
                figure = f"bulk send {n:,}, signature + display name"
                out.append(measured(
                    f"{figure}, throughput", s_ours, samples(floor, "ms/msg", ms),
                    samples(floor, "").median / samples(ours, "").median,
                    at_least=0.9, against="smtplib + email",
                ))  # fmt: skip
                if no_flask_mail is None:
                    out.append(measured(
                        f"{figure}, throughput", s_ours, samples(flask_mail, "ms/msg", ms),
                        samples(flask_mail, "").median / samples(ours, "").median,
                        at_least=1.2, against="Flask-Mail",
                    ))  # fmt: skip
                    if ours_email:
                        out.append(_email_input_row(n, ours_email, flask_mail))
                else:
                    out.append(skipped(f"{figure} vs Flask-Mail", no_flask_mail, at_least=1.2))
            # Steady state: both sizes past the 1,000 outcomes a session keeps.
            first, small, large = (5, 10, 20) if smoke else (1000, SIZES[-1] // 2, SIZES[-1])
            at_first = _peak_memory(app, ext, plain_id, first, sink)
            low = _peak_memory(app, ext, plain_id, small, sink)
            high = _peak_memory(app, ext, plain_id, large, sink)
            out.append(measured(
                f"bulk send peak memory, {large:,} vs {small:,} messages",
                f"{high:.2f} MiB", f"{low:.2f} MiB", high / low if low else float("inf"),
                at_most=1.2, against=f"at {small:,}",
                note=f"peak traced memory of the session; at {first:,} messages "
                f"{at_first:.2f} MiB. A session keeps at most 1,000 outcomes, and a Draft "
                "written directly makes none of the email package's per-header classes "
                "(garbage in cycles, freed by the cyclic GC), so the peak levels off",
            ))  # fmt: skip
            figure = f"bulk send {sizes[0]:,} with Sent copy (Dovecot IMAP)"
            if copy_id is None:
                out.append(skipped(figure, f"Dovecot unavailable: {no_dovecot}", at_most=1.3))
            else:
                n = sizes[0]
                with_copy, without = [], []
                for round_ in range(1 if smoke else COPY_ROUNDS):  # either one first in turn
                    pair = [(without, plain_id), (with_copy, copy_id)]
                    for into, account_id in pair if round_ % 2 else reversed(pair):
                        into.append(_timed(sink, n, mailconnect_loop, app, ext, account_id))
                ms = 1000 / n
                out.append(measured(
                    figure, samples(with_copy, "ms/msg", ms), samples(without, "ms/msg", ms),
                    at_most=1.3, against="ours without copy",
                    note="Dovecot with mail_fsync = never, its maildir "
                    + ("in RAM (/dev/shm)" if str(dovecot.directory).startswith(str(RAM_DIR))
                       else "on disk (no /dev/shm)")
                    + ": the copy's cost on the client's side, not the server's disk",
                ))  # fmt: skip
        finally:
            sink.stop()
            if dovecot is not None:
                from tests.peers.dovecot import stop_dovecot

                stop_dovecot(dovecot)
    return out


def main() -> None:
    from benchmarks.table import print_table

    print_table(rows())


if __name__ == "__main__":
    main()
