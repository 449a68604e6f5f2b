"""A throwaway certificate authority and certificates for the test servers (``cryptography``)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from example_app.certs import new_ca, new_server_cert, write_cert, write_key


@dataclass(frozen=True)
class TestCerts:
    """PEM files: the CA tests trust, a server cert it issued, and a self-signed outsider."""

    __test__ = False  # not a test class, despite the name

    ca_file: str
    cert_file: str
    key_file: str
    untrusted_cert_file: str
    untrusted_key_file: str

    def server_context(self, *, trusted: bool = True) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        if trusted:
            context.load_cert_chain(self.cert_file, self.key_file)
        else:
            context.load_cert_chain(self.untrusted_cert_file, self.untrusted_key_file)
        return context


def make_certs(directory: Path) -> TestCerts:
    """Write a CA, a CA-issued server cert for localhost/127.0.0.1/::1 and a self-signed one."""
    ca = new_ca("Flask-MailConnect Test CA", days=2)
    server_key, server_cert = new_server_cert(ca, days=2)
    rogue_key, rogue_cert = new_server_cert(None, days=2)  # self-signed: no CA vouches for it
    files = {
        "ca": directory / "ca.pem",
        "cert": directory / "server.pem",
        "key": directory / "server.key",
        "rogue_cert": directory / "untrusted.pem",
        "rogue_key": directory / "untrusted.key",
    }
    write_cert(ca[1], files["ca"])
    write_cert(server_cert, files["cert"])
    write_key(server_key, files["key"])
    write_cert(rogue_cert, files["rogue_cert"])
    write_key(rogue_key, files["rogue_key"])
    for path in files.values():
        path.chmod(0o644)  # Dovecot reads them as its own user
    return TestCerts(
        ca_file=str(files["ca"]),
        cert_file=str(files["cert"]),
        key_file=str(files["key"]),
        untrusted_cert_file=str(files["rogue_cert"]),
        untrusted_key_file=str(files["rogue_key"]),
    )
