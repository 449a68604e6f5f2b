"""``python -m example_app`` (``make demo``): the sandbox mail servers plus the example app.

Environment: ``PORT`` (default 5000) for the web app, ``DATABASE_URL`` for another database,
``MAILCONNECT_ENCRYPTION_KEYS`` for real keys. Ctrl-C stops everything.
"""

from __future__ import annotations

import os
import re
import signal
import sys
from types import FrameType
from typing import Any

from flask import url_for
from werkzeug.serving import WSGIRequestHandler

from . import DEFAULT_INSTANCE_PATH, create_app
from .sandbox import Sandbox


def _banner(url: str, sandbox: Sandbox) -> str:
    return f"""
  Flask-MailConnect demo is running: {url}

  Sign in as   alice@demo.test / alice      (or admin@demo.test / admin, an administrator)

  Then open "Email settings" > connect an account, and type the demo mailbox:
    Email        {sandbox.address}
    Password     {sandbox.password}
  The servers fill in from the address (provider "Demo sandbox"):
    SMTP server  {sandbox.smtp_host}  port {sandbox.smtp_port}  security STARTTLS
    IMAP server  {sandbox.imap_host}  port {sandbox.imap_port}  security SSL/TLS

  Or click "Connect with Demo provider" and Allow on the demo consent page: the whole
  OAuth flow, offline (local OAuth server on port {sandbox.oauth_port}; SMTP and IMAP accept
  its tokens with XOAUTH2).

  Mail sent through it lands in the demo INBOX. Press Ctrl-C to stop.
"""


#: An OAuth callback path (``/email/oauth/<provider>/callback``) and its query string, which
#: carries the one-time authorization code and the state.
_CALLBACK_QUERY = re.compile(r"(/oauth/[^/?#\s]+/callback)\?\S*")


def redact_callback_query(text: str) -> str:
    """``text`` with the query string of any OAuth callback path left out."""
    return _CALLBACK_QUERY.sub(r"\1", text)


class DemoRequestHandler(WSGIRequestHandler):
    """Werkzeug's request handler, whose access log leaves out the query string of OAuth
    callbacks: the authorization code must not sit in a terminal or a log file.

    The access line is built from the redacted path (before werkzeug decodes it), and every
    other line it logs (errors quoting a bad request line) is redacted as well.
    """

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        saved = {
            name: getattr(self, name) for name in ("path", "requestline") if hasattr(self, name)
        }
        for name, value in saved.items():
            setattr(self, name, redact_callback_query(value))
        try:
            super().log_request(code, size)
        finally:
            for name, value in saved.items():
                setattr(self, name, value)

    def log(self, type: str, message: str, *args: Any) -> None:
        super().log(
            type,
            redact_callback_query(message),
            *(redact_callback_query(a) if isinstance(a, str) else a for a in args),
        )


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> int:
    port = int(os.environ.get("PORT", "5000"))
    sandbox = Sandbox(DEFAULT_INSTANCE_PATH)
    sandbox.start()
    # Ctrl-C and `kill` both end in KeyboardInterrupt, so the finally below always runs (a
    # shell that starts us in the background would otherwise leave SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        base = f"http://127.0.0.1:{port}"
        # OAuth redirect URIs come from this configured address, never from the Host header.
        app = create_app({**sandbox.flask_config(), "MAILCONNECT_EXTERNAL_URL": base})
        with app.test_request_context():
            sandbox.allow_redirect(base + url_for("mailconnect.oauth_callback", provider="demo"))
        print(_banner(f"{base}/", sandbox), flush=True)
        app.run(
            host="127.0.0.1",
            port=port,
            debug=False,
            use_reloader=False,
            request_handler=DemoRequestHandler,
        )
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
        print("Demo stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
