"""Bulk send of N messages through one account: ``mailconnect.sending()`` against the floor (a
raw smtplib loop over one connection) and Flask-Mail with its connection reuse (``mail.connect()``).

The server is the suite's aiosmtpd (STARTTLS, AUTH PLAIN) in a child process, so it does not
share our GIL. All three log in once over STARTTLS and send the same kind of message (a short
text body to one recipient); ours also builds From/Date/Message-ID, appends a signature, checks
headers and recipients strictly, and runs MAIL/RCPT/DATA itself to tell "lost before the data
was complete" from "may have been delivered". Printed as ratios to the floor, measured in one run.
"""

from __future__ import annotations

import multiprocessing
import smtplib
import ssl
import tempfile
import time
import types
from email.message import EmailMessage
from pathlib import Path

from tests.peers.certs import make_certs
from tests.peers.smtp_server import start_smtp

N = 1000
ROUNDS = 3  # best of: the machine may be busy with other work


def _serve_smtp(certs: object, queue: multiprocessing.Queue, counts: object) -> None:  # type: ignore[type-arg]
    peer, _controller = start_smtp(
        "starttls",
        ca_file=certs.ca_file,  # type: ignore[attr-defined]
        context=certs.server_context(),  # type: ignore[attr-defined]
    )
    queue.put((peer.port, peer.user, peer.password))
    while True:  # report how many messages arrived, then forget them (memory)
        command = counts.recv()  # type: ignore[attr-defined]
        if command == "count":
            with peer.lock:
                counts.send(len(peer.messages))  # type: ignore[attr-defined]
                peer.messages.clear()
                peer.auth_attempts.clear()


def _smtp_in_child(certs: object) -> tuple[types.SimpleNamespace, multiprocessing.Process, object]:
    queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.Process(target=_serve_smtp, args=(certs, queue, child), daemon=True)
    process.start()
    port, user, password = queue.get(timeout=10)
    return types.SimpleNamespace(port=port, user=user, password=password), process, parent


def _delivered(pipe: object) -> int:
    pipe.send("count")  # type: ignore[attr-defined]
    return int(pipe.recv())  # type: ignore[attr-defined]


def _message(i: int, sender: str | None = None) -> EmailMessage:
    msg = EmailMessage()
    if sender:
        msg["From"] = sender
    msg["To"] = f"rcpt{i}@example.com"
    msg["Subject"] = f"Bulk message {i}"
    msg.set_content(f"Hello {i},\nthis is a bulk message.\n")
    return msg


def _raw_messages(sender: str) -> list[bytes]:
    """Built before the clock starts: the floor is the protocol alone."""
    return [_message(i, sender).as_bytes() for i in range(N)]


def raw_smtplib(smtp: types.SimpleNamespace, ca_file: str, messages: list[bytes]) -> None:
    context = ssl.create_default_context(cafile=ca_file)
    client = smtplib.SMTP("localhost", smtp.port, timeout=10)
    client.starttls(context=context)
    client.login(smtp.user, smtp.password)
    for i, data in enumerate(messages):
        client.sendmail(smtp.user, [f"rcpt{i}@example.com"], data)
    client.quit()


def _flask_mail(smtp: types.SimpleNamespace) -> tuple[object, object]:
    from flask import Flask
    from flask_mail import Mail

    app = Flask("bench_flask_mail")
    app.config.update(
        MAIL_SERVER="localhost",
        MAIL_PORT=smtp.port,
        MAIL_USE_TLS=True,
        MAIL_USERNAME=smtp.user,
        MAIL_PASSWORD=smtp.password,
        MAIL_DEFAULT_SENDER=smtp.user,
    )
    return app, Mail(app)


def flask_mail_loop(app: object, mail: object) -> None:
    from flask_mail import Message

    with app.app_context(), mail.connect() as conn:  # type: ignore[attr-defined]
        for i in range(N):
            conn.send(
                Message(
                    subject=f"Bulk message {i}",
                    recipients=[f"rcpt{i}@example.com"],
                    body=f"Hello {i},\nthis is a bulk message.\n",
                )
            )


def _mailconnect(smtp: types.SimpleNamespace, ca_file: str) -> tuple[object, object, int]:
    from flask_mailconnect import MailAccount
    from tests import hostapp

    app, ext = hostapp.create_app(
        MAILCONNECT_ALLOW_PRIVATE_HOSTS=True,
        MAILCONNECT_SMTP_PORTS=None,
        MAILCONNECT_CA_FILE=ca_file,
    )
    with app.app_context():
        account = MailAccount(
            owner_kind="user", owner_id="1", provider="other", email=smtp.user,
            username=smtp.user, password=smtp.password, smtp_host="localhost",
            smtp_port=smtp.port, smtp_security="starttls", display_name="Bench Sender",
            signature_html="<p>Bench <b>Sender</b></p>", signature_text="Bench Sender",
        )  # fmt: skip
        hostapp.db.session.add(account)
        hostapp.db.session.commit()
        return app, ext, account.id


def mailconnect_loop(app: object, ext: object, account_id: int) -> None:
    from tests import hostapp

    with app.app_context():  # type: ignore[attr-defined]
        account = ext.get_account(account_id)  # type: ignore[attr-defined]
        with ext.sending(account) as conn:  # type: ignore[attr-defined]
            for i in range(N):
                conn.send(_message(i))
        hostapp.db.session.commit()


def _best(func: types.FunctionType | object, pipe: object, *args: object) -> float:
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        func(*args)  # type: ignore[operator]
        times.append(time.perf_counter() - start)
        got = _delivered(pipe)
        assert got == N, f"{getattr(func, '__name__', func)}: {got} of {N} delivered"
    return min(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        directory.chmod(0o755)
        certs = make_certs(directory)
        smtp, process, pipe = _smtp_in_child(certs)
        try:
            fm_app, fm_mail = _flask_mail(smtp)
            mc_app, mc_ext, account_id = _mailconnect(smtp, certs.ca_file)
            floor = _best(raw_smtplib, pipe, smtp, certs.ca_file, _raw_messages(smtp.user))
            ours = _best(mailconnect_loop, pipe, mc_app, mc_ext, account_id)
            flask_mail = _best(flask_mail_loop, pipe, fm_app, fm_mail)
        finally:
            process.terminate()
            process.join()
    print(f"Bulk send of {N} messages, one STARTTLS connection, aiosmtpd in a child process")
    print(f"(best of {ROUNDS}; every message counted at the server; the floor's messages are")
    print(" built before its clock starts, the others build theirs as they go)")
    for name, seconds in (
        ("raw smtplib loop (floor)", floor),
        ("mailconnect.sending()", ours),
        ("Flask-Mail mail.connect()", flask_mail),
    ):
        print(
            f"  {name:27s} {seconds:7.3f} s  {seconds / N * 1000:6.2f} ms/msg  "
            f"{seconds / floor:5.2f}x the floor"
        )
    print(f"  mailconnect vs Flask-Mail: {ours / flask_mail:5.2f}x")


if __name__ == "__main__":
    main()
