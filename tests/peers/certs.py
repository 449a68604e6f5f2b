"""A throwaway certificate authority and certificates for the test servers (``cryptography``)."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


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


_NAMES = [
    x509.DNSName("localhost"),
    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    x509.IPAddress(ipaddress.ip_address("::1")),
]


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _builder(subject: x509.Name, issuer: x509.Name, public_key: object) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
    )


def make_certs(directory: Path) -> TestCerts:
    """Write a CA, a CA-issued server cert for localhost/127.0.0.1/::1 and a self-signed one."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("Flask-MailConnect Test CA")
    ca_cert = (
        _builder(ca_name, ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, signer):
        builder = (
            _builder(subject, issuer, key.public_key())
            .add_extension(x509.SubjectAlternativeName(_NAMES), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
        )
        if signer is ca_key:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
        return builder.sign(signer, hashes.SHA256())

    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = leaf(_name("localhost"), ca_name, server_key, ca_key)
    rogue_key = ec.generate_private_key(ec.SECP256R1())
    rogue_cert = leaf(_name("localhost"), _name("localhost"), rogue_key, rogue_key)

    pem = serialization.Encoding.PEM
    files = {
        "ca": directory / "ca.pem",
        "cert": directory / "server.pem",
        "key": directory / "server.key",
        "rogue_cert": directory / "untrusted.pem",
        "rogue_key": directory / "untrusted.key",
    }
    files["ca"].write_bytes(ca_cert.public_bytes(pem))
    files["cert"].write_bytes(server_cert.public_bytes(pem))
    _write_key(server_key, files["key"])
    files["rogue_cert"].write_bytes(rogue_cert.public_bytes(pem))
    _write_key(rogue_key, files["rogue_key"])
    for path in files.values():
        path.chmod(0o644)  # Dovecot reads them as its own user
    return TestCerts(
        ca_file=str(files["ca"]),
        cert_file=str(files["cert"]),
        key_file=str(files["key"]),
        untrusted_cert_file=str(files["rogue_cert"]),
        untrusted_key_file=str(files["rogue_key"]),
    )
