"""The HTTP guard (transport/http.py): every OAuth and Graph request goes through it.

Refusals are proven before any socket connects (``socket.socket.connect`` records and refuses
every call). What the guard lets through is proven against real local HTTPS servers with
certificates from a test CA: the checked address is the one connected, TLS still verifies the
URL's name, redirects are followed only as the rules say, and big answers are refused.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from cryptography import x509
from flask import Flask, current_app
from flask.testing import FlaskClient

from example_app.certs import LOCAL_NAMES, new_ca, new_server_cert, write_cert, write_key
from flask_mailconnect import MailAccount
from flask_mailconnect.codes import (
    BLOCKED_ADDRESS,
    INSECURE_URL,
    PORT_NOT_ALLOWED,
    REDIRECT_REFUSED,
    RESPONSE_TOO_LARGE,
)
from flask_mailconnect.exceptions import ConnectionFailed, GraphOutcomeUnknown, TokenError
from flask_mailconnect.models import MailProvider, utcnow
from flask_mailconnect.oauth.client import client_for
from flask_mailconnect.oauth.refresh import fresh_access_token
from flask_mailconnect.oauth.revoke import revoke_tokens
from flask_mailconnect.providers import current_catalog
from flask_mailconnect.transport.graph import send_via_graph
from flask_mailconnect.transport.http import (
    MAX_REDIRECTS,
    GuardedOAuth2Session,
    HTTPGuardError,
    check_redirect,
    check_url,
    guarded_session,
)
from flask_mailconnect.transport.settings import TransportOptions
from tests import hostapp
from tests.admin_forms import create, oauth_form
from tests.conftest import login

PUBLIC = "https://id.example.com"  # never contacted: each test reaches only the URL it tests
SECRET = "client-s3cret-never-forwarded"

#: Every non-public form, as a URL host (IPv6 in brackets).
BLOCKED_HOSTS = [
    "127.0.0.1",
    "10.0.0.1",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "[::1]",
    "[fc00::1]",
    "[fe80::1]",
    "[64:ff9b::a9fe:a9fe]",  # NAT64 of 169.254.169.254
    "[::ffff:127.0.0.1]",
    "[::ffff:169.254.169.254]",
    "[2002:7f00:1::]",  # 6to4 of 127.0.0.1
]
ENDPOINTS = ["metadata", "token", "userinfo", "revoke", "jwks"]


# -- no connection may be opened -------------------------------------------------------------


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every attempted connect, refused: a refusal test asserts this stays empty."""
    seen: list[Any] = []

    def refuse(self: socket.socket, address: Any) -> None:
        seen.append(address)
        raise OSError("the test allows no connection")

    def refuse_ex(self: socket.socket, address: Any) -> int:
        seen.append(address)
        return 111

    def create_connection(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        seen.append(address)
        raise OSError("the test allows no connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse_ex)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    return seen


def fake_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> list[str]:
    """``socket.getaddrinfo`` answering ``answers`` for those names; returns the names asked."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in answers:
            asked.append(host)
            result = []
            for ip in answers[host]:
                family = socket.AF_INET6 if ":" in ip else socket.AF_INET
                sockaddr = (ip, int(port), 0, 0) if ":" in ip else (ip, int(port))
                result.append((family, socket.SOCK_STREAM, 6, "", sockaddr))
            return result
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


# -- every endpoint, every non-public form, refused before connecting --------------------------


def _providers(endpoint: str, url: str) -> dict[str, Any]:
    """MAILCONNECT_PROVIDERS with one OAuth provider, ``acme``, whose ``endpoint`` is ``url``."""
    entry: dict[str, Any] = {
        "auth": "oauth2", "client_id": "mailconnect-tests", "client_secret": SECRET,
        "smtp": {"host": "smtp.acme.example", "port": 587, "security": "starttls"},
    }  # fmt: skip
    if endpoint == "metadata":  # discovery only: every other endpoint would come from it
        entry["server_metadata_url"] = url
        return {"acme": entry}
    entry.update(
        authorize_url=f"{PUBLIC}/authorize", token_url=f"{PUBLIC}/token",
        userinfo_url=f"{PUBLIC}/userinfo", issuer=PUBLIC,
    )  # fmt: skip
    key = {"token": "token_url", "userinfo": "userinfo_url", "revoke": "revoke_url",
           "jwks": "jwks_uri"}[endpoint]  # fmt: skip
    entry[key] = url
    return {"acme": entry}


def _account() -> MailAccount:
    account = MailAccount(
        owner_kind="user", owner_id="1", provider="acme", auth_method="oauth2",
        email="ann@example.com", username="ann@example.com", smtp_host="smtp.acme.example",
        smtp_port=587, smtp_security="starttls", access_token="old-access",
        refresh_token="old-refresh", token_expires_at=utcnow() - timedelta(minutes=1),
        token_scopes="openid email",
    )  # fmt: skip
    hostapp.db.session.add(account)
    hostapp.db.session.commit()
    return account


def _assert_refused(call: Callable[[], Any], connects: list[Any]) -> HTTPGuardError:
    with pytest.raises(HTTPGuardError) as caught:
        call()
    assert caught.value.code == BLOCKED_ADDRESS, caught.value.detail
    assert isinstance(caught.value, requests.ConnectionError)
    assert connects == []
    return caught.value


@pytest.mark.parametrize("host", BLOCKED_HOSTS)
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_every_oauth_endpoint_refuses_every_non_public_form_before_connecting(
    endpoint: str, host: str, connects: list[Any], caplog: pytest.LogCaptureFixture
) -> None:
    url = f"https://{host}/oauth/{endpoint}"
    app, _ = hostapp.create_app(MAILCONNECT_PROVIDERS=_providers(endpoint, url))
    try:
        with app.app_context():
            provider = current_catalog().oauth()["acme"]
            state = current_app.extensions["mailconnect"]
            client = client_for(provider)
            if endpoint == "metadata":  # the consent flow's discovery, then the refresh's
                _assert_refused(client.load_server_metadata, connects)
                with pytest.raises(TokenError) as caught:
                    fresh_access_token(state, _account())
                assert caught.value.error == BLOCKED_ADDRESS
            elif endpoint == "token":  # code exchange, then refresh
                _assert_refused(lambda: client.fetch_access_token(PUBLIC, code="c"), connects)
                with pytest.raises(TokenError) as caught:
                    fresh_access_token(state, _account())
                assert caught.value.error == BLOCKED_ADDRESS
                assert "private or local network" in str(caught.value)
            elif endpoint == "userinfo":
                token = {"access_token": "a", "token_type": "Bearer"}
                _assert_refused(lambda: client.userinfo(token=token), connects)
            elif endpoint == "jwks":
                _assert_refused(lambda: client.fetch_jwk_set(force=True), connects)
            else:  # revoke: disconnecting still works, the provider is just not told
                account = _account()
                with caplog.at_level(logging.WARNING, "flask_mailconnect.oauth"):
                    assert revoke_tokens(state, account) is False
                assert "failed: GuardedRequestError" in caplog.text  # refused, not unreachable
                hostapp.db.session.commit()
                assert account.token_expires_at is None
            assert connects == []
    finally:
        with app.app_context():
            hostapp.db.session.remove()
            hostapp.db.engine.dispose()


@pytest.mark.parametrize("answer", [["10.0.0.5"], ["169.254.169.254"], ["8.8.8.8", "10.0.0.5"]])
def test_a_name_resolving_to_a_private_address_is_refused_before_connecting(
    answer: list[str], monkeypatch: pytest.MonkeyPatch, connects: list[Any]
) -> None:
    asked = fake_dns(monkeypatch, {"evil.example.net": answer})
    with guarded_session(TransportOptions()) as session:
        error = _assert_refused(
            lambda: session.get("https://evil.example.net/.well-known/openid-configuration"),
            connects,
        )
    assert error.address == answer[-1]  # one private answer refuses the whole name
    assert asked == ["evil.example.net"]


def test_the_consent_flow_shows_a_clear_page_for_a_private_metadata_url(
    connects: list[Any],
) -> None:
    """A user's Connect with a provider pointing at cloud metadata: an error page, no 500, and
    the server never connects there."""
    from tests.oauth_flows import start

    app, _ = hostapp.create_app(
        MAILCONNECT_PROVIDERS=_providers("metadata", "https://169.254.169.254/latest/meta-data/"),
        MAILCONNECT_EXTERNAL_URL="https://crm.example",
    )
    try:
        client = app.test_client()
        login(client, 1)
        response = start(client, "acme")
        assert response.status_code == 502, response.get_data(as_text=True)[:1000]
        assert "could not be reached" in response.get_data(as_text=True)
        assert connects == []
    finally:
        with app.app_context():
            hostapp.db.session.remove()
            hostapp.db.engine.dispose()


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://id.example.com/token", INSECURE_URL),
        ("ftp://id.example.com/token", INSECURE_URL),
        ("https://id.example.com:8443/token", PORT_NOT_ALLOWED),
        ("https://id.example.com:22/token", PORT_NOT_ALLOWED),
        ("https://169.254.169.254:443/latest", BLOCKED_ADDRESS),
    ],
)
def test_scheme_and_port_rules(url: str, code: str, connects: list[Any]) -> None:
    with pytest.raises(HTTPGuardError) as caught:
        check_url(url, allow_private_hosts=False, timeout=1)
    assert caught.value.code == code
    with guarded_session(TransportOptions()) as session, pytest.raises(HTTPGuardError) as sent:
        session.post(url, data={"client_secret": SECRET})
    assert sent.value.code == code
    assert connects == []


def test_graph_refuses_a_private_graph_url_without_sending(connects: list[Any]) -> None:
    with pytest.raises(ConnectionFailed) as caught:
        send_via_graph(
            b"message", access_token="t", graph_url="https://169.254.169.254/v1.0", timeout=1,
            ca_file=None,
        )  # fmt: skip
    assert caught.value.code == BLOCKED_ADDRESS
    assert not isinstance(caught.value, GraphOutcomeUnknown)  # nothing went out: retry-safe
    assert connects == []


# -- per-hop redirect rule (the address part cannot be shown on loopback) ------------------------


def test_check_redirect_rules() -> None:
    here = "https://id.example.com/a/b"
    assert check_redirect("GET", here, "/c", hop=1, allow_private_hosts=False) == (
        "https://id.example.com/c"
    )
    assert check_redirect("HEAD", here, "https://93.184.215.14/x", hop=2, allow_private_hosts=False)
    refused = {
        ("GET", "http://id.example.com/c", 1): REDIRECT_REFUSED,
        ("GET", "https://169.254.169.254/latest", 1): BLOCKED_ADDRESS,
        ("GET", "https://[::ffff:10.0.0.1]/x", 1): BLOCKED_ADDRESS,
        ("GET", "https://id.example.com:8443/c", 1): PORT_NOT_ALLOWED,
        ("GET", "/c", MAX_REDIRECTS + 1): REDIRECT_REFUSED,
        ("POST", "/c", 1): REDIRECT_REFUSED,  # same host: still never re-sent
        ("POST", "https://other.example.com/t", 1): REDIRECT_REFUSED,
    }
    for (method, location, hop), code in refused.items():
        with pytest.raises(HTTPGuardError) as caught:
            check_redirect(method, here, location, hop=hop, allow_private_hosts=False)
        assert caught.value.code == code, (method, location)
    # With private hosts allowed a private hop may be followed, but only over https.
    assert check_redirect("GET", here, "https://10.0.0.1/x", hop=1, allow_private_hosts=True)
    with pytest.raises(HTTPGuardError):
        check_redirect("GET", here, "http://10.0.0.1/x", hop=1, allow_private_hosts=True)


# -- real local servers ------------------------------------------------------------------------

OTHER_NAME = "id.mailconnect.test"


@dataclass(frozen=True)
class GuardCerts:
    ca_file: str
    localhost: tuple[str, str]  #: cert and key for localhost, 127.0.0.1, ::1 and OTHER_NAME
    elsewhere: tuple[str, str]  #: cert and key for "elsewhere.example" only

    def context(self, which: tuple[str, str]) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*which)
        return context


@pytest.fixture(scope="module")
def guard_certs(tmp_path_factory: pytest.TempPathFactory) -> GuardCerts:
    directory: Path = tmp_path_factory.mktemp("guard-certs")
    ca = new_ca("HTTP guard test CA", days=1)
    write_cert(ca[1], directory / "ca.pem")
    files = {}
    for label, names in {
        "localhost": (*LOCAL_NAMES, x509.DNSName(OTHER_NAME)),
        "elsewhere": (x509.DNSName("elsewhere.example"),),
    }.items():
        key, cert = new_server_cert(ca, days=1, common_name=str(names[0].value), names=names)
        write_cert(cert, directory / f"{label}.pem")
        write_key(key, directory / f"{label}.key")
        files[label] = (str(directory / f"{label}.pem"), str(directory / f"{label}.key"))
    return GuardCerts(str(directory / "ca.pem"), files["localhost"], files["elsewhere"])


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Route:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b'{"ok": true}'
    declare_length: bool = True


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.seen.append(Seen(self.command, self.path, dict(self.headers), body))
        route = self.server.routes.get(self.path.split("?")[0], Route(404, body=b"{}"))
        self.send_response(route.status)
        for name, value in route.headers.items():
            self.send_header(name, value.replace("{port}", str(self.server.port)))
        if route.declare_length:
            self.send_header("Content-Length", str(len(route.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(route.body)

    do_GET = do_POST = do_HEAD = _answer


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, context: ssl.SSLContext | None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.context = context
        self.port = int(self.server_address[1])
        self.seen: list[Seen] = []
        self.routes: dict[str, Route] = {}

    def url(self, path: str = "/", host: str = "localhost") -> str:
        scheme = "https" if self.context else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.context is None:
            super().finish_request(request, client_address)
            return
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except OSError:  # the client refused our certificate
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            tls.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that stops reading a big answer is expected here


@pytest.fixture
def serve() -> Iterator[Callable[[ssl.SSLContext | None], _Server]]:
    started: list[tuple[_Server, threading.Thread]] = []

    def start(context: ssl.SSLContext | None) -> _Server:
        server = _Server(context)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        thread.start()
        started.append((server, thread))
        return server

    yield start
    for server, thread in started:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _local(certs: GuardCerts, **over: Any) -> TransportOptions:
    """Private hosts on (explicitly: the servers are on loopback), the test CA trusted."""
    return TransportOptions(
        **{"timeout": 5.0, "allow_private_hosts": True, "ca_file": certs.ca_file, **over}
    )


def test_allowed_private_host_is_reached_over_verified_tls(
    serve: Any, guard_certs: GuardCerts
) -> None:
    server = serve(guard_certs.context(guard_certs.localhost))
    server.routes["/meta"] = Route(body=b'{"issuer": "x"}')
    with guarded_session(_local(guard_certs)) as session:
        response = session.get(server.url("/meta"))
    assert response.json() == {"issuer": "x"}
    assert [s.path for s in server.seen] == ["/meta"]


def test_the_checked_address_is_connected_and_tls_verifies_the_url_name(
    serve: Any, guard_certs: GuardCerts, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One lookup; the connection goes to its answer (a second lookup would say 10.9.9.9);
    SNI, Host and the certificate check use the name, not the address."""
    server = serve(guard_certs.context(guard_certs.localhost))
    server.routes["/meta"] = Route()
    answers = iter([["127.0.0.1"]])
    real = socket.getaddrinfo
    asked: list[str] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != OTHER_NAME:
            return real(host, port, *args, **kwargs)
        asked.append(host)
        ip = next(answers, ["10.9.9.9"])[0]  # rebinding: any later answer is different
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, int(port)))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    connected: list[Any] = []
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> None:
        connected.append(address)
        real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    with guarded_session(_local(guard_certs)) as session:
        assert session.get(server.url("/meta", host=OTHER_NAME)).ok
    assert asked == [OTHER_NAME]
    assert connected == [("127.0.0.1", server.port)]
    assert server.seen[0].headers["Host"] == f"{OTHER_NAME}:{server.port}"


