"""Server detection's sources against local peers: an https server with its own CA (ISP
database, autoconfig and .well-known files, Autodiscover) and a DNS server (SRV, MX, A, a black
hole). Each source, the order rule, the deadline, misbehaving answers, and the address guard
for every source."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flask_mailconnect import Detection
from flask_mailconnect.detection import detect
from flask_mailconnect.detection import run as run_module
from flask_mailconnect.detection.context import Context, SourceFailure
from flask_mailconnect.detection.model import DetectedServer, Finding
from flask_mailconnect.detection.web import _checked
from flask_mailconnect.providers import build_catalog
from flask_mailconnect.transport.settings import TransportOptions
from tests.peers.certs import TestCerts, make_certs
from tests.peers.detect_env import (
    M365_ANSWER,
    NOT_M365_ANSWER,
    DetectPeers,
    detect_peers,
    fixture,
)
from tests.peers.web_server import Route

PUBLIC_IP = "93.184.216.34"
ZONE = {
    # SRV: _submissions and _submission share priority 0: implicit TLS wins, then the heavier.
    "_submissions._tcp.srv-mail.net": [
        ("SRV", "0 5 465 smtp-light.srv-mail.net."),
        ("SRV", "0 50 465 smtp.srv-mail.net."),
        ("SRV", "10 100 465 smtp-backup.srv-mail.net."),
    ],
    "_submission._tcp.srv-mail.net": [("SRV", "0 100 587 submit.srv-mail.net.")],
    "_imaps._tcp.srv-mail.net": [("SRV", "0 0 0 .")],  # RFC 2782: "no such service here"
    "_imap._tcp.srv-mail.net": [("SRV", "5 0 143 imap.srv-mail.net.")],
    "smtp.srv-mail.net": [("A", PUBLIC_IP)],
    "imap.srv-mail.net": [("A", PUBLIC_IP)],
    # SRV targets on a private address.
    "_imaps._tcp.private-srv.net": [("SRV", "0 0 993 mail.private-srv.net.")],
    "_submissions._tcp.private-srv.net": [("SRV", "0 0 465 mail.private-srv.net.")],
    "mail.private-srv.net": [("A", "10.1.2.3")],
    # MX: a catalogue pattern, and a host whose registrable domain the ISP database knows.
    "workspace-co.net": [("MX", "10 aspmx.l.google.com."), ("MX", "20 alt1.aspmx.l.google.com.")],
    "hosted-elsewhere.net": [("MX", "10 mx1.eu.mailhost-provider.co.uk.")],
    "both-sources.net": [("MX", "10 mx.both-sources.net.")],
    "_submissions._tcp.both-sources.net": [("SRV", "0 0 465 smtp.both-sources.net.")],
}


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TestCerts:
    return make_certs(tmp_path_factory.mktemp("detect-certs"))


@pytest.fixture
def peers(certs: TestCerts) -> Iterator[DetectPeers]:
    with detect_peers(certs, ZONE) as found:
        yield found


def run(peers: DetectPeers, email: str, **config: object) -> Detection:
    app = peers.app(**config)
    with app.test_request_context():
        return detect(email, wait_all=True)


def outcome(found: Detection, source: str) -> tuple[str, str]:
    attempt = next(t for t in found.tried if t.source == source)
    return attempt.outcome, attempt.detail


# -- each source --------------------------------------------------------------------------------


def test_isp_database(peers: DetectPeers) -> None:
    peers.ispdb("isp-one.net", Route(body=fixture("several.xml")))
    found = run(peers, "ana@isp-one.net")
    assert (found.source, found.source_label) == ("ispdb", "from Mozilla's ISP database")
    assert found.imap == DetectedServer("imap.isp-one.net", 993, "ssl")
    assert found.smtp == DetectedServer("smtp.isp-one.net", 465, "ssl")
    assert (found.username, found.auth, found.provider) == ("ana@isp-one.net", ("password",), None)
    assert "/ispdb/isp-one.net" in peers.web.seen  # the domain only: not the address
    assert not any("ana" in path for path in peers.web.seen if path.startswith("/ispdb/"))


def test_autoconfig_host_with_placeholders(peers: DetectPeers) -> None:
    peers.autoconfig("own-config.net", Route(body=fixture("placeholders.xml")))
    found = run(peers, "ana.lima@own-config.net")
    assert (found.source, found.source_label) == ("autoconfig", "published by own-config.net")
    assert found.imap == DetectedServer("mail.own-config.net", 993, "ssl")
    assert found.username == "ana.lima"
    asked = [p for p in peers.web.seen if p.startswith("/autoconfig/")]
    assert asked == [
        "/autoconfig/own-config.net/mail/config-v1.1.xml?emailaddress=ana.lima@own-config.net"
    ]


def test_well_known_file(peers: DetectPeers) -> None:
    peers.well_known("wellknown-only.net", Route(body=fixture("unknown_elements.xml")))
    found = run(peers, "ana@wellknown-only.net")
    assert (found.source, found.source_label) == ("well-known", "published by wellknown-only.net")
    assert found.smtp == DetectedServer("smtp.extra.net", 587, "starttls")
    assert outcome(found, "autoconfig") == ("nothing", "HTTP 404")


def test_srv_records_priority_weight_and_no_service(peers: DetectPeers) -> None:
    found = run(peers, "ana@srv-mail.net")
    assert (found.source, found.source_label) == ("srv", "from DNS records")
    assert found.smtp == DetectedServer("smtp.srv-mail.net", 465, "ssl")
    assert found.imap == DetectedServer("imap.srv-mail.net", 143, "starttls")  # _imaps is "."
    assert found.username == "ana@srv-mail.net"
    asked = {q for q in peers.dns.queries if q[1] == "SRV"}
    assert ("_imaps._tcp.srv-mail.net.", "SRV") in asked


def test_mx_pattern_finds_the_catalogue_provider(peers: DetectPeers) -> None:
    found = run(peers, "ana@workspace-co.net")
    assert found.source == "mx" and found.provider is not None
    assert found.provider.key == "google"
    assert found.smtp is not None and found.smtp.host == found.provider.smtp.host
    assert found.source_label.startswith("from DNS records")


def test_mx_host_domain_in_the_isp_database(peers: DetectPeers) -> None:
    peers.ispdb("mailhost-provider.co.uk", Route(body=fixture("several.xml")))
    found = run(peers, "ana@hosted-elsewhere.net")
    assert found.source == "mx"
    assert found.imap == DetectedServer("imap.isp-one.net", 993, "ssl")
    assert "mailhost-provider.co.uk" in found.source_label  # the registrable domain (PSL)
    assert "/ispdb/mailhost-provider.co.uk" in peers.web.seen


def test_autodiscover_learns_microsoft_365(peers: DetectPeers) -> None:
    peers.autodiscover("ana@m365-co.net", Route(body=M365_ANSWER, content_type="application/json"))
    peers.autodiscover(
        "bo@m365-co.net", Route(body=NOT_M365_ANSWER, content_type="application/json")
    )
    found = run(peers, "ana@m365-co.net")
    assert found.source == "autodiscover" and found.provider is not None
    assert found.provider.key == "microsoft"
    assert found.imap is not None and found.imap.host == found.provider.imap.host
    other = run(peers, "bo@other-co.net")
    assert not other.found
    assert outcome(other, "autodiscover")[0] == "nothing"


def test_autodiscover_can_be_turned_off(peers: DetectPeers) -> None:
    peers.autodiscover("ana@m365-co.net", Route(body=M365_ANSWER))
    found = run(peers, "ana@m365-co.net", MAILCONNECT_DETECT_AUTODISCOVER=False)
    assert not found.found
    assert outcome(found, "autodiscover")[0] == "skipped"
    assert not any(p.startswith("/autodiscover/") for p in peers.web.seen)


def test_nothing_known_anywhere(peers: DetectPeers) -> None:
    found = run(peers, "ana@nobody-knows.net")
    assert not found.found and found.smtp is None and found.source_label == ""
    assert {t.source: t.outcome for t in found.tried} == {
        "catalogue": "nothing", "ispdb": "nothing", "autoconfig": "nothing",
        "well-known": "nothing", "srv": "nothing", "mx": "nothing", "autodiscover": "nothing",
    }  # fmt: skip


def test_catalogue_answers_without_any_network(peers: DetectPeers) -> None:
    found = run(peers, "ana@gmail.com")
    assert found.source == "catalogue" and found.provider is not None
    assert [t.source for t in found.tried] == ["catalogue"]
    assert peers.web.seen == [] and peers.dns.queries == []


def test_reserved_and_invalid_domains_are_never_asked(peers: DetectPeers) -> None:
    for email in ("a@example.com", "a@corp.test", "a@1.2.3.4", "a@-x-.net", "@x.net", "nobody"):
        found = run(peers, email)
        assert not found.found, email
    assert peers.web.seen == [] and peers.dns.queries == []


# -- the order rule and the deadline -------------------------------------------------------------


def test_the_first_source_in_order_wins_even_when_a_later_one_is_faster(
    peers: DetectPeers, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The ISP database answers only once the SRV source has ended: the later source is faster
    # by construction, not by timing.
    srv_ended = threading.Event()

    def srv_then_signal(ctx: Context) -> Finding:
        try:
            return real_srv(ctx)
        finally:
            srv_ended.set()

    real_srv = run_module.NETWORK["srv"]
    monkeypatch.setitem(run_module.NETWORK, "srv", srv_then_signal)
    peers.ispdb("both-sources.net", Route(body=fixture("several.xml"), gate=srv_ended))
    app = peers.app()
    with app.test_request_context():
        found = detect("ana@both-sources.net")
    assert found.source == "ispdb"
    assert outcome(found, "srv")[0] == "found"  # it answered first, and lost


def test_a_later_source_wins_when_earlier_ones_know_nothing(peers: DetectPeers) -> None:
    found = run(peers, "ana@both-sources.net")
    assert found.source == "srv"
    assert found.smtp == DetectedServer("smtp.both-sources.net", 465, "ssl")


def test_a_source_that_never_answers_is_not_waited_for(peers: DetectPeers) -> None:
    peers.ispdb("slow.net", Route(body=fixture("several.xml"), delay=60))
    peers.well_known("slow.net", Route(body=fixture("plain_only.xml")))
    app = peers.app(MAILCONNECT_DETECT_TIMEOUT=1.0)
    with app.test_request_context():
        found = detect("ana@slow.net")
    # The answer came from a later source while the first was still being served.
    assert found.source == "well-known"
    assert outcome(found, "ispdb") == ("timeout", "no answer by the deadline")
    assert "/ispdb/slow.net" in peers.web.seen
    assert "/ispdb/slow.net" not in peers.web.answered


def test_a_dns_black_hole_ends_at_the_deadline(certs: TestCerts) -> None:
    with detect_peers(certs, ZONE, silent=True) as quiet:
        app = quiet.app(MAILCONNECT_DETECT_TIMEOUT=1.0)
        with app.test_request_context():
            found = detect("ana@srv-mail.net")
        assert not found.found
        assert outcome(found, "srv")[0] == "timeout"
        assert outcome(found, "mx")[0] == "timeout"
        assert ("_submissions._tcp.srv-mail.net.", "SRV") in quiet.dns.queries  # it did ask
        # A source earlier in order answers at once: the black hole is not waited for.
        quiet.ispdb("srv-mail.net", Route(body=fixture("several.xml")))
        with app.test_request_context():
            found = detect("ana@srv-mail.net", fresh=True)
        assert found.source == "ispdb"
        assert outcome(found, "srv") == ("skipped", "an earlier source answered")


def test_a_black_holed_name_among_answering_ones(certs: TestCerts) -> None:
    with detect_peers(certs, ZONE, black_holes=["srv-mail.net"]) as peers:
        found = run(peers, "ana@srv-mail.net", MAILCONNECT_DETECT_TIMEOUT=1.0)
    assert found.source == "srv"  # the SRV names answer; only the MX query is lost
    assert outcome(found, "mx")[0] == "timeout"


# -- misbehaving answers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "expected"),
    [
        (Route(body=b"<html><body>Welcome to nginx</body></html>"), ("invalid", "root element")),
        (Route(body=b"<clientConfig><emailProvider>"), ("invalid", "not XML")),
        (Route(body=fixture("entity_bomb.xml")), ("invalid", "not XML")),
        (Route(body=fixture("unsupported_auth.xml")), ("invalid", "no IMAP or SMTP server")),
        (Route(body=b"<!-- x -->" + b" " * 200_000), ("invalid", "response_too_large")),
        (Route(status=500, body=b"oops"), ("nothing", "HTTP 500")),
        (
            Route(status=302, headers={"Location": "http://localhost/x"}),
            ("blocked", "redirect_refused"),
        ),
    ],
    ids=["html", "truncated", "entities", "unusable-auth", "oversized", "error", "to-http"],
)
def test_misbehaving_isp_database_answers(
    peers: DetectPeers, route: Route, expected: tuple[str, str]
) -> None:
    peers.ispdb("broken.net", route)
    found = run(peers, "ana@broken.net")
    assert not found.found
    got = outcome(found, "ispdb")
    assert got[0] == expected[0] and expected[1] in got[1], got


def test_a_redirect_is_followed_and_rechecked(peers: DetectPeers) -> None:
    peers.ispdb("moved.net", Route(status=302, headers={"Location": "{base}/files/moved.xml"}))
    peers.web.routes["/files/moved.xml"] = Route(body=fixture("several.xml"))
    found = run(peers, "ana@moved.net")
    assert found.source == "ispdb"
    assert peers.web.seen.count("/files/moved.xml") == 1


def test_a_certificate_from_another_authority_is_refused(
    peers: DetectPeers, tmp_path: Path
) -> None:
    peers.ispdb("isp-one.net", Route(body=fixture("several.xml")))
    other = make_certs(tmp_path)  # a CA the app does not trust
    found = run(peers, "ana@isp-one.net", MAILCONNECT_CA_FILE=other.ca_file)
    assert not found.found
    assert outcome(found, "ispdb") == ("failed", "certificate_invalid")


# -- the address guard, for every source ----------------------------------------------------------


GUARDED = {
    "ispdb": {"MAILCONNECT_ISPDB_URL": "https://127.0.0.1/ispdb/"},
    "autoconfig": {"MAILCONNECT_AUTOCONFIG_URLS": ["https://localhost/{domain}/config.xml"]},
    "well-known": {"MAILCONNECT_AUTOCONFIG_URLS": ["", "https://10.0.0.1/{domain}/c.xml"]},
    "autodiscover": {"MAILCONNECT_AUTODISCOVER_URL": "https://192.168.1.1/ad/{email}"},
}


@pytest.mark.parametrize("source", sorted(GUARDED))
def test_web_sources_refuse_private_addresses_before_connecting(
    peers: DetectPeers, source: str
) -> None:
    found = run(peers, "ana@guarded.net", MAILCONNECT_ALLOW_PRIVATE_HOSTS=False, **GUARDED[source])
    assert outcome(found, source) == ("blocked", "blocked_address")
    assert not found.found


def test_mx_source_refuses_a_private_isp_database(peers: DetectPeers) -> None:
    found = run(
        peers, "ana@hosted-elsewhere.net", MAILCONNECT_ALLOW_PRIVATE_HOSTS=False,
        MAILCONNECT_ISPDB_URL="https://127.0.0.1/ispdb/",
    )  # fmt: skip
    assert outcome(found, "mx") == ("blocked", "blocked_address")
    assert ("hosted-elsewhere.net.", "MX") in peers.dns.queries  # asked DNS, not the web


def test_srv_targets_on_private_addresses_are_dropped(peers: DetectPeers) -> None:
    found = run(peers, "ana@private-srv.net", MAILCONNECT_ALLOW_PRIVATE_HOSTS=False)
    got = outcome(found, "srv")
    assert got[0] == "blocked" and "mail.private-srv.net" in got[1]
    assert not found.found
    public = run(peers, "ana@srv-mail.net", MAILCONNECT_ALLOW_PRIVATE_HOSTS=False)
    assert public.source == "srv"  # public targets (their A records checked) stay


def test_published_servers_at_private_ip_literals_are_dropped() -> None:
    ctx = Context(
        email="a@x.net", domain="x.net", catalog=build_catalog({}),
        options=TransportOptions(allow_private_hosts=False), deadline=time.monotonic() + 1,
    )  # fmt: skip
    finding = Finding(
        "ispdb",
        smtp=DetectedServer("10.0.0.5", 465, "ssl"),
        imap=DetectedServer("imap.x.net", 993, "ssl"),
    )
    kept = _checked(ctx, finding)
    assert kept.smtp is None and kept.imap == finding.imap
    with pytest.raises(SourceFailure) as refused:
        _checked(ctx, Finding("ispdb", imap=DetectedServer("127.0.0.1", 993, "ssl")))
    assert refused.value.outcome == "blocked"
