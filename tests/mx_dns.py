"""A local DNS server answering MX queries, for the MX step of detection: tests/dns_detection/
(test_detection.py, test_admin_detect.py, whose ``dns_server`` fixture serves ``MX_ZONE``).

``LocalDNS`` is a UDP socket on 127.0.0.1 answering with dnspython's message API, so the
resolver speaks real DNS; ``make_app`` points the host app's ``MAILCONNECT_DNS_NAMESERVERS`` at
it. (tests/peers/dns_server.py is the fuller server the SRV and autoconfig tests use.)
"""

from __future__ import annotations

import socket
import threading
from typing import Any

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

from tests import hostapp

MX_ZONE = {
    "acme-widgets.com.": ["10 aspmx.l.google.com.", "20 alt1.aspmx.l.google.com."],
    "contoso-shop.com.": ["0 contoso-shop-com.mail.protection.outlook.com."],
    "small-biz.net.": ["1 mta5.am0.yahoodns.net."],
    "family-mail.org.": ["10 mx01.mail.icloud.com."],
    "own-server.org.": ["10 mail.own-server.org."],
}


class LocalDNS:
    """Answers MX queries from ``zone``; NXDOMAIN for other names. ``silent``: never answers."""

    def __init__(self, zone: dict[str, list[str]], silent: bool = False) -> None:
        self.zone = zone
        self.silent = silent
        self.queries: list[str] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            query = dns.message.from_wire(data)
            question = query.question[0]
            self.queries.append(question.name.to_text())
            if self.silent:
                continue
            response = dns.message.make_response(query)
            records = self.zone.get(question.name.to_text())
            if records and question.rdtype == dns.rdatatype.MX:
                response.answer.append(
                    dns.rrset.from_text(question.name, 300, "IN", "MX", *records)
                )
            elif not records:
                response.set_rcode(dns.rcode.NXDOMAIN)
            self.sock.sendto(response.to_wire(), addr)

    def close(self) -> None:
        self._stop.set()
        self.thread.join(timeout=2)
        self.sock.close()


def make_app(server: LocalDNS, **config: Any) -> Any:
    """The host app asking ``server`` for DNS; the web sources of detection are off here
    (tests/test_detect_sources.py runs them against a local https server)."""
    web_off = {"MAILCONNECT_ISPDB_URL": None, "MAILCONNECT_AUTOCONFIG_URLS": [],
               "MAILCONNECT_DETECT_AUTODISCOVER": False}  # fmt: skip
    app, _ext = hostapp.create_app(
        MAILCONNECT_DNS_NAMESERVERS=[f"127.0.0.1:{server.port}"], **{**web_off, **config}
    )
    return app
