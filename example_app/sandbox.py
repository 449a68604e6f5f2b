"""The demo sandbox: a local SMTP server and IMAP server holding one demo mailbox.

``make demo`` starts it next to the example app so that "Test connection" and "Connect" work
without a real mail provider. Both servers listen on 127.0.0.1 with certificates for
``localhost`` issued by a demo certificate authority generated into the instance folder; the app
trusts that CA through ``MAILCONNECT_CA_FILE``, so TLS is verified exactly as in production.

- SMTP: aiosmtpd with STARTTLS and AUTH PLAIN/LOGIN (only after STARTTLS); every accepted
  message is delivered into the demo mailbox's INBOX.
- IMAP: :mod:`example_app.imap_server` with implicit TLS (IMAPS).
- OAuth: the local provider of :mod:`example_app.oauth_provider` ("Demo provider" in the app),
  whose consent page signs in as the demo mailbox (or the address the app hints). Both mail
  servers accept its access tokens with XOAUTH2, checked by RFC 7662 introspection at that
  provider, for every demo address: the sandbox mailbox and one per demo person
  (``alice@demo.test``...), so whoever signs in there, their account works at once.

Both run on one asyncio loop in a background thread: ``start()`` returns once they listen,
``stop()`` closes every connection and the loop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import secrets
import socket
import ssl
import threading
from collections.abc import Iterable
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

import requests
from aiosmtpd.smtp import SMTP
from cryptography import x509

from .certs import new_ca, new_server_cert, write_cert, write_key
from .imap_server import IMAPServer, Mailbox
from .models import DEMO_USERS
from .oauth_provider import GOOGLE_MAIL_SCOPE, OAuthProviderServer
from .sandbox_smtp import DeliverToMailbox, MailboxAuthenticator, TrackedSMTP

DEFAULT_SMTP_PORT = 2587
DEFAULT_IMAP_PORT = 2993
DEFAULT_OAUTH_PORT = 2080
#: The app's OAuth client at the demo provider.
OAUTH_CLIENT_ID = "mailconnect-demo"


# -- demo certificate authority -------------------------------------------------------------


def _still_valid(cert_path: Path, key_path: Path) -> bool:
    if not (cert_path.exists() and key_path.exists()):
        return False
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return cert.not_valid_after_utc > dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=7)


def ensure_demo_certificates(directory: str | os.PathLike[str]) -> tuple[Path, Path, Path]:
    """A demo CA and a ``localhost`` server certificate it signed, created once and reused.

    Returns ``(ca_file, cert_file, key_file)``. The CA key is discarded after signing: nothing
    else can ever be issued under this CA, so trusting it trusts only the sandbox.
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    ca_file = folder / "demo-ca.pem"
    cert_file = folder / "localhost.pem"
    key_file = folder / "localhost-key.pem"
    if ca_file.exists() and _still_valid(cert_file, key_file):
        return ca_file, cert_file, key_file

    ca = new_ca("Flask-MailConnect demo CA", days=825)
    key, cert = new_server_cert(ca, days=397)
    write_cert(ca[1], ca_file)
    write_cert(cert, cert_file)
    write_key(key, key_file)
    return ca_file, cert_file, key_file


# -- seed mail -------------------------------------------------------------------------------


