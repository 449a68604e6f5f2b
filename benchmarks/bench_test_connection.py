"""Test connection: wall time against the slower of its two checks, and against a silent server.

Three runs, each the median of ROUNDS checks: the table shows the median of the runs and their
spread. Within a run the three calls (SMTP alone, IMAP alone, both) take turns round by round, in
an order that changes every round, so a load that comes and goes on a shared machine falls on
all three alike instead of on whichever block of calls happened to run at that moment.

Test connection runs SMTP and IMAP side by side, so its wall time should track the slower of the
two checks (ratio near 1.0), not their sum (ratio near 1 + faster/slower). The baseline is the
median over rounds of the slower of each round's two checks, the statistic Test connection's own
median is; the note also gives the ratio against the slower of the two checks' medians (the
baseline until the seventh round, biased against us where the two checks take similar times).
Against a server that accepts and never answers, it must return within the configured timeout
(ratio <= 1.0 + slack).
Peers are the test suite's: aiosmtpd with STARTTLS and Dovecot with IMAPS on 127.0.0.1.
"""

from __future__ import annotations

import itertools
import multiprocessing
import statistics
import tempfile
import threading
import time
import types
from collections.abc import Callable, Sequence
from pathlib import Path

from benchmarks.table import Row, measured, samples, skipped
from flask_mailconnect.transport.imap import check_imap
from flask_mailconnect.transport.settings import ServerSettings, TransportOptions
from flask_mailconnect.transport.smtp import check_smtp
from flask_mailconnect.transport.tester import test_connection
from tests.peers.certs import make_certs
from tests.peers.dovecot import dovecot_available, start_dovecot, stop_dovecot
from tests.peers.raw import SilentServer
from tests.peers.smtp_server import start_smtp

#: Per run; 15 let one run in six land at 1.14x against the 1.1x goal, the code unchanged.
ROUNDS = 30


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


def _seconds(func: Callable[[], object]) -> float:
    start = time.perf_counter()
    result = func()
    elapsed = time.perf_counter() - start
    assert getattr(result, "ok", True), result
    return elapsed


def _interleaved(funcs: Sequence[Callable[[], object]], rounds: int) -> list[list[float]]:
    """Seconds of each of ``funcs`` per round, each called in turn every round (not one block
    each).

    Each round takes the next of all the possible orders, so no call always comes right after
    the same other one: what a call leaves the servers doing (Dovecot ending its imap process
    after LOGOUT) then slows all of them alike, not always the one that follows it.
    """
    orders = list(itertools.permutations(range(len(funcs))))
    times: list[list[float]] = [[] for _ in funcs]
    for round_ in range(rounds):
        for index in orders[round_ % len(orders)]:
            times[index].append(_seconds(funcs[index]))
    return times


def rows(*, smoke: bool = False) -> list[Row]:
    rounds = 1 if smoke else ROUNDS
    out: list[Row] = []
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
            )  # fmt: skip
        )
        try:
            options = TransportOptions(
                timeout=5.0, allow_private_hosts=True, smtp_ports=None, imap_ports=None,
                ca_file=certs.ca_file,
            )  # fmt: skip
            figure = "Test connection (SMTP STARTTLS + IMAPS, in parallel)"
            if imap is None:
                out.append(skipped(figure, f"Dovecot unavailable ({reason})", at_most=1.1))
            else:
                settings = ServerSettings(
                    email=smtp.user, username=smtp.user, password=smtp.password,
                    smtp_host="localhost", smtp_port=smtp.port, smtp_security="starttls",
                    imap_host="localhost", imap_port=imap.ssl_port, imap_security="ssl",
                )  # fmt: skip
                both, slower, strict = [], [], []
                for _ in range(3 if not smoke else 1):  # 3 runs of `rounds` rounds each
                    t_smtp, t_imap, t_both = _interleaved(
                        [
                            lambda: check_smtp(settings, options),
                            lambda: check_imap(settings, options),
                            lambda: test_connection(settings, options),
                        ],
                        rounds,
                    )
                    both.append(statistics.median(t_both))
                    # the baseline takes the same statistic as Test connection: the median,
                    # over rounds, of what running both at once would ideally cost (the slower
                    # of the round's two checks); the max of the two medians sits below it
                    # whenever the checks' times overlap, which biased the ratio upward
                    slower.append(statistics.median(map(max, t_smtp, t_imap)))
                    strict.append(max(statistics.median(t_smtp), statistics.median(t_imap)))
                strict_ratio = statistics.median(both) / statistics.median(strict)
                out.append(measured(
                    figure, samples(both, "ms", 1000), samples(slower, "ms", 1000),
                    at_most=1.1, against="slower check of each round",
                    note=f"Test connection: against the slower of the two checks' medians "
                    f"({samples(strict, 'ms', 1000)}), {strict_ratio:.2f}x",
                ))  # fmt: skip
            silent = SilentServer()
            try:
                timeout = 0.5 if smoke else 2.0
                quiet = TransportOptions(
                    timeout=timeout, allow_private_hosts=True, smtp_ports=None, imap_ports=None
                )
                mute = ServerSettings(
                    email="x@example.com", username="x", password="y",
                    smtp_host="127.0.0.1", smtp_port=silent.port, smtp_security="starttls",
                    imap_host="127.0.0.1", imap_port=silent.port, imap_security="starttls",
                )  # fmt: skip
                start = time.perf_counter()
                report = test_connection(mute, quiet)
                elapsed = time.perf_counter() - start
                codes = ",".join(r.code for r in report.results)
                out.append(measured(
                    "Test connection against a silent server", f"{elapsed:.2f} s ({codes})",
                    f"{timeout:.1f} s", elapsed / timeout, at_most=1.1, against="the timeout",
                ))  # fmt: skip
            finally:
                silent.close()
        finally:
            server_process.terminate()
            server_process.join()
            if imap is not None:
                stop_dovecot(imap)
    return out


def main() -> None:
    from benchmarks.table import print_table

    print_table(rows())


if __name__ == "__main__":
    main()
