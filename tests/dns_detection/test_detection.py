"""Provider detection: admin domains, then presets, then MX records from a real (local) DNS server.

The DNS server (tests/mx_dns.py) is a UDP socket on 127.0.0.1 answering with dnspython's message
API, so the resolver speaks real DNS; ``MAILCONNECT_DNS_NAMESERVERS`` points the app at it.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from flask_mailconnect.models import MailProvider, MailProviderDomain
from flask_mailconnect.providers import build_catalog, detect_provider, lookup_mx
from flask_mailconnect.runtime import TTLCache
from tests import hostapp
from tests.conftest import login
from tests.mx_dns import MX_ZONE, make_app
from tests.peers.dns_server import DNSServer


def add_provider(app: Any, name: str, domains: list[str], **fields: Any) -> None:
    with app.app_context():
        provider = MailProvider(
            key=name.lower().replace(" ", "-"), name=name, smtp_host="smtp.corp.test",
            smtp_port=587, smtp_security="starttls", imap_host="imap.corp.test", imap_port=993,
            imap_security="ssl", **fields,
        )  # fmt: skip
        provider.domains = [MailProviderDomain(domain=d) for d in domains]
        hostapp.db.session.add(provider)
        hostapp.db.session.commit()


def preset_for_mx(hosts: list[str]) -> str | None:
    found = build_catalog({}).for_mx(tuple(hosts))
    return found.key if found is not None else None


def test_mx_suffixes_match_whole_labels() -> None:
    assert preset_for_mx(["aspmx.l.google.com"]) == "google"
    assert preset_for_mx(["x.mail.protection.outlook.com."]) == "microsoft"
    assert preset_for_mx(["mta5.am0.yahoodns.net"]) == "yahoo"
    assert preset_for_mx(["mx01.mail.icloud.com"]) == "icloud"
    assert preset_for_mx(["mx.evilgoogle.com", "mail.example.org"]) is None


def test_admin_domain_beats_preset(dns_server: DNSServer) -> None:
    app = make_app(dns_server)
    add_provider(app, "Corp Gmail Relay", ["gmail.com"])
    with app.test_request_context():
        preset, source = detect_provider("someone@gmail.com")
        assert (preset.key, source) == ("corp-gmail-relay", "admin")
        preset, source = detect_provider("someone@yahoo.com")
        assert (preset.key, source) == ("yahoo", "preset")
    assert dns_server.queries == []  # local matches never touch DNS


def test_disabled_admin_provider_is_not_detected(dns_server: DNSServer) -> None:
    app = make_app(dns_server)
    add_provider(app, "Old Relay", ["gmail.com"], enabled=False)
    with app.test_request_context():
        assert detect_provider("someone@gmail.com")[0].key == "google"


@pytest.mark.parametrize(
    ("email", "expected"),
    [
        ("ann@acme-widgets.com", "google"),
        ("bo@contoso-shop.com", "microsoft"),
        ("cy@small-biz.net", "yahoo"),
        ("di@family-mail.org", "icloud"),
        ("ed@own-server.org", "other"),
        ("fi@no-such-domain.org", "other"),
    ],
)
def test_mx_fallback_from_local_dns(dns_server: DNSServer, email: str, expected: str) -> None:
    app = make_app(dns_server)
    with app.test_request_context():
        preset, source = detect_provider(email)
    assert preset.key == expected
    assert source == ("none" if expected == "other" else "mx")
    assert dns_server.queries == [(email.split("@")[1] + ".", "MX")]


def test_mx_answers_are_cached_per_app(dns_server: DNSServer) -> None:
    app = make_app(dns_server)
    with app.test_request_context():
        for _ in range(3):
            assert detect_provider("ann@acme-widgets.com")[0].key == "google"
    assert len(dns_server.queries) == 1
    other = make_app(dns_server)  # another app has its own cache
    with other.test_request_context():
        detect_provider("ann@acme-widgets.com")
    assert len(dns_server.queries) == 2


def test_timeout_degrades_to_other() -> None:
    silent = DNSServer(MX_ZONE, silent=True)
    try:
        app = make_app(silent, MAILCONNECT_MX_TIMEOUT=0.3)
        with app.test_request_context():
            started = time.monotonic()
            preset, source = detect_provider("ann@acme-widgets.com")
            elapsed = time.monotonic() - started
        assert (preset.key, source) == ("other", "none")
        assert elapsed < 2.5  # the 0.3 s lifetime, plus slack for a loaded machine
        assert silent.queries  # it did ask
    finally:
        silent.close()


def test_reserved_names_are_never_looked_up() -> None:
    cache = TTLCache()
    assert lookup_mx("example.com", cache=cache, timeout=0.1, nameservers=["127.0.0.1:9"]) == ()
    assert lookup_mx("corp.test", cache=cache, timeout=0.1, nameservers=["127.0.0.1:9"]) == ()


def test_detect_endpoint_and_no_js_continue(dns_server: DNSServer) -> None:
    app = make_app(dns_server)
    client = app.test_client()
    login(client, 1)
    data = client.get("/email/detect?email=ann@acme-widgets.com").get_json()
    assert (data["provider"], data["name"], data["source"]) == (
        "google", "Gmail / Google Workspace", "mx")  # fmt: skip
    assert data["smtp"]["host"] == "smtp.gmail.com"  # the provider's servers come along
    assert "tried" not in data  # the attempts are for admins (flask mailconnect detect)
    # The no-JS Continue step uses the same detection.
    page = client.get("/email/connect?email=bo@contoso-shop.com").get_data(as_text=True)
    assert 'value="smtp.office365.com"' in page
    assert client.get("/email/detect?email=nobody").get_json()["provider"] == "other"


def test_detect_endpoint_needs_sign_in(dns_server: DNSServer) -> None:
    app = make_app(dns_server)
    response = app.test_client().get("/email/detect?email=ann@acme-widgets.com")
    assert response.status_code in (302, 401)
    assert dns_server.queries == []
