"""Provider presets, host-declared providers and detection by domain."""
# ruff: noqa: E501  (the preset table reads best one provider per line)

from __future__ import annotations

import pytest

from flask_mailconnect.exceptions import ProviderConfigError
from flask_mailconnect.providers import Catalog, Provider, build_catalog
from tests import hostapp


def detect_provider(email: str, catalog: Catalog | None = None) -> Provider:
    """Detection by domain alone (the MX step has its own tests: tests/dns_detection/)."""
    catalog = catalog or build_catalog({})
    domain = email.rpartition("@")[2]
    return catalog.for_domain(domain) or catalog.require("other")


@pytest.mark.parametrize(
    ("email", "key", "smtp", "imap"),
    [
        ("jane@gmail.com", "google", ("smtp.gmail.com", 587, "starttls"), ("imap.gmail.com", 993)),
        ("Jane@GoogleMail.com", "google", ("smtp.gmail.com", 587, "starttls"), ("imap.gmail.com", 993)),
        ("j@outlook.com", "outlook", ("smtp-mail.outlook.com", 587, "starttls"), ("outlook.office365.com", 993)),
        ("j@hotmail.com", "outlook", ("smtp-mail.outlook.com", 587, "starttls"), ("outlook.office365.com", 993)),
        ("j@yahoo.com", "yahoo", ("smtp.mail.yahoo.com", 465, "ssl"), ("imap.mail.yahoo.com", 993)),
        ("j@icloud.com", "icloud", ("smtp.mail.me.com", 587, "starttls"), ("imap.mail.me.com", 993)),
        ("j@me.com", "icloud", ("smtp.mail.me.com", 587, "starttls"), ("imap.mail.me.com", 993)),
    ],
)  # fmt: skip
def test_presets_fill_servers_from_the_domain(email, key, smtp, imap) -> None:
    preset = detect_provider(email)
    assert preset.key == key
    assert (preset.smtp.host, preset.smtp.port, preset.smtp.security) == smtp
    assert (preset.imap.host, preset.imap.port) == imap
    assert preset.login_for(email) == email  # login defaults to the full address


@pytest.mark.parametrize("email", ["x@example.com", "x@gmail.com.evil.example", "x@mygmail.com"])
def test_unknown_or_lookalike_domains_are_other(email: str) -> None:
    assert detect_provider(email).key == "other"


DECLARED = {
    "acme": {
        "name": "Acme Mail",
        "smtp": {"host": "smtp.acme.example", "port": 465, "security": "ssl"},
        "imap": {"host": "imap.acme.example", "port": 993, "security": "ssl"},
        "domains": ["acme.example", "gmail.com"],
        "login_format": "local_part",
    }
}


def test_declared_providers_win_detection_and_are_offered_before_other() -> None:
    presets = build_catalog({"MAILCONNECT_PROVIDERS": DECLARED})
    keys = [p.key for p in presets]
    assert keys[0] == "acme" and keys[-1] == "other"
    acme = detect_provider("jane@acme.example", presets)
    assert acme.name == "Acme Mail" and acme.smtp.port == 465
    assert acme.login_for("jane@acme.example") == "jane"
    assert detect_provider("jane@gmail.com", presets).key == "acme"  # declared beats preset


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "No servers"}, "needs an 'smtp' server"),
        ({"smtp": {"host": "s.example", "port": "587", "security": "starttls"}}, "port"),
        ({"smtp": {"host": "s.example", "port": 587, "security": "tls"}}, "security"),
        ({"smtp": {"host": "s.example", "port": 587, "security": "ssl"}, "login_format": "x"},
         "login_format"),
    ],
)  # fmt: skip
def test_a_broken_declared_provider_fails_at_start_up(entry, message) -> None:
    with pytest.raises(ProviderConfigError, match=message):
        hostapp.create_app(MAILCONNECT_PROVIDERS={"broken": entry})
