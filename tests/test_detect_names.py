"""What detection accepts from the people and the servers it deals with: internationalised
domains (looked up and cached in their IDNA form), reserved names (never asked anywhere, nor
sent to the ISP database as an MX host's domain), host names from every source (no
``localhost``, single labels or IP addresses in any notation), placeholders filled in one pass,
logins from sources (length, control characters), a per-address login never cached for the
whole domain, and ``MAILCONNECT_DNS_NAMESERVERS`` with a port per server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from flask_mailconnect import Detection
from flask_mailconnect.detection import detect
from flask_mailconnect.detection.clientconfig import ClientConfigError, parse_client_config
from flask_mailconnect.detection.model import DetectedServer, fill
from flask_mailconnect.detection.names import ascii_domain, clean_login, is_host
from flask_mailconnect.providers.detect import is_reserved, parse_nameservers
from tests import hostapp
from tests.peers.certs import TestCerts, make_certs
from tests.peers.detect_env import DetectPeers, detect_peers
from tests.peers.dns_server import DNSServer
from tests.peers.web_server import Route

ZONE = {
    "_submissions._tcp.xn--bcher-kva.de": [("SRV", "0 0 465 smtp.xn--bcher-kva.de.")],
    "_imaps._tcp.xn--bcher-kva.de": [("SRV", "0 0 993 imap.xn--bcher-kva.de.")],
    # MX hosts under reserved names: never sent to the ISP database.
    "mx-internal.net": [("MX", "10 mx1.corp.internal.")],
    "mx-lan.net": [("MX", "10 mail.home.arpa.")],
    # Targets that are no host names.
    "_submissions._tcp.bad-srv.net": [("SRV", "0 0 465 localhost.")],
    "_imaps._tcp.bad-srv.net": [("SRV", "0 0 993 127.1.")],
    "_imap._tcp.bad-srv.net": [("SRV", "0 0 143 0x7f.1.")],
    "bad-mx.net": [("MX", "10 localhost."), ("MX", "20 2130706433.")],
}


def config_xml(hostname: str = "mail.x.net", username: str = "%EMAILADDRESS%") -> bytes:
    return (
        '<clientConfig version="1.1"><emailProvider id="x"><incomingServer type="imap">'
        f"<hostname>{hostname}</hostname><port>993</port><socketType>SSL</socketType>"
        f"<username>{username}</username></incomingServer></emailProvider></clientConfig>"
    ).encode()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TestCerts:
    return make_certs(tmp_path_factory.mktemp("detect-names-certs"))


@pytest.fixture
def peers(certs: TestCerts) -> Iterator[DetectPeers]:
    with detect_peers(certs, ZONE) as found:
        yield found


def run(peers: DetectPeers, email: str, **config: object) -> Detection:
    with peers.app(**config).test_request_context():
        return detect(email, wait_all=True)


def outcome(found: Detection, source: str) -> tuple[str, str]:
    attempt = next(t for t in found.tried if t.source == source)
    return attempt.outcome, attempt.detail


# -- internationalised domains -------------------------------------------------------------------


def test_internationalised_domains_are_asked_in_their_ascii_form(peers: DetectPeers) -> None:
    app = peers.app()
    with app.test_request_context():
        found = detect("ana@bücher.de")
        again = detect("bo@XN--BCHER-KVA.DE")
    assert found.source == "srv" and found.domain == "bücher.de"
    assert found.smtp == DetectedServer("smtp.xn--bcher-kva.de", 465, "ssl")
    assert found.username == "ana@bücher.de"  # the address as the person wrote it
    assert ("_submissions._tcp.xn--bcher-kva.de.", "SRV") in peers.dns.queries
    assert again.cached and again.source == "srv"  # one cache entry: the ASCII form
    peers.ispdb("xn--e1afmkfd.xn--p1ai", Route(body=config_xml("mail.xn--e1afmkfd.xn--p1ai")))
    russian = run(peers, "ana@пример.рф")
    assert russian.source == "ispdb" and russian.imap is not None
    assert russian.imap.host == "mail.xn--e1afmkfd.xn--p1ai"
    assert "/ispdb/xn--e1afmkfd.xn--p1ai" in peers.web.seen


def test_ascii_forms() -> None:
    assert ascii_domain("Bücher.DE.") == "xn--bcher-kva.de"
    assert ascii_domain("пример.рф") == "xn--e1afmkfd.xn--p1ai"
    assert ascii_domain("xn--e1afmkfd.xn--p1ai") == "xn--e1afmkfd.xn--p1ai"
    for bad in ("a..b", "-x-.net", "bü cher.de", "", "x" * 300 + ".com", "a_b.de"):
        assert ascii_domain(bad) is None, bad


# -- reserved names ------------------------------------------------------------------------------


def test_reserved_names_are_never_asked(peers: DetectPeers) -> None:
    for email in (
        "a@corp.internal", "a@nas.home.arpa", "a@printer.lan", "a@box.localdomain",
        "a@x.onion", "a@wiki.intranet", "a@mac.local", "a@host.localhost", "a@shop.test",
        "a@x.example", "a@x.invalid", "a@x.alt", "a@files.corp", "a@x.private", "a@my.home",
    ):  # fmt: skip
        found = run(peers, email)
        assert not found.found and outcome(found, "ispdb")[0] == "skipped", email
    assert peers.web.seen == [] and peers.dns.queries == []
    assert is_reserved("Corp.Internal.") and not is_reserved("internal-tools.net")


def test_an_mx_host_under_a_reserved_name_is_not_sent_to_the_isp_database(
    peers: DetectPeers,
) -> None:
    for email in ("ana@mx-internal.net", "ana@mx-lan.net"):
        found = run(peers, email)
        state, detail = outcome(found, "mx")
        assert state == "nothing" and "a reserved name" in detail
    assert not any(
        p.startswith(("/ispdb/corp.internal", "/ispdb/home.arpa")) for p in peers.web.seen
    )


# -- host names from sources ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["localhost", "127.1", "127.0.0.1", "2130706433", "0x7f.1", "0x7f.0x1", "mailserver"]
)
def test_published_hosts_that_are_no_host_names_are_dropped(host: str) -> None:
    assert not is_host(host)
    with pytest.raises(ClientConfigError):
        parse_client_config(config_xml(host), domain="x.net", source="ispdb")


def test_srv_and_mx_targets_that_are_no_host_names_are_dropped(peers: DetectPeers) -> None:
    found = run(peers, "ana@bad-srv.net")
    assert not found.found
    state, detail = outcome(found, "srv")
    assert state == "invalid" and "localhost" in detail and "127.1" in detail
    bad_mx = run(peers, "ana@bad-mx.net")
    assert outcome(bad_mx, "mx") == ("nothing", "no MX records")
    assert is_host("mail.example.org") and is_host("MX1.Example.ORG.")


# -- placeholders and logins ---------------------------------------------------------------------


def test_placeholders_are_filled_in_one_pass() -> None:
    # A value is never read again for placeholders.
    assert fill("%EMAILADDRESS%", "%EMAILDOMAIN%@evil.net") == "%EMAILDOMAIN%@evil.net"
    assert fill("%EMAILLOCALPART%", "a%b%c@x.net") == "a%b%c"
    assert fill("%EMAILLOCALPART%@%EMAILDOMAIN%", "a%EMAILDOMAIN%b@x.net") == (
        "a%EMAILDOMAIN%b@x.net"
    )
    assert fill("%REALNAME%", "ana@x.net") is None
    assert fill("mail.%EMAILDOMAIN%", "x@x.net", allowed=("EMAILDOMAIN",)) == "mail.x.net"
    assert fill("%EMAILLOCALPART%.x.net", "x@x.net", allowed=("EMAILDOMAIN",)) is None


def test_a_host_name_may_use_only_the_domain_placeholder() -> None:
    with pytest.raises(ClientConfigError):
        parse_client_config(config_xml("%EMAILLOCALPART%.x.net"), domain="x.net", source="ispdb")
    found = parse_client_config(config_xml("imap.%EMAILDOMAIN%"), domain="x.net", source="ispdb")
    assert found.imap == DetectedServer("imap.x.net", 993, "ssl")


@pytest.mark.parametrize(
    "login", ["a" * 321, "ana&#10;bcc", "ana\u202egnp.exe", "ana\u2028x"], ids=str.__len__
)
def test_logins_too_long_or_with_control_characters_are_dropped(login: str) -> None:
    found = parse_client_config(config_xml(username=login), domain="x.net", source="ispdb")
    assert found.imap is not None and found.username is None
    assert clean_login("ana.lima") == "ana.lima" and clean_login("a" * 320) == "a" * 320


def test_a_filled_login_longer_than_an_address_is_not_offered(peers: DetectPeers) -> None:
    peers.ispdb("long-login.net", Route(body=config_xml(username="%EMAILADDRESS%" * 2)))
    found = run(peers, f"{'a' * 200}@long-login.net")
    assert found.source == "ispdb" and found.username is None
    assert found.login == "%EMAILADDRESS%%EMAILADDRESS%"


# -- a login for one address is not the domain's answer ------------------------------------------


def test_a_login_without_placeholders_is_not_cached_for_the_domain(peers: DetectPeers) -> None:
    peers.autoconfig("per-person.net", Route(body=config_xml("mail.per-person.net", "ana-7731")))
    app = peers.app()
    with app.test_request_context():
        ana = detect("ana@per-person.net")
        bo = detect("bo@per-person.net")
    assert (ana.source, ana.username, ana.cached) == ("autoconfig", "ana-7731", False)
    assert not bo.cached  # asked again: the answer may be Ana's alone
    asked = [p for p in peers.web.seen if p.startswith("/autoconfig/per-person.net/")]
    assert [p.split("emailaddress=")[1] for p in asked] == [
        "ana@per-person.net",
        "bo@per-person.net",
    ]
    with app.app_context():
        from flask_mailconnect.models import DetectCache

        rows = hostapp.db.session.query(DetectCache).filter_by(domain="per-person.net").count()
    assert rows == 0


# -- MAILCONNECT_DNS_NAMESERVERS -----------------------------------------------------------------


def test_nameservers_with_ports_of_their_own(peers: DetectPeers) -> None:
    six = DNSServer(ZONE, host="::1")
    quiet = DNSServer(ZONE, silent=True)
    try:
        found = run(peers, "ana@bücher.de", MAILCONNECT_DNS_NAMESERVERS=[six.nameserver])
        assert six.nameserver.startswith("[::1]:") and found.source == "srv"
        assert ("_imaps._tcp.xn--bcher-kva.de.", "SRV") in six.queries
        # Each server keeps its own port: the first answers, the silent one is never needed.
        both = [peers.dns.nameserver, quiet.nameserver]
        assert run(peers, "bo@bücher.de", MAILCONNECT_DNS_NAMESERVERS=both).source == "srv"
    finally:
        six.close()
        quiet.close()
    assert parse_nameservers(["10.0.0.2", "10.0.0.3:5353", "2001:db8::53", "[::1]:5353"]) == [
        ("10.0.0.2", 53), ("10.0.0.3", 5353), ("2001:db8::53", 53), ("::1", 5353),
    ]  # fmt: skip


@pytest.mark.parametrize(
    "value", [["dns.example.net"], ["[::1"], ["10.0.0.2:0"], ["10.0.0.2:dns"], "10.0.0.2"]
)
def test_a_malformed_nameserver_setting_fails_at_start_up(value: object) -> None:
    with pytest.raises(ValueError, match="MAILCONNECT_DNS_NAMESERVERS"):
        hostapp.create_app(MAILCONNECT_DNS_NAMESERVERS=value)
