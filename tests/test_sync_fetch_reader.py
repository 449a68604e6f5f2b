"""The sync's FETCH reader gives imapclient's answer, or steps aside for imapclient's parser.

Each response below is what imaplib hands over (``* `` and ``FETCH`` already taken off; a
literal as a ``(text, literal)`` pair). Plain shapes must come back equal to
``parse_fetch_response(data, normalise_times=False, uid_is_key=...)``; unusual ones must be
refused (``None``) so that imapclient's parser reads them.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from imapclient.response_parser import parse_fetch_response

from flask_mailconnect.transport.fetch_reader import read_fetch

HEADER = b"From: =?utf-8?q?J=C3=B6rg?= <j@example.com>\r\nSubject: Hi\r\n\r\n"
SECTION = b"BODY[HEADER.FIELDS (FROM SUBJECT DATE MESSAGE-ID)]"

PLAIN: dict[str, list[Any]] = {
    "dovecot order": [
        (
            b'11 (UID 41 FLAGS (\\Seen $Forwarded) INTERNALDATE "30-Nov-2026 16:38:03 +0000" '
            + SECTION
            + b" {%d}" % len(HEADER),
            HEADER,
        ),
        (b" BODY[TEXT]<0> {5}", b"Hello"),
        b")",
    ],
    "uid last, no flags, padded day, negative zone": [
        (b'3 (FLAGS () INTERNALDATE " 6-Jan-2025 09:05:00 -0330" ' + SECTION + b" {0}", b""),
        b" BODY[TEXT]<0> NIL UID 7)",
    ],
    "quoted body, lower-case names": [
        b'4 (uid 9 flags (\\Recent) internaldate "01-Feb-2024 00:00:00 +0100" '
        b'body[text]<0> "short")',
    ],
    "flags only, several messages and an unsolicited one": [
        b"1 (UID 5 FLAGS (\\Seen))",
        b"2 (UID 6 FLAGS (\\Answered \\Flagged))",
        b"2 (FLAGS (\\Deleted))",
    ],
    "INTERNALDATE NIL": [b"8 (UID 12 INTERNALDATE NIL)"],
}

UNUSUAL: dict[str, list[Any]] = {
    "escaped quote": [b'1 (UID 5 BODY[TEXT] "say \\"hi\\"")'],
    "nested list (BODYSTRUCTURE)": [b'1 (UID 5 BODYSTRUCTURE ("text" "plain" NIL))'],
    "number among flags": [b"1 (UID 5 FLAGS (\\Seen 42))"],
    "RFC 822 style INTERNALDATE": [b'1 (UID 5 INTERNALDATE "Mon, 6 Jan 2025 10:00:00 +0000")'],
    "impossible date": [b'1 (UID 5 INTERNALDATE "31-Feb-2025 10:00:00 +0000")'],
    "bare atom value": [b"1 (UID 5 X-THING abc)"],
    "number with a leading zero": [b"1 (UID 5 X-THING 0123)"],
    "lower-case nil": [b"1 (UID 5 BODY[TEXT] nil)"],
    "unclosed": [b"1 (UID 5 FLAGS (\\Seen)"],
    "empty answer": [None],
}


@pytest.mark.parametrize("by_uid", [False, True])
@pytest.mark.parametrize("name", sorted(PLAIN))
def test_plain_shapes_read_as_imapclient_reads_them(name: str, by_uid: bool) -> None:
    data = PLAIN[name]
    ours = read_fetch(data, by_uid)
    theirs = parse_fetch_response(data, False, by_uid)
    assert ours == dict(theirs)
    for key, items in ours.items():  # aware dates, the same instant and offset
        date = items.get(b"INTERNALDATE")
        if date is not None:
            assert date.utcoffset() == theirs[key][b"INTERNALDATE"].utcoffset()


@pytest.mark.parametrize("name", sorted(UNUSUAL))
def test_unusual_shapes_are_left_to_imapclient(name: str) -> None:
    assert read_fetch(UNUSUAL[name], by_uid=True) is None


# -- any response: the reader agrees with imapclient or steps aside ----------------------------

_NAMES = st.sampled_from(
    [b"UID", b"uid", b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE", b"BODY[TEXT]<0>", b"BODY[]",
     SECTION, b"BODY[HEADER]", b"X-GM-MSGID", b"MODSEQ", b"BODY", b"ENVELOPE"]
)  # fmt: skip
_ATOM = st.text(st.sampled_from("\\$Seen42AFlagged-%*0"), max_size=8).map(str.encode)
_DATE_TEXT = st.one_of(
    st.builds(
        lambda d, m, y, h, z: b"%2d-%s-%04d %02d:%02d:%02d %s" % (d, m, y, h, h, h, z),
        st.integers(0, 32), st.sampled_from([b"Jan", b"feb", b"MAR", b"Sep", b"Foo"]),
        st.integers(1, 9999), st.integers(0, 60),
        st.sampled_from([b"+0000", b"-0000", b"-0330", b"+2400", b"Z"]),
    ),
    st.binary(max_size=30),
)  # fmt: skip
_QUOTED = st.one_of(_DATE_TEXT, st.text(max_size=12).map(lambda t: t.encode("utf-8", "replace")))
_VALUE = st.one_of(
    st.integers(0, 2**40).map(lambda n: b"%d" % n),
    st.sampled_from([b"0123", b"NIL", b"nil", b"()", b"(())", b"abc"]),
    _QUOTED.map(lambda q: b'"' + q + b'"'),
    st.lists(_ATOM, max_size=4).map(lambda atoms: b"(" + b" ".join(atoms) + b")"),
)
_LITERAL = st.binary(max_size=40)


@st.composite
def _responses(draw: st.DrawFn) -> list[Any]:
    """What imaplib hands over for a FETCH: messages of items, literals as (text, literal)."""
    data: list[Any] = []
    plain = draw(st.booleans())  # half of them well formed, so that the reader reads them
    for _ in range(draw(st.integers(1, 3))):
        text = b"%d (" % draw(st.integers(0, 99))
        for index in range(draw(st.integers(0, 5))):
            if index:
                text += b" " if plain else draw(st.sampled_from([b" ", b"  ", b""]))
            name = draw(_NAMES)
            if draw(st.booleans()):
                literal = draw(_LITERAL)
                size = len(literal) + (0 if plain else draw(st.sampled_from([0, 1])))
                data.append((text + name + b" {%d}" % size, literal))
                text = b""
            else:
                text += name + b" " + draw(_VALUE)
        text += b")" if plain else draw(st.sampled_from([b")", b"", b"))"]))
        if text:
            data.append(text)
    return data


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "400")), deadline=None)
@given(data=_responses(), by_uid=st.booleans())
def test_any_response_reads_as_imapclient_reads_it_or_is_left_to_it(
    data: list[Any], by_uid: bool
) -> None:
    mine = read_fetch(data, by_uid)
    if mine is None:  # stepped aside: imapclient's parser reads it (or refuses it) alone
        return
    assert mine == parse_fetch_response(data, False, by_uid)  # it must not refuse what we read
