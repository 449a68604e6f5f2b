"""Local peers for server detection, wired together: an https server with the tests' own CA
(ISP database, autoconfig / .well-known files, Autodiscover) and a DNS server, and the host
app configured to ask only them (private hosts allowed explicitly: they are on loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask

from tests import hostapp
from tests.peers.certs import TestCerts
from tests.peers.dns_server import DNSServer, Zone
from tests.peers.web_server import Route, WebServer, web_server

FIXTURES = Path(__file__).parent.parent / "clientconfig"
#: Microsoft's Autodiscover v2 answer for an address hosted on Microsoft 365 (wire format).
M365_ANSWER = (
    b'{"Protocol":"AutodiscoverV1",'
    b'"Url":"https://outlook.office365.com/autodiscover/autodiscover.svc"}'
)
#: ... and for one that is not (its error object).
NOT_M365_ANSWER = (
    b'{"ErrorCode":"InternalServerError","ErrorMessage":"Failed to find MX records for domain."}'
)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@dataclass
class DetectPeers:
    web: WebServer
    dns: DNSServer
    certs: TestCerts
    apps: list[Flask] = field(default_factory=list)

    def ispdb(self, domain: str, route: Route) -> None:
        self.web.routes[f"/ispdb/{domain}"] = route

    def autoconfig(self, domain: str, route: Route) -> None:
        self.web.routes[f"/autoconfig/{domain}/mail/config-v1.1.xml"] = route

    def well_known(self, domain: str, route: Route) -> None:
        self.web.routes[f"/wellknown/{domain}/.well-known/autoconfig/mail/config-v1.1.xml"] = route

    def autodiscover(self, email: str, route: Route) -> None:
        self.web.routes[f"/autodiscover/autodiscover.json/v1.0/{email}"] = route

    def config(self, **over: Any) -> dict[str, Any]:
        base = self.web.base
        return {
            "MAILCONNECT_DNS_NAMESERVERS": [self.dns.nameserver],
            "MAILCONNECT_ISPDB_URL": f"{base}/ispdb/",
            "MAILCONNECT_AUTOCONFIG_URLS": [
                f"{base}/autoconfig/{{domain}}/mail/config-v1.1.xml?emailaddress={{email}}",
                f"{base}/wellknown/{{domain}}/.well-known/autoconfig/mail/config-v1.1.xml",
            ],
            "MAILCONNECT_AUTODISCOVER_URL": (
                f"{base}/autodiscover/autodiscover.json/v1.0/{{email}}?Protocol=AutodiscoverV1"
            ),
            "MAILCONNECT_ALLOW_PRIVATE_HOSTS": True,  # the peers are on loopback
            "MAILCONNECT_CA_FILE": self.certs.ca_file,
            "MAILCONNECT_DETECT_TIMEOUT": 3.0,
            **over,
        }

    def app(self, database_url: str = "sqlite://", *, reset: bool = True, **over: Any) -> Flask:
        """A host app asking these peers (closed with them). ``reset=False``: another worker
        joining the database a first app set up."""
        app, _ext = hostapp.create_app(database_url, reset=reset, **self.config(**over))
        self.apps.append(app)
        return app

    def close_apps(self) -> None:
        for app in self.apps:
            with app.app_context():
                hostapp.db.session.remove()
                hostapp.db.engine.dispose()


@contextmanager
def detect_peers(certs: TestCerts, zone: Zone, **dns_options: Any) -> Iterator[DetectPeers]:
    with ExitStack() as stack:
        web = stack.enter_context(web_server(certs.server_context()))
        dns = DNSServer(zone, **dns_options)
        stack.callback(dns.close)
        peers = DetectPeers(web, dns, certs)
        stack.callback(peers.close_apps)
        yield peers
