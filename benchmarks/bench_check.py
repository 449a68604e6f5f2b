"""Health check of many accounts: CPU per account against a plain smtplib login, and bounded
concurrency against one by one.

1. CPU: ``health.check_many`` (what ``flask mailconnect check`` runs) over N send-only accounts
   on a SQLite file, against the lean SMTP sink (benchmarks/smtp_sink.py, its own process, no
   TLS: the handshake would hide the difference), one by one; CPU time of this process per
   account, against smtplib's connect + EHLO + AUTH + QUIT to the same sink. Ours also reads
   the account with its sealed password (one query per batch of 20), decrypts the password,
   and records the outcome and an audit row (one UPDATE and one INSERT executed with the
   batch's rows, one commit per batch).
2. Concurrency: 200 accounts against aiosmtpd (in a child process) that waits 50 ms before each
   EHLO reply, like a distant server: wall time one by one against 8 workers (the speed-up), and
   the peak of simultaneous connections the server saw (never more than the workers).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import smtplib
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

from benchmarks.table import Row, measured, samples

ACCOUNTS = 200
CPU_ACCOUNTS = 300
ROUNDS = 3
LATENCY = 0.05
USER, PASSWORD = "bench@example.test", "bench-password"


def _serve(queue: Any, peak: Any) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

    warnings.simplefilter("ignore")
    live = [0]
    lock = threading.Lock()

    class Handler:
        async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802
            await asyncio.sleep(LATENCY)
            session.host_name = hostname
            return responses

    from tests.peers.smtp_server import _QuietSession

    class Counting(SMTP):
        def _create_session(self) -> Any:
            return _QuietSession(self.loop)

        def connection_made(self, transport: Any) -> None:
            with lock:
                live[0] += 1
                peak.value = max(peak.value, live[0])
            super().connection_made(transport)

        def connection_lost(self, exc: Exception | None) -> None:
            with lock:
                live[0] -= 1
            super().connection_lost(exc)

    def authenticator(server, session, envelope, mechanism, data):  # type: ignore[no-untyped-def]
        ok = isinstance(data, LoginPassword) and data.password.decode() == PASSWORD
        return AuthResult(success=ok, handled=False)

    class Ctl(Controller):
        def factory(self) -> SMTP:
            return Counting(self.handler, **self.SMTP_kwargs)

    from tests.peers import free_port

    port = free_port()
    controller = Ctl(
        Handler(), hostname="127.0.0.1", port=port, authenticator=authenticator,
        auth_require_tls=False, auth_exclude_mechanism=[], ready_timeout=5.0,
    )  # fmt: skip
    controller.start()
    peak.value = 0  # the readiness probe
    queue.put(port)
    threading.Event().wait()


def _app(tmp: str, port: int, accounts: int) -> tuple[Any, list[int]]:
    from flask_mailconnect import MailAccount
    from tests import hostapp

    url = f"sqlite:///{Path(tmp) / 'bench.db'}"
    app, _ = hostapp.create_app(
        url,
        MAILCONNECT_ALLOW_PRIVATE_HOSTS=True,
        MAILCONNECT_ALLOW_PLAINTEXT_AUTH=True,
        MAILCONNECT_SMTP_PORTS=None,
        SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"timeout": 30}},
    )
    with app.app_context():
        hostapp.db.session.add_all(
            MailAccount(
                owner_kind="user",
                owner_id=str(n),
                email=USER,
                username=USER,
                password=PASSWORD,
                smtp_host="127.0.0.1",
                smtp_port=port,
                smtp_security="none",
            )  # fmt: skip
            for n in range(accounts)
        )
        hostapp.db.session.commit()
        ids = list(hostapp.db.session.scalars(hostapp.db.select(MailAccount.id)))
    return app, ids


def _dispose(app: Any) -> None:
    from tests import hostapp

    with app.app_context():
        hostapp.db.engine.dispose()


def smtplib_logins(port: int, n: int) -> None:
    for _ in range(n):
        client = smtplib.SMTP("127.0.0.1", port, local_hostname="localhost", timeout=10)
        client.login(USER, PASSWORD)
        client.quit()


def cpu_row(*, smoke: bool = False) -> Row:
    from benchmarks.smtp_sink import start_sink
    from flask_mailconnect.health import check_many, summarize

    n = 10 if smoke else CPU_ACCOUNTS
    rounds = 1 if smoke else ROUNDS
    sink = start_sink()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            app, ids = _app(tmp, sink.port, n)
            summarize(check_many(ids[:5], concurrency=1, app=app))  # warm: imports, caches
            ours, floor = [], []
            for _ in range(rounds):
                start = time.process_time()
                summary = summarize(check_many(ids, concurrency=1, app=app))
                ours.append((time.process_time() - start) / n)
                if summary["ok"] != n:
                    raise RuntimeError(f"check: {summary}")
                start = time.process_time()
                smtplib_logins(sink.port, n)
                floor.append((time.process_time() - start) / n)
            _dispose(app)
    finally:
        sink.stop()
    return measured(
        "health check CPU per account (SMTP login)", samples(ours, "ms", 1000),
        samples(floor, "ms", 1000), at_most=3.0, against="smtplib login",
    )  # fmt: skip


def concurrency_row(*, smoke: bool = False) -> Row:
    from flask_mailconnect.health import check_many, summarize

    accounts = 16 if smoke else ACCOUNTS
    queue: Any = multiprocessing.Queue()
    peak: Any = multiprocessing.Value("i", 0)
    server = multiprocessing.Process(target=_serve, args=(queue, peak), daemon=True)
    server.start()
    try:
        port = queue.get(timeout=15)
        with tempfile.TemporaryDirectory() as tmp:
            app, ids = _app(tmp, port, accounts)
            timings: dict[int, float] = {}
            peaks: dict[int, int] = {}
            for workers in (1, 8):
                peak.value = 0
                start = time.perf_counter()
                summary = summarize(check_many(ids, concurrency=workers, app=app))
                timings[workers] = time.perf_counter() - start
                peaks[workers] = peak.value
                if summary["ok"] != accounts:
                    raise RuntimeError(f"check: {summary}")
            _dispose(app)
    finally:
        server.terminate()
        server.join(5)
    if peaks[8] > 8:
        raise RuntimeError(f"{peaks[8]} simultaneous connections with 8 workers")
    return measured(
        f"health check {accounts} accounts, 50 ms server latency, 8 workers",
        f"{timings[8]:.2f} s (peak {peaks[8]} connections)", f"{timings[1]:.2f} s",
        timings[1] / timings[8], at_least=4.0, against="one by one",
        note="ratio here is the speed-up (one by one / 8 workers); ideal 8x",
    )  # fmt: skip


def rows(*, smoke: bool = False) -> list[Row]:
    return [cpu_row(smoke=smoke), concurrency_row(smoke=smoke)]


def main() -> None:
    from benchmarks.table import print_table

    print_table(rows())


if __name__ == "__main__":
    main()
