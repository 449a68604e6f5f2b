"""Test connection: wall time against the slower of its two checks, and against a silent server.

Test connection runs SMTP and IMAP side by side, so its wall time should track the slower of the
two checks (ratio near 1.0), not their sum (ratio near 1 + faster/slower). Against a server that
accepts and never answers, it must return within the configured timeout (ratio <= 1.0 + slack).
Peers are the test suite's: aiosmtpd with STARTTLS and Dovecot with IMAPS on 127.0.0.1.
"""

from __future__ import annotations

import multiprocessing
import statistics
import tempfile
import threading
import time
import types
from collections.abc import Callable
from pathlib import Path

from flask_mailconnect.transport.imap import check_imap
from flask_mailconnect.transport.settings import ServerSettings, TransportOptions
from flask_mailconnect.transport.smtp import check_smtp
from flask_mailconnect.transport.tester import test_connection
from tests.peers.certs import make_certs
from tests.peers.dovecot import dovecot_available, start_dovecot, stop_dovecot
from tests.peers.raw import SilentServer
from tests.peers.smtp_server import start_smtp

ROUNDS = 15


def _serve_smtp(certs: object, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    peer, _controller = start_smtp(
        "starttls",
        ca_file=certs.ca_file,
        context=certs.server_context(),  # type: ignore[attr-defined]
    )
    queue.put((peer.port, peer.user, peer.password))  # the peer itself holds a lock
    threading.Event().wait()  # serve until terminated


def _smtp_in_child(certs: object) -> tuple[types.SimpleNamespace, multiprocessing.Process]:
    """aiosmtpd in its own process: in ours it would share our GIL and skew the timing."""
    queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    process = multiprocessing.Process(target=_serve_smtp, args=(certs, queue), daemon=True)
    process.start()
    port, user, password = queue.get(timeout=10)
    return types.SimpleNamespace(port=port, user=user, password=password), process


def _median_seconds(func: Callable[[], object], rounds: int = ROUNDS) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
        assert getattr(result, "ok", True), result
    return statistics.median(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        directory.chmod(0o755)
        certs = make_certs(directory)
        smtp, server_process = _smtp_in_child(certs)
        reason = dovecot_available()
        imap = (
            None
            if reason
            else start_dovecot(  # same mailbox login as the SMTP peer
                cert_file=certs.cert_file,
                key_file=certs.key_file,
                ca_file=certs.ca_file,
                user=smtp.user,
                password=smtp.password,
            )
        )
        try:
            options = TransportOptions(
                timeout=5.0,
                allow_private_hosts=True,
                smtp_ports=None,
                imap_ports=None,
                ca_file=certs.ca_file,
            )
            print("Test connection (aiosmtpd STARTTLS + Dovecot IMAPS on 127.0.0.1)")
            if imap is None:
                print(f"  skipped: Dovecot unavailable ({reason})")
            else:
                settings = ServerSettings(
                    email=smtp.user,
                    username=smtp.user,
                    password=smtp.password,
                    smtp_host="localhost",
                    smtp_port=smtp.port,
                    smtp_security="starttls",
                    imap_host="localhost",
                    imap_port=imap.ssl_port,
                    imap_security="ssl",
                )
                t_smtp = _median_seconds(lambda: check_smtp(settings, options))
                t_imap = _median_seconds(lambda: check_imap(settings, options))

                def run_both() -> object:
                    return test_connection(settings, options)

                t_both = _median_seconds(run_both)
                slower = max(t_smtp, t_imap)
                print(f"  SMTP check alone   {t_smtp * 1000:8.1f} ms (median of {ROUNDS})")
                print(f"  IMAP check alone   {t_imap * 1000:8.1f} ms")
                print(f"  test_connection    {t_both * 1000:8.1f} ms")
                print(
                    f"  ratio to the slower check: {t_both / slower:5.2f}x "
                    f"(sequential would be {(t_smtp + t_imap) / slower:4.2f}x)"
                )

            silent = SilentServer()
            try:
                timeout = 2.0
                quiet = TransportOptions(
                    timeout=timeout, allow_private_hosts=True, smtp_ports=None, imap_ports=None
                )
                mute = ServerSettings(
                    email="x@example.com",
                    username="x",
                    password="y",
                    smtp_host="127.0.0.1",
                    smtp_port=silent.port,
                    smtp_security="starttls",
                    imap_host="127.0.0.1",
                    imap_port=silent.port,
                    imap_security="starttls",
                )
                start = time.perf_counter()
                report = test_connection(mute, quiet)
                elapsed = time.perf_counter() - start
                codes = ",".join(r.code for r in report.results)
                print(
                    f"Silent server, timeout {timeout:.1f} s: returned in {elapsed:.2f} s "
                    f"({elapsed / timeout:4.2f}x the timeout), codes {codes}"
                )
            finally:
                silent.close()
        finally:
            server_process.terminate()
            server_process.join()
            if imap is not None:
                stop_dovecot(imap)


if __name__ == "__main__":
    main()