def _message(
    sender: str, to: str, subject: str, body: str, when: dt.datetime, **headers: str
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = make_msgid(domain="sandbox.example")
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg.as_bytes()


def seed_messages(address: str) -> list[tuple[str, bytes, set[str]]]:
    """A few realistic messages: ``(folder, raw bytes, flags)``."""
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    return [
        ("INBOX", _message(
            "Dana Whitfield <dana@northwind.example>", address,
            "Quote request: 40 standing desks",
            "Hi,\n\nCould you send us a quote for 40 standing desks (oak, 160 cm) delivered to "
            "our Leeds office before the end of next month?\n\nThanks,\nDana\n",
            now - dt.timedelta(days=2, hours=3),
        ), {"\\Seen"}),
        ("INBOX", _message(
            "Marco Rossi <marco.rossi@contoso.example>", address,
            "Re: Onboarding call on Thursday",
            "Thursday at 10:00 works for us. I'll bring our IT lead so we can go through the "
            "email set-up together.\n\nMarco\n",
            now - dt.timedelta(days=1, hours=5),
            In_Reply_To="<onboarding-1@sandbox.example>",
        ), {"\\Seen", "\\Answered"}),
        ("INBOX", _message(
            "Billing <billing@fabrikam.example>", address,
            "Invoice INV-2024-0193 is ready",
            "Your invoice INV-2024-0193 for 1,240.00 EUR is ready. Payment is due in 30 days."
            "\n\nFabrikam Billing\n",
            now - dt.timedelta(hours=6),
        ), set()),
        ("INBOX", _message(
            "Priya Natarajan <priya@adatum.example>", address,
            "Café menu for the launch event ☕",
            "Hello! Attached below is the menu for the launch: espresso, crème brûlée and "
            "a vegan option. Let me know by Friday.\n\nPriya\n",
            now - dt.timedelta(minutes=40),
        ), set()),
        ("Sent", _message(
            address, "Marco Rossi <marco.rossi@contoso.example>",
            "Onboarding call on Thursday",
            "Hi Marco, shall we have the onboarding call on Thursday?\n",
            now - dt.timedelta(days=2),
        ), {"\\Seen"}),
    ]  # fmt: skip


# -- the sandbox -----------------------------------------------------------------------------


def _free_port(host: str, preferred: int) -> int:
    """``preferred`` when nothing listens there (0 means any), else a free port."""
    if preferred:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, preferred))
            except OSError:
                pass
            else:
                return preferred
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class Sandbox:
    """Local SMTP (STARTTLS) and IMAP (SSL/TLS) servers for one demo mailbox.

    Type these into the connect form: :attr:`address`, :attr:`password`, SMTP
    :attr:`smtp_host`:\\ :attr:`smtp_port` with STARTTLS and IMAP :attr:`imap_host`:\\
    :attr:`imap_port` with SSL/TLS. :meth:`flask_config` gives the settings the app needs to
    reach and trust them.
    """

    address = "demo@sandbox.example"
    password = "demo-password"
    smtp_host = "localhost"
    smtp_security = "starttls"
    imap_host = "localhost"
    imap_security = "ssl"

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        smtp_port: int = DEFAULT_SMTP_PORT,
        imap_port: int = DEFAULT_IMAP_PORT,
        seed: bool = True,
        listen: str = "127.0.0.1",
        oauth_port: int = DEFAULT_OAUTH_PORT,
        people: Iterable[str] = tuple(u[0] for u in DEMO_USERS),
    ) -> None:
        self.directory = Path(directory)
        self.listen = listen
        self.smtp_port = smtp_port
        self.imap_port = imap_port
        self.oauth_port = oauth_port
        self.oauth: OAuthProviderServer | None = None
        self.oauth_client_secret = secrets.token_urlsafe(24)
        self.mailbox = Mailbox(self.address, self.password)
        #: Every mailbox by lower-case address: the demo one and one per demo person (``people``),
        #: whose sign-in at the demo provider must work at the mail servers as well.
        self.mailboxes: dict[str, Mailbox] = {self.address: self.mailbox}
        for person in people:
            self.mailboxes.setdefault(person.lower(), Mailbox(person, self.password))
        if seed:
            for address, box in self.mailboxes.items():
                for folder, raw, flags in seed_messages(address):
                    box.deliver(raw, folder, flags)
        self.ca_file = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._imap: IMAPServer | None = None
        self._smtp_server: asyncio.Server | None = None
        self._smtp_sessions: set[SMTP] = set()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Sandbox:
        """Generate certificates if needed, start both servers, return when they listen."""
        if self._thread is not None:
            raise RuntimeError("the sandbox is already running")
        ca_file, cert_file, key_file = ensure_demo_certificates(self.directory / "sandbox-tls")
        self.ca_file = str(ca_file)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_file, key_file)
        self.smtp_port = _free_port(self.listen, self.smtp_port)
        self.imap_port = _free_port(self.listen, self.imap_port)
        self.oauth = OAuthProviderServer(
            host=self.listen,
            port=_free_port(self.listen, self.oauth_port),
            default_user=self.address,
            brand="Demo provider",  # the app's name for it: the consent page says the same
        ).start()
        self.oauth.register_client(OAUTH_CLIENT_ID, self.oauth_client_secret)
        self.oauth_port = self.oauth.port

        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._start_servers(context))
            except BaseException as exc:  # reported to start() below
                failure.append(exc)
                ready.set()
                loop.run_until_complete(self._stop_servers())
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self._stop_servers())
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="mailconnect-sandbox", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = self._loop = None
            self.oauth.stop()
            self.oauth = None
            raise failure[0]
        return self

    def stop(self) -> None:
        """Close both servers and every open connection; safe to call twice."""
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._thread = self._loop = None
        if self.oauth is not None:
            self.oauth.stop()
            self.oauth = None

    def allow_redirect(self, redirect_uri: str) -> None:
        """Register the app's OAuth callback (``.../email/oauth/demo/callback``) at the provider."""
        if self.oauth is None:
            raise RuntimeError("start the sandbox first")
        self.oauth.add_redirect_uri(OAUTH_CLIENT_ID, redirect_uri)

    def _token_check(self, user: str, token: str) -> bool:
        """Is ``token`` an active access token of ``user``? Asks the provider (RFC 7662)."""
        oauth = self.oauth
        if oauth is None:
            return False
        try:
            answer = requests.post(
                oauth.introspection_url,
                data={"token": token, "token_type_hint": "access_token"},
                auth=(oauth.introspection_client_id, oauth.introspection_client_secret),
                timeout=5,
                allow_redirects=False,
            )
            data = answer.json() if answer.status_code == 200 else {}
        except (requests.RequestException, ValueError):
            return False
        owner = str(data.get("username") or data.get("email") or "")
        return data.get("active") is True and owner.lower() == user.lower()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _start_servers(self, context: ssl.SSLContext) -> None:
        loop = asyncio.get_running_loop()
        self._imap = IMAPServer(
            self.mailboxes,
            self.listen,
            self.imap_port,
            ssl_context=context,
            token_check=self._token_check,
        )
        await self._imap.start()
        handler = DeliverToMailbox(self.mailbox, self._token_check, self.mailboxes)
        authenticator = MailboxAuthenticator(self.mailboxes)

        def smtp_session() -> SMTP:
            session = TrackedSMTP(
                handler,
                hostname="localhost",
                tls_context=context,
                require_starttls=True,
                auth_required=True,
                authenticator=authenticator,
                auth_exclude_mechanism=["CRAM-MD5"],
                loop=loop,
            )
            session.sandbox_sessions = self._smtp_sessions
            self._smtp_sessions.add(session)
            return session

        self._smtp_server = await loop.create_server(smtp_session, self.listen, self.smtp_port)

    async def _stop_servers(self) -> None:
        if self._smtp_server is not None:
            self._smtp_server.close()
            await self._smtp_server.wait_closed()
            self._smtp_server = None
        for session in list(self._smtp_sessions):
            if session.transport is not None:
                session.transport.close()
            task = getattr(session, "_handler_coroutine", None)
            if task is not None:
                task.cancel()
        if self._imap is not None:
            await self._imap.stop()
            self._imap = None
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        # Let closed transports finish their callbacks before the loop goes away.
        await asyncio.sleep(0)
        self._smtp_sessions.clear()

    # -- what the app needs ------------------------------------------------------------------

    def flask_config(
        self,
        smtp_ports: Iterable[int] = (25, 465, 587, 2525),
        imap_ports: Iterable[int] = (143, 993),
    ) -> dict[str, Any]:
        """App settings to reach and trust the sandbox (private hosts, its ports, its CA)."""
        return {
            "MAILCONNECT_ALLOW_PRIVATE_HOSTS": True,
            "MAILCONNECT_CA_FILE": self.ca_file,
            "MAILCONNECT_SMTP_PORTS": sorted({*smtp_ports, self.smtp_port}),
            "MAILCONNECT_IMAP_PORTS": sorted({*imap_ports, self.imap_port}),
            "EXAMPLE_SANDBOX": self.describe(),
        }

    def describe(self) -> dict[str, Any]:
        """What a person types into the connect form (no secrets beyond the demo password),
        and under ``"oauth"`` the demo provider's endpoints and the app's client there."""
        oauth = None
        if self.oauth is not None:
            urls = self.oauth.google
            oauth = {
                "client_id": OAUTH_CLIENT_ID,
                "client_secret": self.oauth_client_secret,
                "server_metadata_url": urls.metadata_url,
                "authorize_url": urls.authorize_url,
                "token_url": urls.token_url,
                "revoke_url": urls.revoke_url,
                "userinfo_url": urls.userinfo_url,
                "scopes": [GOOGLE_MAIL_SCOPE],
            }
        return {
            "oauth": oauth,
            "address": self.address,
            "password": self.password,
            "smtp_host": self.smtp_host,
            "smtp_port": self.smtp_port,
            "smtp_security": self.smtp_security,
            "imap_host": self.imap_host,
            "imap_port": self.imap_port,
            "imap_security": self.imap_security,
        }


__all__ = [
    "DEFAULT_IMAP_PORT",
    "DEFAULT_OAUTH_PORT",
    "DEFAULT_SMTP_PORT",
    "OAUTH_CLIENT_ID",
    "Sandbox",
    "ensure_demo_certificates",
]
