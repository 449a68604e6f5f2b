"""Thunderbird clientConfig v1.1 parsing (detection/clientconfig.py) on our own fixtures in
tests/clientconfig/: several servers, POP3 only, placeholders, OAuth2, plain-only servers,
unknown elements, unusable authentication and hostile XML."""

from __future__ import annotations

from pathlib import Path

import pytest

from flask_mailconnect.detection.clientconfig import ClientConfigError, parse_client_config
from flask_mailconnect.detection.model import DetectedServer, fill

FIXTURES = Path(__file__).parent / "clientconfig"


def parse(name: str, domain: str) -> object:
    return parse_client_config((FIXTURES / name).read_bytes(), domain=domain, source="ispdb")


def test_several_servers_imap_over_pop3_and_ssl_over_starttls_over_plain() -> None:
    found = parse("several.xml", "isp-one.net")
    assert found.imap == DetectedServer("imap.isp-one.net", 993, "ssl")
    assert found.smtp == DetectedServer("smtp.isp-one.net", 465, "ssl")
    assert found.username == "%EMAILADDRESS%"
    assert found.auth == ("password",)
    assert found.display_name == "ISP One Mail"
    assert not found.pop3_only


def test_pop3_only_offers_no_incoming_server_and_says_so() -> None:
    found = parse("pop3_only.xml", "pop-only.net")
    assert found.imap is None
    assert found.pop3_only
    assert found.smtp == DetectedServer("smtp.pop-only.net", 587, "starttls")


def test_placeholders_in_host_names_and_usernames() -> None:
    found = parse("placeholders.xml", "placeholder-host.net")
    assert found.imap == DetectedServer("mail.placeholder-host.net", 993, "ssl")
    assert found.smtp == DetectedServer("mail.placeholder-host.net", 465, "ssl")
    assert found.username == "%EMAILLOCALPART%"
    assert fill(found.username, "ana.lima@placeholder-host.net") == "ana.lima"
    assert fill("%EMAILADDRESS%", "ana@x.net") == "ana@x.net"
    assert fill("%EMAILDOMAIN%\\%EMAILLOCALPART%", "ana@x.net") == "x.net\\ana"
    assert fill("%REALNAME%", "ana@x.net") is None  # not ours to guess


def test_oauth2_and_password_methods_are_both_kept() -> None:
    found = parse("oauth2.xml", "acme-mail.net")
    assert found.auth == ("oauth2", "password")
    assert found.imap == DetectedServer("imap.acme-mail.net", 993, "ssl")


def test_plain_only_servers_are_reported_as_none_security() -> None:
    found = parse("plain_only.xml", "plain-only.net")
    assert found.imap == DetectedServer("mail.plain-only.net", 143, "none")
    assert found.smtp == DetectedServer("mail.plain-only.net", 25, "none")


def test_unknown_elements_and_server_types_are_ignored() -> None:
    found = parse("unknown_elements.xml", "extra.net")
    assert found.imap == DetectedServer("imap.extra.net", 993, "ssl")
    assert found.smtp == DetectedServer("smtp.extra.net", 587, "starttls")
    assert found.auth == ("password",)  # the exchange server's OAuth2 is not ours


def test_a_file_with_only_unusable_authentication_is_refused() -> None:
    with pytest.raises(ClientConfigError, match="no IMAP or SMTP server"):
        parse("unsupported_auth.xml", "kerberos.net")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html><body>Not found</body></html>",
        b"<clientConfig><emailProvider>",
        b"\xff\xfe garbage",
        b'<clientConfig version="1.1"/>',
        b'<clientConfig version="1.1"><emailProvider id="x"><incomingServer type="imap">'
        b"<hostname>imap.x.net</hostname><port>99999</port><socketType>SSL</socketType>"
        b"</incomingServer></emailProvider></clientConfig>",
        b'<clientConfig version="1.1"><emailProvider id="x"><incomingServer type="imap">'
        b"<hostname>imap x.net; rm</hostname><port>993</port><socketType>SSL</socketType>"
        b"</incomingServer></emailProvider></clientConfig>",
    ],
)
def test_malformed_documents_raise_a_typed_error(body: bytes) -> None:
    with pytest.raises(ClientConfigError):
        parse_client_config(body, domain="x.net", source="ispdb")


def test_entity_expansion_is_refused() -> None:
    with pytest.raises(ClientConfigError):
        parse("entity_bomb.xml", "x.net")


def test_the_provider_listing_the_domain_is_chosen() -> None:
    body = (
        b'<clientConfig version="1.1">'
        b'<emailProvider id="a"><domain>a.net</domain><incomingServer type="imap">'
        b"<hostname>imap.a.net</hostname><port>993</port><socketType>SSL</socketType>"
        b"</incomingServer></emailProvider>"
        b'<emailProvider id="b"><domain>b.net</domain><incomingServer type="imap">'
        b"<hostname>imap.b.net</hostname><port>993</port><socketType>SSL</socketType>"
        b"</incomingServer></emailProvider></clientConfig>"
    )
    assert parse_client_config(body, domain="b.net", source="ispdb").imap.host == "imap.b.net"
    # No authentication element: a password, as Thunderbird assumes.
    assert parse_client_config(body, domain="b.net", source="ispdb").auth == ("password",)
