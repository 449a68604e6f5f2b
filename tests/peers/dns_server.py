"""A small authoritative DNS server on 127.0.0.1 (UDP) for the detection tests.

It speaks real DNS through dnspython's message API, so the resolver under test parses real
answers: SRV, MX, A, AAAA (any type dnspython knows, given as zone-file text). Names not in the
zone get NXDOMAIN; a known name without the asked type gets an empty answer (NOERROR, the
"no answer" case). Names in ``black_holes`` (or every name with ``silent``) are never
answered: the resolver waits until its own timeout. ``host="::1"`` listens on IPv6 loopback.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

#: name (absolute or not) -> [(type, rdata text), ...], e.g. ("SRV", "0 1 993 imap.x.net.")
Zone = dict[str, list[tuple[str, str]]]


def _absolute(name: str) -> str:
    return name.lower() if name.endswith(".") else name.lower() + "."


class DNSServer:
    def __init__(
        self,
        zone: Zone,
        *,
        black_holes: Iterable[str] = (),
        silent: bool = False,
        host: str = "127.0.0.1",
    ) -> None:
        self.zone = {_absolute(k): v for k, v in zone.items()}
        self.black_holes = {_absolute(n) for n in black_holes}
        self.silent = silent
        #: ("name.", "TYPE") of every query received, answered or not.
        self.queries: list[tuple[str, str]] = []
        self.host = host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.settimeout(0.1)
        self.port = int(self.sock.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def nameserver(self) -> str:
        """The ``MAILCONNECT_DNS_NAMESERVERS`` entry for this server."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def _answer(self, query: dns.message.Message) -> dns.message.Message | None:
        question = query.question[0]
        name = question.name.to_text().lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, rdtype))
        if self.silent or name in self.black_holes:
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        records = self.zone.get(name)
        if records is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
            return response
        texts = [text for kind, text in records if kind.upper() == rdtype]
        if texts:
            response.answer.append(dns.rrset.from_text(question.name, 60, "IN", rdtype, *texts))
        return response

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            try:
                response = self._answer(dns.message.from_wire(data))
            except dns.exception.DNSException:
                continue
            if response is not None:
                self.sock.sendto(response.to_wire(), addr)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


@contextmanager
def dns_server(zone: Zone, **kw: object) -> Iterator[DNSServer]:
    server = DNSServer(zone, **kw)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.close()
