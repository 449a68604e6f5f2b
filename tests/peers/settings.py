"""What a test types into the connect form for the loopback peers (tests/conftest_peers.py).

The app config and transport options under which those peers are reachable (private hosts,
any port, the test CA) are the ``peer_config`` and ``peer_options`` fixtures.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from flask_mailconnect import ServerSettings


def peer_settings(
    smtp: Any = None,
    imap: Any = None,
    *,
    imap_port: int | None = None,
    imap_security: str = "ssl",
    host: str = "localhost",
    **overrides: Any,
) -> ServerSettings:
    """:class:`ServerSettings` for the peers ``smtp`` (sends) and ``imap`` (receives).

    - ``smtp``: an SMTP peer (``smtp_starttls``, ``smtp_ssl``, ``smtp_plain``...): its
      ``.port`` and ``.security``. Without one, the SMTP fields are a placeholder
      (port 465, SSL/TLS) that IMAP-only checks never use.
    - ``imap``: Dovecot, at its IMAPS port (``.ssl_port``) unless ``imap_port`` /
      ``imap_security`` say otherwise; ``None`` makes a send-only account.
    - The login (email, username, password) is the first peer's ``.user`` / ``.password``;
      all peers share one (``tests.peers.MAILBOX_USER``). Listeners that are not mail servers
      (``silent_server``, ``untrusted_tls_server``: only ``.host`` and ``.port``) get
      ``nobody@example.test`` / ``pw`` and SSL/TLS.
    - Both servers are addressed as ``host``: ``"localhost"``, which the test CA's
      certificate names (as does the peers' ``.host``, ``127.0.0.1``).
    - ``overrides`` replace any field: ``password="wrong"``, ``email=...``,
      ``smtp_security="ssl"``, ``oauth_token=...``.
    """
    login = smtp if smtp is not None else imap
    user = getattr(login, "user", "nobody@example.test")
    settings = ServerSettings(
        email=user,
        username=user,
        password=getattr(login, "password", "pw"),
        smtp_host=host,
        smtp_port=smtp.port if smtp is not None else 465,
        smtp_security=getattr(smtp, "security", "ssl"),
        imap_host=host if imap is not None else None,
        imap_port=imap_port or getattr(imap, "ssl_port", None) or getattr(imap, "port", None),
        imap_security=imap_security if imap is not None else None,  # type: ignore[arg-type]
    )
    return replace(settings, **overrides) if overrides else settings
