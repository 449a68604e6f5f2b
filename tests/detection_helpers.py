"""Helpers the detection tests share: tests/test_detect_deadline.py, tests/test_detect_views.py
and tests/test_detect_browser.py.

The bound on every wait (``BOUND``), waiting for a condition (``eventually``), a call on a
daemon thread (``in_thread``), detection inside a request (``detect_in``) and an admin-entered
OAuth provider, Acme Mail (``ACME``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from flask import Flask

from flask_mailconnect import Detection
from flask_mailconnect.detection import detect

#: Bound on every wait below: far beyond any deadline used here.
BOUND = 60.0

ACME = {
    "acme": {
        "name": "Acme Mail", "auth": "oauth2", "client_id": "acme-client",
        "client_secret": "acme-secret", "authorize_url": "https://id.acme-mail.net/authorize",
        "token_url": "https://id.acme-mail.net/token", "scopes": ["openid", "email"],
        "smtp": {"host": "smtp.acme-mail.net", "port": 465, "security": "ssl"},
        "imap": {"host": "imap.acme-mail.net", "port": 993, "security": "ssl"},
        "redirect_uri": "https://crm.example.test/email/oauth/acme/callback",
    }
}  # fmt: skip


def eventually(check: Callable[[], bool], within: float = BOUND) -> bool:
    end = time.monotonic() + within
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.02)
    return check()


def in_thread(call: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    out: list[object] = []
    thread = threading.Thread(target=lambda: out.append(call()), daemon=True)
    thread.start()
    return thread, out


def detect_in(app: Flask, email: str, **kw: object) -> Detection:
    with app.test_request_context():
        return detect(email, **kw)  # type: ignore[arg-type]
