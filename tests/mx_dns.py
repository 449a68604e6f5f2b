"""The MX zone and host app of the detection tests in tests/dns_detection/ (test_detection.py,
test_admin_detect.py), whose ``dns_server`` fixture serves ``MX_ZONE`` with
tests/peers/dns_server.py's ``DNSServer``; ``make_app`` points the host app's
``MAILCONNECT_DNS_NAMESERVERS`` at it.
"""

from __future__ import annotations

from typing import Any

from tests import hostapp
from tests.peers.dns_server import DNSServer, Zone

MX_ZONE: Zone = {
    "acme-widgets.com.": [("MX", "10 aspmx.l.google.com."), ("MX", "20 alt1.aspmx.l.google.com.")],
    "contoso-shop.com.": [("MX", "0 contoso-shop-com.mail.protection.outlook.com.")],
    "small-biz.net.": [("MX", "1 mta5.am0.yahoodns.net.")],
    "family-mail.org.": [("MX", "10 mx01.mail.icloud.com.")],
    "own-server.org.": [("MX", "10 mail.own-server.org.")],
}


def make_app(server: DNSServer, **config: Any) -> Any:
    """The host app asking ``server`` for DNS; the web sources of detection are off here
    (tests/test_detect_sources.py runs them against a local https server)."""
    web_off = {"MAILCONNECT_ISPDB_URL": None, "MAILCONNECT_AUTOCONFIG_URLS": [],
               "MAILCONNECT_DETECT_AUTODISCOVER": False}  # fmt: skip
    app, _ext = hostapp.create_app(
        MAILCONNECT_DNS_NAMESERVERS=[server.nameserver], **{**web_off, **config}
    )
    return app