def test_a_certificate_for_another_name_fails_verification(
    serve: Any, guard_certs: GuardCerts
) -> None:
    server = serve(guard_certs.context(guard_certs.elsewhere))  # CA-issued, wrong name
    server.routes["/meta"] = Route()
    with guarded_session(_local(guard_certs)) as session:
        with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
            session.get(server.url("/meta"))
        # Asking requests not to verify changes nothing: TLS is always verified.
        with pytest.raises(requests.exceptions.SSLError):
            session.get(server.url("/meta"), verify=False)
    assert server.seen == []


def test_a_redirect_to_plain_http_is_refused(serve: Any, guard_certs: GuardCerts) -> None:
    plain = serve(None)
    plain.routes["/x"] = Route()
    server = serve(guard_certs.context(guard_certs.localhost))
    server.routes["/meta"] = Route(302, {"Location": plain.url("/x")})
    with guarded_session(_local(guard_certs)) as session, pytest.raises(HTTPGuardError) as caught:
        session.get(server.url("/meta"))
    assert caught.value.code == REDIRECT_REFUSED
    assert plain.seen == []


def test_an_https_get_redirect_is_followed_and_re_checked(
    serve: Any, guard_certs: GuardCerts, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = serve(guard_certs.context(guard_certs.localhost))
    second = serve(guard_certs.context(guard_certs.localhost))
    first.routes["/meta"] = Route(302, {"Location": second.url("/final", host=OTHER_NAME)})
    second.routes["/final"] = Route(body=b'{"final": true}')
    asked = fake_dns(monkeypatch, {OTHER_NAME: ["127.0.0.1"]})
    with guarded_session(_local(guard_certs)) as session:
        response = session.get(first.url("/meta"), headers={"Authorization": "Bearer t"})
    assert response.json() == {"final": True}
    assert [r.status_code for r in response.history] == [302]
    assert asked == [OTHER_NAME]  # the hop was resolved and checked on its own
    assert "Authorization" not in second.seen[0].headers  # the token stays with its host


def test_redirect_hops_are_capped(serve: Any, guard_certs: GuardCerts) -> None:
    server = serve(guard_certs.context(guard_certs.localhost))
    server.routes["/loop"] = Route(302, {"Location": "/loop"})
    with guarded_session(_local(guard_certs)) as session, pytest.raises(HTTPGuardError) as caught:
        session.get(server.url("/loop"))
    assert caught.value.code == REDIRECT_REFUSED
    assert len(server.seen) == MAX_REDIRECTS + 1


@pytest.mark.parametrize("status", [307, 308, 302, 301])
def test_a_redirected_token_post_is_never_re_sent(
    serve: Any, guard_certs: GuardCerts, status: int
) -> None:
    """The token endpoint answers 307 to another host: Authlib would re-POST the client secret
    and the code there. The second server must see nothing."""
    thief = serve(guard_certs.context(guard_certs.localhost))
    thief.routes["/steal"] = Route()
    token = serve(guard_certs.context(guard_certs.localhost))
    token.routes["/token"] = Route(status, {"Location": thief.url("/steal", host="127.0.0.1")})
    with GuardedOAuth2Session(
        "client", SECRET, token_endpoint_auth_method="client_secret_post",
        transport_options=_local(guard_certs),
    ) as client, pytest.raises(HTTPGuardError) as caught:  # fmt: skip
        client.fetch_token(token.url("/token"), code="the-code", redirect_uri=PUBLIC)
    assert caught.value.code == REDIRECT_REFUSED
    assert thief.seen == []
    assert SECRET.encode() in token.seen[0].body  # it went where it was meant to, only


@pytest.mark.parametrize("declare_length", [True, False])
def test_a_5_mib_answer_is_refused(
    serve: Any, guard_certs: GuardCerts, declare_length: bool
) -> None:
    server = serve(guard_certs.context(guard_certs.localhost))
    big = b"x" * (5 * 1024 * 1024)
    server.routes["/jwks"] = Route(body=big, declare_length=declare_length)
    server.routes["/small"] = Route(body=b"y" * 1000)
    with guarded_session(_local(guard_certs)) as session:
        with pytest.raises(HTTPGuardError) as caught:
            session.get(server.url("/jwks"))
        assert caught.value.code == RESPONSE_TOO_LARGE
        assert len(session.get(server.url("/small")).content) == 1000
    capped = guarded_session(_local(guard_certs), max_bytes=999)
    with capped as session, pytest.raises(HTTPGuardError):
        session.get(server.url("/small"))


def test_a_silent_server_times_out_without_a_caller_timeout(silent_server: Any) -> None:
    started = time.monotonic()
    options = TransportOptions(timeout=0.5, allow_private_hosts=True)
    with guarded_session(options) as session, pytest.raises(requests.Timeout):
        session.get(f"http://127.0.0.1:{silent_server.port}/")  # no timeout= given
    assert time.monotonic() - started < 3


# -- the admin form ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://169.254.169.254/latest/meta-data/", "(169.254.169.254)"),
        ("https://[::ffff:10.0.0.1]/.well-known/openid-configuration", "(::ffff:10.0.0.1)"),
        ("https://evil.example.net/.well-known/openid-configuration",
         "(evil.example.net resolves to 10.0.0.5)"),
    ],
)  # fmt: skip
def test_the_admin_form_refuses_a_private_metadata_url(
    client: FlaskClient, app: Flask, monkeypatch: pytest.MonkeyPatch, url: str, shown: str,
    connects: list[Any],
) -> None:  # fmt: skip
    fake_dns(monkeypatch, {"evil.example.net": ["10.0.0.5"]})
    login(client, 3)
    response = create(client, **oauth_form(server_metadata_url=url))
    page = response.get_data(as_text=True)
    assert response.status_code == 422, page[:500]
    assert f"This address points to a private or internal network {shown}" in page
    assert "public URL" in page
    with app.app_context():
        assert hostapp.db.session.scalars(sa.select(MailProvider)).all() == []
    assert connects == []


