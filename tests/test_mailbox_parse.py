"""The fast read of a fetched message (``transport.mailbox._parse``) gives what the email
package's compat32 feed parser gives: same headers, same payload, same snippet, for the
realistic corpus and for header blocks built to hit every edge of the fast path (folding,
bare LF, lone CR, envelope ``From `` lines, nameless fields, 8-bit bytes, multipart)."""

from __future__ import annotations

import email
import itertools
import random
from email import policy
from pathlib import Path

import pytest

from flask_mailconnect.transport import mailbox

CORPUS = sorted((Path(__file__).parent / "corpus").glob("*.eml"))

LINES = [
    b"From: Ann <ann@example.com>", b"Subject: hi", b" folded", b"\tfolded too", b"From x@y",
    b"From : y", b": no name", b"X-Empty:", b"X-Blank:   ", b"   ", b"bad line",
    b"Content-Type: multipart/mixed; boundary=b", b"Content-Type: message/rfc822",
    b"Content-Type: text/html; charset=utf-8", b"N\xe9: v", b"Subject: caf\xc3\xa9", b"",
    b"Content-Type: Multipart/Alternative", b"X:\x0bv", b"Content-Transfer-Encoding: base64",
]  # fmt: skip
ENDS = [b"\r\n", b"\r\n", b"\r\n", b"\n", b"\r"]
BODIES = [b"", b"body\r\nmore", b"--b\r\nX: y\r\n\r\nz\r\n--b--", b"\r\n\r\nx", b"SGVsbG8=\r\n"]


def shape(message: email.message.Message) -> list[dict]:
    """Every part's state (parts and defects compare by identity: their types are kept)."""
    return [
        {
            k: [type(d) for d in v] if k == "defects" else v
            for k, v in vars(part).items()
            if not (k == "_payload" and isinstance(v, list))
        }
        for part in message.walk()
    ]


def same_as_feed_parser(data: bytes) -> bool:
    """True when the fast path read ``data`` (and then exactly as the feed parser does)."""
    fast = mailbox._parse_simple(data)
    if fast is None:
        return False
    assert shape(fast) == shape(email.message_from_bytes(data, policy=policy.compat32)), data
    return True


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_corpus_messages_read_as_the_feed_parser_reads_them(path: Path) -> None:
    raw = path.read_bytes()
    crlf = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    same_as_feed_parser(raw)
    head, _, body = crlf.partition(b"\r\n\r\n")
    parsed = mailbox._parse(head + b"\r\n\r\n", body)
    reference = email.message_from_bytes(head + b"\r\n\r\n" + body, policy=policy.compat32)
    assert shape(parsed) == shape(reference)
    assert mailbox.make_snippet(head, body, parsed=parsed) == mailbox.make_snippet(
        head, body, parsed=reference
    )


def test_built_header_blocks_read_as_the_feed_parser_reads_them() -> None:
    rng = random.Random(13)
    fast = 0
    for _ in range(20000):
        lines = (rng.choice(LINES) + rng.choice(ENDS) for _ in range(rng.randint(0, 6)))
        data = b"".join(lines) + rng.choice([b"\r\n", b"\r\n\r\n", b""]) + rng.choice(BODIES)
        fast += same_as_feed_parser(data)
    assert fast > 500  # the fast path was taken often enough to mean something


def test_common_shape_takes_the_fast_path_and_others_do_not() -> None:
    simple = b"From: a@example.com\r\nSubject: x\r\n folded\r\n\r\nbody\r\n"
    assert same_as_feed_parser(simple)
    others = [
        simple.replace(b"\r\n", b"\n"),  # bare LF
        b"From a@example.com Mon Jan 6\r\n" + simple,  # envelope line
        b" lead\r\n" + simple,  # continuation first
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n",
        b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nx\r\n",
        b"\r\n" + simple,  # starts with the blank line
    ]
    for data in others:
        assert mailbox._parse_simple(data) is None
        mailbox._parse(data, b"")  # and the feed parser reads it


def test_each_header_line_combination_of_two() -> None:
    for a, b in itertools.product(LINES, repeat=2):
        same_as_feed_parser(a + b"\r\n" + b + b"\r\n\r\nbody")
