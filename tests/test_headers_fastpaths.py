"""read_headers' shortcuts (the common Date form read without email.utils, one pass over the
headers, printable text not scanned for control characters) give the answers the general
path gives."""

from __future__ import annotations

import email.utils
import itertools
from datetime import datetime, timezone

from flask_mailconnect.transport.headers import parse_date, read_headers

ARRIVED = datetime(2024, 12, 31, 8, 0, tzinfo=timezone.utc)


def _general(text: str) -> datetime:
    """What email.utils reads, in UTC (no zone or -0000: UTC); the arrival date if nothing."""
    try:
        value = email.utils.parsedate_to_datetime(text)
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)
    except (TypeError, ValueError, IndexError, OverflowError):
        return ARRIVED


def test_common_dates_read_as_email_utils_reads_them() -> None:
    weekdays = ("Mon, ", "Sun, ", "")
    days = ("6", "06", "29", "31", "0", "32")
    months = ("Jan", "Feb", "Dec")
    years = ("2025", "2024", "1999")
    times = ("10:00:00", "23:59:59", "00:00", "24:00:00", "10:00:61")
    zones = ("+0000", "-0000", "+0100", "-0530", "+2359", "-2359", "+0099")
    for parts in itertools.product(weekdays, days, months, years, times, zones):
        weekday, rest = parts[0], " ".join(parts[1:])
        text = weekday + rest
        assert parse_date(text.encode(), ARRIVED) == _general(text), text
        assert parse_date(text.encode(), ARRIVED).tzinfo == timezone.utc, text


def test_dates_at_the_edges_of_the_range_keep_their_answers() -> None:
    assert parse_date(b"31 Dec 9999 23:59:59 -1200", ARRIVED) == ARRIVED
    assert parse_date(b"1 Jan 0001 00:00:00 +0100", ARRIVED) == datetime(
        2000, 12, 31, 23, tzinfo=timezone.utc
    )  # email.utils reads year 1 as 2001
    assert parse_date(b"6 Jan 0099 10:00:00 +0000", ARRIVED) == datetime(
        1999, 1, 6, 10, tzinfo=timezone.utc
    )  # a year under 100 is read as email.utils reads it
    assert parse_date(b"Mon, 6 Jan 2025 10:00:00 +2400", ARRIVED) == ARRIVED
    assert parse_date(b"Mon, 6 Jan 2025 10:00:00 +0100 (CET)", ARRIVED) == datetime(
        2025, 1, 6, 9, tzinfo=timezone.utc
    )
    assert parse_date(b"Mon, 6 jan 2025 10:00:00 GMT", ARRIVED) == datetime(
        2025, 1, 6, 10, tzinfo=timezone.utc
    )


def test_the_first_of_a_repeated_header_is_read_whatever_its_case() -> None:
    fields = read_headers(
        b"SUBJECT: first\r\nSubject: second\r\nfrom: A <a@example.com>\r\n"
        b"FROM: B <b@example.com>\r\nmessage-id: <one@x>\r\nMessage-ID: <two@x>\r\n"
        b"DATE: Mon, 6 Jan 2025 10:00:00 +0000\r\nDate: Tue, 7 Jan 2025 10:00:00 +0000\r\n\r\n"
    )
    assert (fields.subject, fields.sender, fields.message_id) == (
        "first", "A <a@example.com>", "<one@x>",
    )  # fmt: skip
    assert fields.date == datetime(2025, 1, 6, 10, tzinfo=timezone.utc)


def test_the_charset_comes_from_content_type_in_any_case_and_only_from_there() -> None:
    koi8 = "Привет".encode("koi8-r")
    declared = read_headers(b"content-type: text/plain; charset=koi8-r\r\nSubject: " + koi8)
    assert declared.subject == "Привет"
    undeclared = read_headers(b"Subject: " + koi8)  # no Content-Type: Windows-1252
    assert undeclared.subject == koi8.decode("cp1252")


def test_control_characters_go_and_printable_text_stays() -> None:
    fields = read_headers(b"Subject: a\x00b\x7fc\xc2\x85d\r\n\te  f\r\n\r\n")
    assert fields.subject == "abcd e f"
    plain = read_headers(b"Subject: Message 07 (re: [list] x=?y)\r\n\r\n")
    assert plain.subject == "Message 07 (re: [list] x=?y)"