def test_the_admin_form_refuses_a_private_token_url_and_odd_ports(
    client: FlaskClient, app: Flask
) -> None:
    login(client, 3)
    page = create(client, **oauth_form(token_url="https://10.1.2.3/token")).get_data(as_text=True)
    assert "private or internal network (10.1.2.3)" in page
    response = create(client, **oauth_form(token_url="https://id.acme.org:8443/token"))
    assert response.status_code == 422
    assert "standard https port (443)" in response.get_data(as_text=True)


def test_the_admin_form_accepts_private_urls_when_private_hosts_are_allowed(
    client: FlaskClient, app: Flask
) -> None:
    app.config["MAILCONNECT_ALLOW_PRIVATE_HOSTS"] = True
    login(client, 3)
    response = create(client, **oauth_form(token_url="https://10.1.2.3:8443/token"))
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]


def test_check_url_names_the_refused_address(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, {"intranet.example.org": ["fd00::7"]})
    with pytest.raises(HTTPGuardError) as caught:
        check_url("https://intranet.example.org/", allow_private_hosts=False, timeout=1)
    assert caught.value.refused and caught.value.code == BLOCKED_ADDRESS
    assert ipaddress.ip_address(str(caught.value.address)) == ipaddress.ip_address("fd00::7")
    check_url("https://intranet.example.org/", allow_private_hosts=True, timeout=1)
