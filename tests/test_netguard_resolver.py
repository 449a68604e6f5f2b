"""The resolver threads behind resolve_guarded: reused between lookups (a thread start per
connection cost every sync), yet a hung lookup still delays no other and is cut at its timeout."""

from __future__ import annotations

import socket
import threading

import pytest

from flask_mailconnect.exceptions import ConnectionFailed
from flask_mailconnect.transport.netguard import resolve_guarded


def _answer(port: int) -> list[tuple]:
    return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]


def test_consecutive_lookups_reuse_one_resolver_thread(monkeypatch) -> None:
    threads: list[threading.Thread] = []

    def fake_getaddrinfo(host, port, *args, **kwargs):
        threads.append(threading.current_thread())
        return _answer(port)

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    for _ in range(3):
        [address] = resolve_guarded("mail.example.test", 993, allow_private=False, timeout=2)
        assert (address.ip, address.port) == ("93.184.216.34", 993)
    assert threads[0] is not threading.current_thread()  # the timeout needs another thread
    assert threads[1] is threads[0] and threads[2] is threads[0]


def test_a_hung_lookup_does_not_hold_up_the_next_one(monkeypatch) -> None:
    release = threading.Event()

    def fake_getaddrinfo(host, port, *args, **kwargs):
        if host == "hung.example.test":
            release.wait(10)
            raise socket.gaierror("late")
        return _answer(port)

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    try:
        with pytest.raises(ConnectionFailed) as info:
            resolve_guarded("hung.example.test", 993, allow_private=False, timeout=0.2)
        assert info.value.code == "timeout"
        # The hung thread is still resolving: this lookup must get a thread of its own.
        [address] = resolve_guarded("mail.example.test", 993, allow_private=False, timeout=5)
        assert address.ip == "93.184.216.34"
    finally:
        release.set()


def test_errors_come_back_from_a_reused_thread(monkeypatch) -> None:
    def fake_getaddrinfo(host, port, *args, **kwargs):
        if host == "missing.example.test":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return _answer(port)

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    resolve_guarded("mail.example.test", 993, allow_private=False, timeout=2)
    with pytest.raises(ConnectionFailed) as info:
        resolve_guarded("missing.example.test", 993, allow_private=False, timeout=2)
    assert info.value.code == "host_not_found"
    [address] = resolve_guarded("mail.example.test", 993, allow_private=False, timeout=2)
    assert address.ip == "93.184.216.34"
