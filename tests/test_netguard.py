"""The network guard: which addresses and ports are refused; we connect where we checked."""

from __future__ import annotations

import dataclasses
import ipaddress
import socket

import pytest

from flask_mailconnect.exceptions import ConnectionFailed
from flask_mailconnect.transport import netguard
from flask_mailconnect.transport.netguard import (
    check_port,
    connect_guarded,
    is_public_ip,
    resolve_guarded,
)
from flask_mailconnect.transport.smtp import check_smtp
from tests.peers.settings import peer_settings

BLOCKED = [
    "127.0.0.1",
    "127.1.2.3",
    "::1",
    "10.0.0.1",
    "172.16.0.1",
    "172.31.255.254",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "fe80::1",
    "100.64.0.1",
    "100.127.255.254",
    "fc00::1",
    "fd12:3456::1",
    "0.0.0.0",
    "::",
    "224.0.0.1",
    "ff02::1",
    "255.255.255.255",
    "240.0.0.1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "::7f00:1",  # IPv4-compatible 127.0.0.1
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
]

PUBLIC = ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "2a00:1450:4001:80b::200e"]


@pytest.mark.parametrize("ip", BLOCKED)
def test_non_public_addresses_are_refused(ip: str) -> None:
    assert not is_public_ip(ipaddress.ip_address(ip))
    with pytest.raises(ConnectionFailed) as info:
        resolve_guarded(ip, 587, allow_private=False, timeout=2)
    assert info.value.code == "blocked_address"


@pytest.mark.parametrize("ip", ["[::1]", "[::ffff:127.0.0.1]"])
def test_bracketed_ipv6_literals_are_checked_too(ip: str) -> None:
    with pytest.raises(ConnectionFailed) as info:
        resolve_guarded(ip, 587, allow_private=False, timeout=2)
    assert info.value.code == "blocked_address"


def test_localhost_name_is_refused() -> None:
    with pytest.raises(ConnectionFailed) as info:
        resolve_guarded("localhost", 587, allow_private=False, timeout=2)
    assert info.value.code == "blocked_address"


@pytest.mark.parametrize("ip", PUBLIC)
def test_public_addresses_are_accepted(ip: str) -> None:
    assert is_public_ip(ipaddress.ip_address(ip))
    [address] = resolve_guarded(ip, 993, allow_private=False, timeout=2)
    assert (address.ip, address.port) == (ip, 993)
    expected = socket.AF_INET6 if ":" in ip else socket.AF_INET
    assert address.family == expected


def test_public_ipv4_inside_ipv6_forms_is_accepted() -> None:
    # Only the embedded IPv4 decides: a NAT64 / mapped form of a public address is fine.
    assert is_public_ip(ipaddress.ip_address("64:ff9b::5db8:d822"))
    assert is_public_ip(ipaddress.ip_address("::ffff:93.184.216.34"))


def test_private_hosts_allowed_when_configured() -> None:
    [address] = resolve_guarded("127.0.0.1", 25, allow_private=True, timeout=2)
    assert address.ip == "127.0.0.1"


def test_a_name_resolving_to_a_private_address_is_refused(monkeypatch) -> None:
    def fake_getaddrinfo(host, port, *args, **kwargs):
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    with pytest.raises(ConnectionFailed) as info:
        resolve_guarded("mail.example.test", 587, allow_private=False, timeout=2)
    assert info.value.code == "blocked_address"


def test_unknown_host_is_host_not_found(monkeypatch) -> None:
    def fake_getaddrinfo(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    with pytest.raises(ConnectionFailed) as info:
        resolve_guarded("no-such-host.invalid", 587, allow_private=False, timeout=2)
    assert info.value.code == "host_not_found"


def test_slow_dns_is_cut_at_the_timeout(monkeypatch) -> None:
    import threading
    import time

    release = threading.Event()

    def slow_getaddrinfo(*args, **kwargs):
        release.wait(5)
        raise socket.gaierror("late")

    monkeypatch.setattr(socket, "getaddrinfo", slow_getaddrinfo)
    started = time.monotonic()
    try:
        with pytest.raises(ConnectionFailed) as info:
            resolve_guarded("slow.example.test", 587, allow_private=False, timeout=0.3)
    finally:
        release.set()
    assert info.value.code == "timeout"
    assert time.monotonic() - started < 1.5


def test_port_allowlist() -> None:
    check_port(587, (25, 465, 587), "smtp")
    check_port(2526, None, "smtp")  # None allows any port
    for port in (22, 6379, 0, 70000):
        with pytest.raises(ConnectionFailed) as info:
            check_port(port, (25, 465, 587), "smtp")
        assert info.value.code == "port_not_allowed"


def test_check_smtp_refuses_a_port_outside_the_allowlist(smtp_starttls, peer_options) -> None:
    settings = peer_settings(smtp_starttls, host=smtp_starttls.host)
    options = dataclasses.replace(peer_options, smtp_ports=(587,))
    result = check_smtp(settings, options)
    assert result.code == "port_not_allowed"
    assert smtp_starttls.connections == 0


def test_connects_to_the_checked_address_and_resolves_once(monkeypatch) -> None:
    """DNS rebinding: a second lookup would answer with another address; there must not be one."""
    good = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    good.bind(("127.0.0.1", 0))
    good.listen(4)
    port = good.getsockname()[1]
    calls: list[str] = []

    def rebinding_getaddrinfo(host, port_, *args, **kwargs):
        calls.append(host)
        ip = "127.0.0.1" if len(calls) == 1 else "127.0.0.2"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port_))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_getaddrinfo)
    try:
        sock = connect_guarded("rebind.example.test", port, allow_private=True, timeout=2)
        with sock:
            assert sock.getpeername() == ("127.0.0.1", port)
            accepted, _ = good.accept()
            accepted.close()
    finally:
        good.close()
    assert calls == ["rebind.example.test"]


def test_connect_guarded_refused_port() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound but not listening: connections are refused
        with pytest.raises(ConnectionFailed) as info:
            connect_guarded("127.0.0.1", port, allow_private=True, timeout=2)
    assert info.value.code == "refused"


def test_guard_on_blocks_loopback_smtp_before_any_connection(smtp_starttls, peer_options) -> None:
    settings = peer_settings(smtp_starttls)
    guarded = dataclasses.replace(peer_options, allow_private_hosts=False)
    result = check_smtp(settings, guarded)
    assert (result.ok, result.code) == (False, "blocked_address")
    assert smtp_starttls.connections == 0
    # Reachable once private hosts are allowed (peer_options): the guard made the difference.
    assert check_smtp(settings, peer_options).ok
    assert smtp_starttls.connections >= 1  # aiosmtpd counts the STARTTLS upgrade again


def test_failure_helper_uses_generic_wording() -> None:
    exc = netguard.failure("blocked_address", "x")
    assert exc.code == "blocked_address" and "private" in exc.message
