"""The demo's request log (``python -m example_app``) never shows an OAuth callback's query
string: it carries the one-time authorization code. A real werkzeug server with the demo's
request handler serves the requests; its log lines are read from the ``werkzeug`` logger."""

from __future__ import annotations

import logging
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

import example_app.__main__ as demo
from example_app import create_app
from example_app.models import db

CODE = "4/0AeaYSHDemoAuthorizationCode"
STATE = "xyzStateValue123"
KEY = "5Lq1m0wQyqjAR1-3uQ2mH1q3ZBxB5i1aX5p1Z9xW0aM="


def _wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("302 Found", [("Location", "/email/"), ("Content-Length", "0")])
    return [b""]


@pytest.fixture
def server() -> Iterator[BaseWSGIServer]:
    server = make_server("127.0.0.1", 0, _wsgi, request_handler=demo.DemoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """werkzeug's log lines, without the colours it adds on a terminal."""
    return [
        re.sub(r"\x1b\[[0-9;]*m", "", r.getMessage())
        for r in caplog.records
        if r.name == "werkzeug"
    ]


def test_callback_access_line_has_no_query(
    server: BaseWSGIServer, caplog: pytest.LogCaptureFixture
) -> None:
    base = f"http://127.0.0.1:{server.server_port}"
    with caplog.at_level(logging.INFO, logger="werkzeug"):
        for provider in ("demo", "microsoft"):
            answer = requests.get(
                f"{base}/email/oauth/{provider}/callback",
                params={"code": CODE, "state": STATE},
                allow_redirects=False,
                timeout=5,
            )
            assert answer.status_code == 302
        # Other paths keep their query string (it is useful when reading the log).
        requests.get(f"{base}/email/connect?email=bea%40acme.org", allow_redirects=False, timeout=5)
    lines = _lines(caplog)
    assert len(lines) == 3, lines
    text = "\n".join(lines)
    assert CODE.split("/")[-1] not in text and STATE not in text and "state=" not in text
    assert '"GET /email/oauth/demo/callback HTTP/1.1" 302' in text
    assert '"GET /email/oauth/microsoft/callback HTTP/1.1" 302' in text
    assert "/email/connect?email=bea@acme.org" in text


def test_bad_request_line_quoting_a_callback_is_redacted(
    server: BaseWSGIServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A malformed request line is quoted in werkzeug's error line: redacted there too."""
    with caplog.at_level(logging.INFO, logger="werkzeug"):
        with socket.create_connection(("127.0.0.1", server.server_port), timeout=5) as sock:
            # Four words: Python's parser answers "Bad request syntax (<the whole line>)".
            line = f"GET /email/oauth/demo/callback?code={CODE} junk HTTP/1.1\r\n\r\n"
            sock.sendall(line.encode())
            assert b"400" in sock.recv(1024)
        # The server logs after answering: wait until the line is there.
        for _ in range(100):
            if any("400" in line for line in _lines(caplog)):
                break
            threading.Event().wait(0.02)
    text = "\n".join(_lines(caplog))
    assert "Bad request syntax" in text and "/email/oauth/demo/callback" in text
    assert CODE.split("/")[-1] not in text


@pytest.mark.parametrize(
    ("logged", "expected"),
    [
        ("GET /email/oauth/demo/callback?code=abc&state=d HTTP/1.1",
         "GET /email/oauth/demo/callback HTTP/1.1"),
        ("GET /x/oauth/google/callback?error=access_denied", "GET /x/oauth/google/callback"),
        ("GET /email/oauth/demo/start?next=/email/ HTTP/1.1",
         "GET /email/oauth/demo/start?next=/email/ HTTP/1.1"),
        ("GET /email/accounts/1?tab=callback HTTP/1.1",
         "GET /email/accounts/1?tab=callback HTTP/1.1"),
    ],
)  # fmt: skip
def test_redact_callback_query(logged: str, expected: str) -> None:
    assert demo.redact_callback_query(logged) == expected


def test_the_demo_serves_with_this_handler(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``main()`` hands the handler to ``app.run`` (sandbox and server replaced by stand-ins)."""

    class FakeSandbox:
        address = "demo@sandbox.test"
        password = "demo"
        smtp_host = imap_host = "127.0.0.1"
        smtp_port, imap_port, oauth_port = 2525, 1993, 8000
        redirects: list[str] = []

        def __init__(self, path: Any) -> None:
            pass

        def start(self) -> None:
            pass

        def stop(self) -> None:
            pass

        def flask_config(self) -> dict[str, Any]:
            return {}

        def allow_redirect(self, uri: str) -> None:
            self.redirects.append(uri)

    apps: list[Flask] = []

    def make_app(config: dict[str, Any]) -> Flask:
        apps.append(
            create_app(
                {
                    "INSTANCE_PATH": str(tmp_path),
                    "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'demo.db'}",
                    "SECRET_KEY": "test",
                    "MAILCONNECT_ENCRYPTION_KEYS": [KEY],
                    **config,
                }
            )
        )
        return apps[-1]

    runs: list[dict[str, Any]] = []
    monkeypatch.setattr(demo, "Sandbox", FakeSandbox)
    monkeypatch.setattr(demo, "create_app", make_app)
    monkeypatch.setattr(Flask, "run", lambda self, **kw: runs.append(kw))
    monkeypatch.setattr(demo.signal, "signal", lambda *args: None)
    monkeypatch.setenv("PORT", "5099")
    try:
        assert demo.main() == 0
    finally:
        for app in apps:
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
    [run] = runs
    assert run["request_handler"] is demo.DemoRequestHandler
    assert run["port"] == 5099
