"""One IMAP FETCH (:func:`fetch`) and its reader for the plain shapes servers send
(:func:`read_fetch`), in a fraction of imapclient's time.

imapclient's ``parse_fetch_response`` lexes every byte outside the literals one by one through
generators: for the sync's 50 messages that is about as much CPU as decoding their headers and
snippets (issue 13). :func:`read_fetch` gives the same mapping for the shape Dovecot, Gmail,
Outlook and Cyrus answer with, item by item: ``NAME number``, ``NAME "quoted"`` (no escapes),
``NAME NIL``, ``NAME (atom atom ...)`` (flags) and ``NAME {n}`` followed by a literal, where a
name is an atom with an optional ``[section]`` and ``<origin>``.

Anything else (escaped quotes, nested lists, an ENVELOPE or BODYSTRUCTURE, a number among the
flags, an unreadable INTERNALDATE) makes it return ``None`` for the whole response, and the
caller hands the response to imapclient's parser instead: never a different answer, only a
faster one when the shape is plain.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imapclient is imported where a mailbox is opened, not with the package
    from imapclient import IMAPClient

#: ``<seq> (`` opening one message's items (imaplib already took ``* `` and ``FETCH``).
_OPEN = re.compile(rb"(\d+) \(")
#: One item: its name, then exactly one of number (imapclient keeps ``0123`` as bytes: not read
#: here), quoted, NIL, list, or ``{n}`` at the end.
_ITEM = re.compile(
    rb"([A-Za-z][A-Za-z0-9.\-]*(?:\[[^\]\"{}]*\])?(?:<\d+>)?) "
    rb'(?:(0|[1-9]\d*)(?![0-9])|"([^"\\\r\n]*)"|(NIL)'
    rb'|\(([^()"{}\[\]%*\x00-\x1f\x7f]*)\)|\{(\d+)\}\Z)'
)
#: INTERNALDATE as RFC 3501 spells it: ``dd-Mon-yyyy hh:mm:ss +zzzz`` (day may be space-padded).
_DATE = re.compile(rb" ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)")
_MONTHS = {
    m: i for i, m in enumerate(b"jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)
}


#: Items whose value imapclient converts (a number, a date, an envelope, a body structure):
#: read here only in the plain forms :func:`_read` checks, never from a literal.
_CONVERTED = frozenset({b"UID", b"INTERNALDATE", b"ENVELOPE", b"BODY", b"BODYSTRUCTURE"})


class _Unusual(Exception):
    """The response is not of the plain shape: imapclient's parser reads it instead."""


def _internaldate(value: bytes) -> datetime:
    """An aware datetime, as imapclient's ``parse_to_datetime(value, normalise=False)``."""
    found = _DATE.fullmatch(value)
    month = _MONTHS.get(found.group(2).lower()) if found else None
    if found is None or month is None:
        raise _Unusual("INTERNALDATE")
    day, _, year, hour, minute, second, sign, tz_hours, tz_minutes = found.groups()
    offset = timedelta(hours=int(tz_hours), minutes=int(tz_minutes))
    if int(year) < 100 or (sign == b"-" and not offset):
        # The email package reads a year below 100 as two digits (0001: 2001) and "-0000" as
        # no zone at all (a naive time): imapclient's answers, left to it.
        raise _Unusual("INTERNALDATE")
    try:
        return datetime(
            int(year), month, int(day), int(hour), int(minute), int(second),
            tzinfo=timezone(-offset if sign == b"-" else offset),
        )  # fmt: skip
    except ValueError:  # 31-Feb and the like: imapclient's answer (None) is left to it
        raise _Unusual("INTERNALDATE") from None


def _value(found: re.Match[bytes]) -> Any:
    number, quoted, nil, listed, _ = found.groups()[1:]
    if number is not None:
        return int(number)
    if quoted is not None:
        return quoted
    if nil is not None:
        return None
    atoms = tuple(listed.split(b" ")) if listed else ()
    if any(not atom or atom.isdigit() for atom in atoms):
        raise _Unusual("list")  # imapclient would make numbers of these; empty: a double space
    return atoms


