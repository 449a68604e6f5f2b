"""Detection's deadline bounds the whole of every request, its thread and its socket: a server
that drips its answer a byte at a time (in the body or in the headers) is hung up on at the
deadline. Detections share one bounded pool of daemon threads per process; one that finds every
place taken answers "busy" at once (and the page says so); ``flask mailconnect detect`` against
such a server exits.

Deadlines are proven by outcomes, never by timing: the call returned, the dripping server saw
the connection closed, no pool thread is still busy. Waits are bounded only so that a broken
build fails instead of hanging."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flask_mailconnect import Detection
from flask_mailconnect.detection.workers import MAX_DETECTIONS, workers
from flask_mailconnect.transport.http import HTTPGuardError, guarded_session
from flask_mailconnect.transport.settings import TransportOptions
from tests.conftest import login
from tests.detection_helpers import BOUND, detect_in, eventually, in_thread
from tests.peers.certs import TestCerts, make_certs
from tests.peers.detect_env import DetectPeers, detect_peers
from tests.peers.web_server import Route, web_server

ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TestCerts:
    return make_certs(tmp_path_factory.mktemp("detect-deadline-certs"))


@pytest.fixture
def peers(certs: TestCerts) -> Iterator[DetectPeers]:
    with detect_peers(certs, {}) as found:
        yield found


def attempt(found: Detection, source: str) -> tuple[str, str]:
    tried = next(t for t in found.tried if t.source == source)
    return tried.outcome, tried.detail


# -- the guarded HTTP client's deadline -----------------------------------------------------------


@pytest.mark.parametrize("in_headers", [False, True], ids=["body", "headers"])
def test_a_dripping_answer_ends_at_the_deadline_and_is_hung_up_on(
    certs: TestCerts, in_headers: bool
) -> None:
    with web_server(certs.server_context()) as web:
        web.routes["/slow"] = Route(drip=0.05, drip_headers=in_headers)
        # Each read's own timeout (5 s) is never reached: a byte comes every 0.05 s.
        options = TransportOptions(allow_private_hosts=True, ca_file=certs.ca_file, timeout=5.0)

        def call() -> str:
            try:
                with guarded_session(options, deadline=time.monotonic() + 1.0) as session:
                    session.get(f"{web.base}/slow")
            except HTTPGuardError as exc:
                return exc.code
            return "answered"

        thread, out = in_thread(call)
        thread.join(BOUND)
        assert not thread.is_alive()  # the call returned
        assert out == ["timeout"]
        assert "/slow" in web.dripping
        assert eventually(lambda: "/slow" in web.hung_up)  # and its connection was closed


def test_no_request_starts_past_the_deadline(certs: TestCerts) -> None:
    with web_server(certs.server_context()) as web:
        web.routes["/x"] = Route(body=b"ok")
        options = TransportOptions(allow_private_hosts=True, ca_file=certs.ca_file)
        late_session = guarded_session(options, deadline=time.monotonic() - 1)
        with late_session as session, pytest.raises(HTTPGuardError) as late:
            session.get(f"{web.base}/x")
        assert late.value.code == "timeout"
        assert web.seen == []
        with guarded_session(options, deadline=time.monotonic() + BOUND) as session:
            assert session.get(f"{web.base}/x").content == b"ok"  # in time: as usual


# -- detection -----------------------------------------------------------------------------------


def test_a_dripping_source_keeps_no_thread_or_socket_past_the_deadline(
    peers: DetectPeers,
) -> None:
    peers.ispdb("drip.net", Route(drip=0.05))
    peers.autoconfig("drip.net", Route(drip=0.05, drip_headers=True))
    app = peers.app(MAILCONNECT_DETECT_TIMEOUT=1.0, MAILCONNECT_DETECT_CACHE=None)
    thread, out = in_thread(lambda: detect_in(app, "ana@drip.net", wait_all=True))
    thread.join(BOUND)
    assert not thread.is_alive()
    found = out[0]
    assert isinstance(found, Detection) and not found.found
    assert attempt(found, "ispdb")[0] == "timeout"
    assert attempt(found, "autoconfig")[0] == "timeout"
    dripped = {"/ispdb/drip.net", "/autoconfig/drip.net/mail/config-v1.1.xml"}
    assert eventually(lambda: dripped <= {p.split("?")[0] for p in peers.web.hung_up})
    assert eventually(lambda: workers().running == 0)  # every source thread is free again


def test_detections_beyond_the_cap_answer_busy_at_once(peers: DetectPeers) -> None:
    release = threading.Event()
    for n in range(MAX_DETECTIONS):
        peers.ispdb(f"held{n}.net", Route(drip=0.05, release=release))
    app = peers.app(MAILCONNECT_DETECT_TIMEOUT=BOUND, MAILCONNECT_DETECT_CACHE=None)
    running = [
        in_thread(lambda n=n: detect_in(app, f"ana@held{n}.net")) for n in range(MAX_DETECTIONS)
    ]  # type: ignore[misc]
    try:
        # Every place is taken (each detection holds one until its last source ends).
        assert eventually(lambda: len(set(peers.web.dripping)) == MAX_DETECTIONS)
        busy = detect_in(app, "ana@one-more.net")
        assert (busy.found, busy.not_asked) == (False, "busy")
        assert all(t.outcome == "skipped" and "busy" in t.detail for t in busy.tried[1:])
        client = app.test_client()
        login(client, 1)
        data = client.get("/email/detect?email=bo@one-more.net").get_json()
        assert data["not_asked"] == "busy" and not data["found"]
        assert data["message"] == (
            "Servers for one-more.net could not be looked up right now (this site is busy "
            "looking up others): enter them below, or try again in a moment."
        )
        cli = app.test_cli_runner().invoke(args=["mailconnect", "detect", "cy@one-more.net"])
        assert "Result: not looked up: this process runs as many detections" in cli.output
        assert not any("one-more" in p for p in peers.web.seen)
        assert not any("one-more" in name for name, _type in peers.dns.queries)
    finally:
        release.set()  # the dripping answers end: the held detections finish
    for thread, _out in running:
        thread.join(BOUND)
        assert not thread.is_alive()
    assert eventually(lambda: workers().running == 0)
    again = detect_in(app, "ana@one-more.net")  # the places were given back
    assert again.not_asked == "" and attempt(again, "ispdb") == ("nothing", "HTTP 404")
    pool = workers()
    threads = [t for t in threading.enumerate() if t.name.startswith("mailconnect-detect")]
    assert len(threads) == pool.threads <= pool.size  # one bounded pool, nothing besides it
    assert all(t.daemon for t in threads)  # a stuck source never keeps the process alive


CLI = """
import json, sys
from tests import hostapp
app, _ = hostapp.create_app("sqlite://", **json.loads(sys.argv[1]))
result = app.test_cli_runner().invoke(args=["mailconnect", "detect", "ana@drip.net"])
print(result.output)
"""


def test_the_cli_exits_against_a_dripping_server(peers: DetectPeers) -> None:
    peers.ispdb("drip.net", Route(drip=0.05))
    config = peers.config(MAILCONNECT_DETECT_TIMEOUT=1.0)
    done = subprocess.run(
        [sys.executable, "-c", CLI, json.dumps(config, default=str)],
        cwd=ROOT, capture_output=True, text=True, timeout=BOUND, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "  ispdb         timeout" in done.stdout
    assert "Result: nothing found" in done.stdout
    assert eventually(lambda: "/ispdb/drip.net" in peers.web.hung_up)
