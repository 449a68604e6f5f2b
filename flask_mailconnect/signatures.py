"""Signatures: rich HTML cleaned with nh3 against an allowlist, and a plain-text twin.

Why an allowlist and not a blocklist: a signature is pasted from anywhere (Word, Gmail, web
pages) and is later rendered in our pages and in recipients' mail clients.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

ALLOWED_TAGS = frozenset(
    {"a", "b", "strong", "i", "em", "u", "s", "br", "p", "div", "span", "small", "big",
     "ul", "ol", "li", "blockquote", "hr", "img", "table", "tbody", "thead", "tr", "td", "th",
     "font", "sub", "sup", "h1", "h2", "h3", "h4"}
)  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan", "align", "valign"},
    "th": {"colspan", "rowspan", "align", "valign"},
    "p": {"align"},
    "div": {"align"},
    "font": {"color", "size", "face"},
}
# Links may point to the web, an address or a phone number. Remote images are tracking pixels as
# often as logos, so an image must be embedded (data:image/...); data: is allowed nowhere else.
LINK_SCHEMES = ("http:", "https:", "mailto:", "tel:")
URL_SCHEMES = frozenset({"http", "https", "mailto", "tel"})
# Formats browsers render as images without running script (SVG can carry script: not listed).
IMAGE_DATA_PREFIXES = tuple(f"data:image/{kind};" for kind in ("png", "jpeg", "jpg", "gif", "webp"))


def _keep_attribute(tag: str, attribute: str, value: str) -> str | None:
    lowered = value.strip().lower()
    if tag == "img" and attribute == "src":
        return value if lowered.startswith(IMAGE_DATA_PREFIXES) else None
    if tag == "a" and attribute == "href":
        return value if lowered.startswith(LINK_SCHEMES) else None
    return value


def sanitize_signature(raw_html: str) -> str:
    """The signature as it will be stored and sent: only allowlisted tags, attributes and URLs."""
    import nh3  # its native module is loaded here, not at ``import flask_mailconnect`` (issue 13)

    cleaned = nh3.clean(
        raw_html or "",
        tags=set(ALLOWED_TAGS),
        attributes={k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES) | {"data"},
        attribute_filter=_keep_attribute,
        link_rel="noopener noreferrer",
        strip_comments=True,
    )
    return cleaned.strip()


_BLOCKS = {"p", "div", "tr", "h1", "h2", "h3", "h4", "blockquote", "table", "ul", "ol"}


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in _BLOCKS:
            self.parts.append("\n")
        elif tag == "a":
            self._href = dict(attrs).get("href")
        elif tag == "hr":
            self.parts.append("\n--\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCKS:
            self.parts.append("\n")
        elif tag == "a" and self._href:
            href, self._href = self._href, None
            text_so_far = "".join(self.parts)
            if href.removeprefix("mailto:") not in text_so_far[-len(href) - 2 :]:
                self.parts.append(f" <{href.removeprefix('mailto:')}>")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def signature_to_text(clean_html: str) -> str:
    """A readable plain-text version of a (sanitised) HTML signature for text/plain parts."""
    parser = _TextExtractor()
    parser.feed(clean_html or "")
    parser.close()
    text = html.unescape("".join(parser.parts)).replace("\xa0", " ")
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