def _read(data: list[Any], by_uid: bool) -> dict[int, dict[bytes, Any]]:
    parsed: dict[int, dict[bytes, Any]] = {}
    item: dict[bytes, Any] | None = None  # the open message's items
    continued = False  # the last element ended on a literal: the next one carries on its item
    for element in data:
        if isinstance(element, tuple):
            if len(element) != 2 or not isinstance(element[0], bytes):
                raise _Unusual("element")
            text, literal = element
        elif isinstance(element, bytes):
            text, literal = element, None
        else:
            raise _Unusual("element")
        pos = 0
        if item is not None and not continued:
            raise _Unusual("line")  # a message's items ran over a line without a literal
        continued = False
        if item is None:
            opened = _OPEN.match(text)
            if opened is None:
                raise _Unusual("open")
            seq = int(opened.group(1))
            item = {b"SEQ": seq}
            pos = opened.end()
        while True:
            if text.startswith(b")", pos):
                if pos + 1 != len(text) or literal is not None:
                    raise _Unusual("close")
                key = item.get(b"UID", item[b"SEQ"]) if by_uid else item[b"SEQ"]
                if by_uid:
                    item.pop(b"UID", None)  # imapclient keys by it and leaves it out
                parsed.setdefault(int(key), {}).update(item)
                item = None
                break
            if pos == len(text):
                break
            if len(item) > 1:  # items after the first (SEQ is there from the start): one space
                if not text.startswith(b" ", pos):
                    raise _Unusual("space")
                pos += 1
            found = _ITEM.match(text, pos)
            if found is None:
                raise _Unusual("item")
            name = found.group(1).upper()
            if name in (b"ENVELOPE", b"BODY", b"BODYSTRUCTURE"):
                raise _Unusual(name.decode())  # imapclient builds objects of these
            if found.group(6) is not None:  # a literal follows this text
                if name in _CONVERTED or literal is None or len(literal) != int(found.group(6)):
                    raise _Unusual("literal")
                item[name] = literal
                literal = None
                continued = True
                pos = found.end()
                if pos != len(text):
                    raise _Unusual("literal")
                break
            value = _value(found)
            if name == b"INTERNALDATE" and value is not None:
                if not isinstance(value, bytes):
                    raise _Unusual("INTERNALDATE")
                value = _internaldate(value)
            elif name == b"UID" and not isinstance(value, int):
                raise _Unusual("UID")
            item[name] = value
            pos = found.end()
        if literal is not None:
            raise _Unusual("literal")
    if item is not None:
        raise _Unusual("unclosed")
    return parsed


def read_fetch(data: list[Any], by_uid: bool) -> dict[int, dict[bytes, Any]] | None:
    """``parse_fetch_response(data, normalise_times=False, uid_is_key=by_uid)`` for the plain
    shape (module doc): ``{uid or seq: {item name: value}}`` with ``SEQ`` added, or ``None``
    when the response is of another shape (then imapclient's parser must read it)."""
    try:
        return _read(data, by_uid)
    except _Unusual:
        return None


def fetch(client: IMAPClient, messages: str, items: Iterable[str], *, by_uid: bool) -> Any:
    """One ``[UID] FETCH <range> (<items>)``: ``{uid or seq: {item: value}}``.

    IMAPClient's ``fetch()`` keeps only the ids it was given one by one (a range such as
    ``11:*`` is not accepted), so the command is issued here; the answer is read by
    :func:`read_fetch` when of the plain shape, else by imapclient's parser (the
    same mapping). INTERNALDATE comes back aware (not converted to naive local time).
    """
    from imapclient.exceptions import IMAPClientError  # loaded with the client
    from imapclient.response_parser import parse_fetch_response

    parts = "(" + " ".join(items) + ")"
    # imaplib's own public commands (a BAD raises imaplib's error); IMAPClient offers no public
    # way to its imaplib connection, so that one attribute is the only private name used
    imap = client._imap
    typ, data = imap.uid("FETCH", messages, parts) if by_uid else imap.fetch(messages, parts)
    if typ != "OK":  # a NO, reported as IMAPClient reports its own commands' NO
        detail = data[0] if data else b""
        text = detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)
        raise IMAPClientError(f"fetch failed: {text}")
    plain = read_fetch(data, by_uid)
    return plain if plain is not None else parse_fetch_response(data, False, by_uid)


__all__ = ["fetch", "read_fetch"]
