"""Thunderbird's clientConfig v1.1 (the ISP database's and ``autoconfig`` files' format).

Parsed with ``defusedxml`` (no entities, no external references: the document comes from a
host anyone could run). From one ``emailProvider`` we keep one incoming and one outgoing
server: IMAP over POP3 (POP3 alone is noted, not offered: we read mail over IMAP), and SSL over
STARTTLS over plain. ``authentication`` values map to ``password`` (``password-cleartext``,
``password-encrypted``, ``plain``, ``secure``) or ``oauth2`` (``OAuth2``); a server that lists
only methods we cannot speak (NTLM, GSSAPI, client certificates...) is skipped. Unknown
elements are ignored, as the format asks. Host names may use only ``%EMAILDOMAIN%`` and must
be real host names (:func:`.names.is_host`); a login longer than an address or holding a
control character is dropped (the person types it).

Reference: https://wiki.mozilla.org/Thunderbird:Autoconfiguration:ConfigFileFormat
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .model import Auth, DetectedServer, Finding, fill
from .names import clean_login, is_host

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

_SECURITY = {"ssl": "ssl", "tls": "ssl", "starttls": "starttls", "plain": "none"}
_SECURITY_RANK = {"ssl": 0, "starttls": 1, "none": 2}
_AUTH = {
    "password-cleartext": "password",
    "plain": "password",
    "password-encrypted": "password",
    "secure": "password",
    "oauth2": "oauth2",
}


class ClientConfigError(ValueError):
    """The document is not a usable clientConfig (malformed XML, no server we can use)."""


def _text(node: Element, name: str) -> str:
    found = node.find(name)
    return (found.text or "").strip() if found is not None else ""


def _server(node: Element, domain: str) -> tuple[DetectedServer, str, tuple[Auth, ...]] | None:
    """(server, username template, auth methods) of one ``*Server`` element, or ``None``."""
    # Only %EMAILDOMAIN% fits a host name: the local part is the person's, not a server's.
    host = fill(_text(node, "hostname"), f"x@{domain}", allowed=("EMAILDOMAIN",))
    security = _SECURITY.get(_text(node, "socketType").lower())
    try:
        port = int(_text(node, "port"))
    except ValueError:
        return None
    if not host or not is_host(host) or security is None or not 0 < port < 65536:
        return None
    methods = [(m.text or "").strip().lower() for m in node.findall("authentication")]
    auth: list[Auth] = []
    for method in methods or ["password-cleartext"]:
        mapped = _AUTH.get(method)
        if mapped is not None and mapped not in auth:
            auth.append(mapped)  # type: ignore[arg-type]
    if not auth:
        return None
    server = DetectedServer(host.lower().rstrip("."), port, security)  # type: ignore[arg-type]
    return server, clean_login(_text(node, "username")) or "", tuple(auth)


def _best(
    candidates: list[tuple[DetectedServer, str, tuple[Auth, ...]]],
) -> tuple[DetectedServer, str, tuple[Auth, ...]] | None:
    # Stable sort: among equals, the document's order (its author's preference) stands.
    ranked = sorted(candidates, key=lambda c: _SECURITY_RANK[c[0].security])
    return ranked[0] if ranked else None


def _provider_element(root: Element, domain: str) -> Element:
    providers = root.findall("emailProvider")
    if not providers:
        raise ClientConfigError("no emailProvider element")
    # A file may describe several providers: the one listing the domain, else the first.
    for provider in providers:
        listed = {(d.text or "").strip().lower() for d in provider.findall("domain")}
        if domain in listed:
            return provider
    return providers[0]


def parse_client_config(data: bytes, *, domain: str, source: str, origin: str = "") -> Finding:
    """The servers a clientConfig document gives for ``domain``; ``ClientConfigError`` when it
    is malformed or offers nothing usable. The username keeps its placeholders (filled per
    address later): one parsed answer serves the whole domain."""
    import defusedxml.ElementTree as SafeET  # with the first clientConfig answer, not at start-up
    from defusedxml import DefusedXmlException

    try:
        root: Any = SafeET.fromstring(data)
    except (SafeET.ParseError, DefusedXmlException, ValueError) as exc:
        raise ClientConfigError(f"not XML: {exc}") from None
    if root.tag != "clientConfig":
        raise ClientConfigError(f"root element is {root.tag!r}, not clientConfig")
    provider = _provider_element(root, domain)
    incoming = {"imap": [], "pop3": []}  # type: dict[str, list[Any]]
    for node in provider.findall("incomingServer"):
        kind = (node.get("type") or "").lower()
        found = _server(node, domain)
        if kind in incoming and found is not None:
            incoming[kind].append(found)
    outgoing = [
        found
        for node in provider.findall("outgoingServer")
        if (node.get("type") or "").lower() == "smtp" and (found := _server(node, domain))
    ]
    imap, smtp = _best(incoming["imap"]), _best(outgoing)
    if imap is None and smtp is None:
        raise ClientConfigError("no IMAP or SMTP server that can be used")
    # The login: the incoming server's, else the outgoing server's; empty means unknown.
    username = next((c[1] for c in (imap, smtp) if c is not None and c[1]), None)
    auth: list[Auth] = []
    for chosen in (imap, smtp):
        for method in chosen[2] if chosen else ():
            if method not in auth:
                auth.append(method)
    return Finding(
        source=source,
        smtp=smtp[0] if smtp else None,
        imap=imap[0] if imap else None,
        username=username,
        auth=tuple(auth),
        display_name=_text(provider, "displayName")[:200],
        pop3_only=imap is None and bool(incoming["pop3"]),
        origin=origin,
    )
