"""Signatures: what survives sanitising, and the plain-text twin recipients see."""

from __future__ import annotations

import pytest

from flask_mailconnect.signatures import sanitize_signature, signature_to_text


@pytest.mark.parametrize(
    ("hostile", "must_not_contain"),
    [
        ("<script>alert(1)</script>Jane", "<script"),
        ('<p onclick="steal()">Jane</p>', "onclick"),
        ('<a href="javascript:alert(1)">Jane</a>', "javascript:"),
        ('<a href=" JaVaScRiPt:alert(1)">Jane</a>', "alert"),
        ('<a href="data:text/html,<script>x</script>">Jane</a>', "data:"),
        ('<img src="https://tracker.example/pixel.gif">Jane', "tracker.example"),
        ('<img src="data:image/svg+xml;base64,PHN2Zz4=">Jane', "svg"),
        ('<p style="background:url(https://tracker.example/x)">Jane</p>', "tracker"),
        ("<iframe src='https://evil.example'></iframe>Jane", "iframe"),
        ("<!-- internal note -->Jane", "internal note"),
    ],
)
def test_hostile_markup_is_removed(hostile: str, must_not_contain: str) -> None:
    clean = sanitize_signature(hostile)
    assert must_not_contain.lower() not in clean.lower()
    assert "Jane" in clean


def test_formatting_links_and_embedded_images_are_kept() -> None:
    raw = (
        '<p><b>Jane Doe</b> · <i>Sales</i></p><p><a href="https://acme.example">Acme</a> '
        '<a href="mailto:jane@acme.example">jane@acme.example</a> '
        '<a href="tel:+15551234">+1 555 1234</a></p><img src="data:image/png;base64,iVBORw0KGgo=">'
    )
    clean = sanitize_signature(raw)
    kept = [
        "<b>Jane Doe</b>",
        "<i>Sales</i>",
        'href="https://acme.example"',
        'href="mailto:jane@acme.example"',
        'href="tel:+15551234"',
        'src="data:image/png;base64,iVBORw0KGgo="',
        'rel="noopener noreferrer"',
    ]
    assert [k for k in kept if k not in clean] == []


def test_plain_text_version_keeps_lines_links_and_lists() -> None:
    clean = sanitize_signature(
        "<p>Jane&nbsp;Doe<br>Sales</p><ul><li>one</li><li>two</li></ul>"
        '<a href="https://acme.example">Acme</a> <a href="mailto:j@acme.example">j@acme.example</a>'
    )
    assert signature_to_text(clean) == (
        "Jane Doe\nSales\n\n- one\n- two\nAcme <https://acme.example> j@acme.example"
    )
