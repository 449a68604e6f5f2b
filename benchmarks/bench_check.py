"""Health check of many accounts: bounded concurrency vs one by one.

500 accounts on a SQLite file, checked by ``health.check_many`` (what ``flask mailconnect
check`` runs) against an SMTP server (aiosmtpd, in a child process so it does not share our GIL)
that waits 50 ms before each EHLO reply, like a distant server. The accounts send only, so each
check is one SMTP login. Past about 8-16 workers the per-account commit on one SQLite file
(and the single-threaded server) is the limit, not the network. Printed: wall time one by
one, wall time with 8 and 32 workers, and the ratios; also the peak of simultaneous
connections the server saw (must not exceed N).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

ACCOUNTS = 500
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


def main() -> None:
    from flask_mailconnect import MailAccount
    from flask_mailconnect.health import check_many, summarize
    from tests import hostapp

    queue: Any = multiprocessing.Queue()
    peak: Any = multiprocessing.Value("i", 0)
    server = multiprocessing.Process(target=_serve, args=(queue, peak), daemon=True)
    server.start()
    try:
        port = queue.get(timeout=15)
        with tempfile.TemporaryDirectory() as tmp:
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
                    for n in range(ACCOUNTS)
                )
                hostapp.db.session.commit()
                ids = list(hostapp.db.session.scalars(hostapp.db.select(MailAccount.id)))
            timings: dict[int, float] = {}
            peaks: dict[int, int] = {}
            for workers in (1, 8, 32):
                peak.value = 0
                start = time.perf_counter()
                summary = summarize(check_many(ids, concurrency=workers, app=app))
                timings[workers] = time.perf_counter() - start
                peaks[workers] = peak.value
                assert summary["ok"] == ACCOUNTS, summary
            with app.app_context():
                hostapp.db.engine.dispose()
    finally:
        server.terminate()
        server.join(5)
    one = timings[1]
    print(f"check of {ACCOUNTS} accounts, server latency {LATENCY * 1000:.0f} ms before EHLO:")
    print(f"  one by one            {one:7.2f} s  ({one / ACCOUNTS * 1000:.0f} ms per account)")
    for workers in (8, 32):
        took = timings[workers]
        print(
            f"  concurrency {workers:<3}       {took:7.2f} s  speed-up x{one / took:.1f} "
            f"(ideal x{workers}); peak connections {peaks[workers]} (<= {workers})"
        )
        assert peaks[workers] <= workers


if __name__ == "__main__":
    main()
