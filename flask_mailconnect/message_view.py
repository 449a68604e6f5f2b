"""One fetched message as the message page shows it: headers decoded, body made safe.

Pure (no Flask, no database, no network): :func:`render_message` takes the RFC 5322 bytes and
returns a :class:`MessageView`.

- Headers go through :mod:`.transport.headers`, the same decoding the recent-mail list uses
  (8-bit and unknown charsets, encoded words, comments), so the page and the list agree.
- The body is the HTML part when there is one (``multipart/alternative``), else the plain text
  part. Each part's bytes are decoded by its declared charset, then UTF-8, then Windows-1252:
  a wrong or unknown charset never raises and never shows U+FFFD boxes for a whole message.
- HTML is sanitised with nh3 (ammonia) against an allowlist fit for mail: formatting, tables,
  links (``rel="noopener noreferrer"``), a short list of harmless CSS properties (nothing that
  takes a URL, nothing that positions); scripts, styles sheets, forms, frames, event handlers
  and ``javascript:`` URLs are removed with their content.
- Links keep only ``#fragments`` and absolute http(s), mailto and tel URLs, read as a browser
  reads them (tabs and line breaks ignored, leading controls and spaces stripped): relative
  links would act on the host's own site with the person's session.
- nh3 is quadratic in nesting depth, so HTML is cut at :data:`HTML_LIMIT` characters and, when
  a linear scan finds it nested past :data:`MAX_DEPTH`, shown as its plain part or its text.
- Remote images (``http(s):`` sources) are replaced by a small inline placeholder unless
  ``show_images`` is true; ``cid:`` images (inline attachments) always are. No request leaves
  the browser for a blocked image: the page's Content-Security-Policy (views/messages.py)
  also refuses them.
- Attachments are listed by name, type and decoded size; nothing is downloadable.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message
from typing import Any

from .transport.headers import (
    clean_text,
    decode_bytes,
    decode_header_value,
    format_sender,
    parse_compat32,
    parse_date,
    text_codec,
)

#: Tags kept in a message body (their text is kept for any other tag).
TAGS = {
    "a", "abbr", "address", "b", "big", "blockquote", "br", "caption", "center", "cite",
    "code", "col", "colgroup", "dd", "del", "div", "dl", "dt", "em", "font", "h1", "h2", "h3",
    "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "ol", "p", "pre", "q", "s",
    "small", "span", "strike", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th",
    "thead", "tr", "tt", "u", "ul",
}  # fmt: skip
#: Removed together with their content.
REMOVED_WITH_CONTENT = {"script", "style", "title", "head", "template", "noscript", "iframe",
                        "object", "embed", "svg", "math", "form", "select", "textarea"}  # fmt: skip
ATTRIBUTES = {
    "*": {"style", "title", "dir", "lang", "align", "valign", "width", "height"},
    "a": {"href"},
    "img": {"src", "alt"},
    "font": {"color", "face", "size"},
    "table": {"border", "cellpadding", "cellspacing", "bgcolor"},
    "td": {"bgcolor", "colspan", "rowspan", "nowrap"},
    "th": {"bgcolor", "colspan", "rowspan", "nowrap"},
    "tr": {"bgcolor"},
    "col": {"span"},
    "colgroup": {"span"},
    "ol": {"start", "type"},
    "li": {"value"},
}
#: CSS properties kept in style attributes: none takes a URL or moves the box out of the page.
STYLE_PROPERTIES = {
    "background-color", "border", "border-bottom", "border-collapse", "border-color",
    "border-left", "border-radius", "border-right", "border-spacing", "border-style",
    "border-top", "border-width", "color", "direction", "display", "font", "font-family",
    "font-size", "font-style", "font-weight", "height", "letter-spacing", "line-height",
    "margin", "margin-bottom", "margin-left", "margin-right", "margin-top", "max-width",
    "min-width", "padding", "padding-bottom", "padding-left", "padding-right", "padding-top",
    "text-align", "text-decoration", "text-indent", "text-transform", "vertical-align",
    "white-space", "width", "word-break", "word-wrap",
}  # fmt: skip
#: cid: (inline attachments) is let through to the filter, which replaces it like a remote image.
URL_SCHEMES = {"http", "https", "mailto", "tel", "data", "cid"}
#: What a blocked image shows instead (a grey picture icon; inline, so nothing is requested).
BLOCKED_IMAGE = (
    "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='24' height='24' "
    "viewBox='0 0 24 24' fill='none' stroke='%2394a3b8' stroke-width='1.5'%3E%3Crect x='3' "
    "y='4' width='18' height='16' rx='2'/%3E%3Ccircle cx='9' cy='10' r='2'/%3E%3Cpath "
    "d='M21 17l-5-5-9 8'/%3E%3C/svg%3E"
)
#: Characters of a text body shown (a longer one is cut and says so).
TEXT_LIMIT = 500_000
#: Characters of an HTML body sanitised (a longer one is cut and says so): nh3's time grows
#: with the markup, and a 10 MB fetch must not hold a worker for seconds.
HTML_LIMIT = 1_000_000
#: Deepest tag nesting sanitised. nh3 (html5ever) is quadratic in nesting depth: 100,000
#: nested ``<div>`` take about 20 s. Deeper markup is shown as its text part (or its text).
MAX_DEPTH = 2_000
#: Schemes a link may keep (after :func:`_normalise_url`); anything else, relative links
#: included (``/logout``, the page's own ``?images=1``), is dropped. ``#fragments`` stay.
LINK_SCHEMES = ("http", "https", "mailto", "tel")
#: Elements that never hold content, and those the HTML parser closes by itself when a
#: sibling opens (``<p><p>`` are siblings): neither deepens the tree.
_FLAT_TAGS = frozenset({
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
    "source", "track", "wbr", "p", "li", "dt", "dd", "td", "th", "tr", "tbody", "thead",
    "tfoot", "option", "colgroup",
})  # fmt: skip
# [^<>]: an unclosed "<div <div ..." must not make every match scan to the end (quadratic).
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]*)[^<>]*>")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
#: What browsers strip from the start of a URL before reading its scheme (controls and space).
_LEADING_JUNK = "".join(map(chr, range(0x21)))


@dataclass(frozen=True)
class Attachment:
    name: str
    content_type: str
    size: int  #: decoded bytes


@dataclass(frozen=True)
class MessageView:
    """What the message page renders. ``html`` is sanitised markup (safe to mark safe)."""

    uid: int
    folder: str
    subject: str
    sender: str
    to: str
    cc: str
    reply_to: str
    date: datetime | None
    html: str | None
    text: str | None
    attachments: list[Attachment] = field(default_factory=list)
    blocked_images: int = 0  #: remote images replaced by the placeholder
    remote_images: int = 0  #: remote images in the body (shown or not)
    truncated: bool = False  #: the server's copy is bigger than what was fetched (or shown)
    simplified: bool = False  #: the HTML was too deeply nested: its text is shown instead


def _address_list(message: Message, name: str, charset: str | None) -> str:
    """Every address of the ``name`` headers, each formatted as the sender is (decoded names,
    comments removed); raw 8-bit bytes go through the same charset chain."""
    found = []
    for value in message.get_all(name) or []:
        for part in _split_addresses(str(value)):
            text = format_sender(part.strip().encode("utf-8", "surrogateescape"), charset)
            if text:
                found.append(text)
    return ", ".join(found)


def _split_addresses(text: str) -> list[str]:
    """Split on commas outside quotes, comments and angle brackets."""
    out: list[str] = []
    current: list[str] = []
    depth, quoted, angle = 0, False, False
    for char in text:
        if char == '"' and not depth:
            quoted = not quoted
        elif not quoted:
            if char == "(":
                depth += 1
            elif char == ")" and depth:
                depth -= 1
            elif char == "<" and not depth:
                angle = True
            elif char == ">" and not depth:
                angle = False
            elif char == "," and not (depth or angle):
                out.append("".join(current))
                current = []
                continue
        current.append(char)
    out.append("".join(current))
    return [p for p in out if p.strip()]


def _part_text(part: Message, fallback_charset: str | None) -> str:
    payload = part.get_payload(decode=True)
    raw = payload if isinstance(payload, bytes) else b""
    declared = part.get_content_charset()
    return decode_bytes(raw, declared if text_codec(declared) else None, fallback_charset)


def _filename(part: Message, charset: str | None) -> str:
    try:
        name = part.get_filename()
    except Exception:  # a broken RFC 2231 parameter: still listed, without its name
        name = None
    return decode_header_value(name, charset) if name else ""


def _has_name(part: Message) -> bool:
    try:
        return bool(
            part.get_param("name") or part.get_param("filename", None, "content-disposition")
        )
    except Exception:
        return False


def _parts(message: Message) -> tuple[Message | None, Message | None, list[Message]]:
    """(first HTML part, first plain part, attachments) outside attachments' own trees."""
    html_part = text_part = None
    attachments: list[Message] = []
    for part in message.walk():
        if part.is_multipart():
            continue
        kind = part.get_content_type()
        disposition = part.get_content_disposition()
        named = _has_name(part)
        is_text = kind in ("text/plain", "text/html")
        if disposition == "attachment" or not is_text or (named and disposition == "inline"):
            attachments.append(part)
        elif kind == "text/html" and html_part is None:
            html_part = part
        elif kind == "text/plain" and text_part is None:
            text_part = part
    return html_part, text_part, attachments


def _normalise_url(value: str) -> str:
    """The URL as a browser reads it: tabs and line breaks anywhere are ignored, and leading
    spaces and control characters (``"da&#x09;ta:"`` is ``data:``, ``" \\x01javascript:"``
    is ``javascript:``)."""
    value = value.replace("\t", "").replace("\r", "").replace("\n", "")
    return value.lstrip(_LEADING_JUNK)


def _safe_link(value: str) -> str | None:
    """``value`` normalised if it is a ``#fragment`` or an absolute http(s), mailto or tel
    URL, else None (the attribute is dropped). ``http:host/x`` (no ``//``) is relative to the
    page in a browser, so http(s) needs its ``//`` (``\\`` counts, as browsers read it)."""
    url = _normalise_url(value)
    if url.startswith("#"):
        return url
    found = _SCHEME.match(url)
    if not found or found.group(1).lower() not in LINK_SCHEMES:
        return None
    rest = url[found.end() :]
    if found.group(1).lower() in ("http", "https") and not re.match(r"[/\\]{2}[^/\\]", rest):
        return None
    return url


def nesting_depth(markup: str, stop: int = MAX_DEPTH) -> int:
    """How deep the tags of ``markup`` nest, counted in one linear pass (unclosed tags count;
    void elements and those the parser closes by itself do not). Stops counting past ``stop``.
    A trailing slash closes nothing: HTML parsers ignore it (``<div/>`` nests like ``<div>``)."""
    depth = deepest = 0
    for found in _TAG.finditer(markup):
        closing, name = found.groups()
        if name.lower() in _FLAT_TAGS:
            continue
        if closing:
            depth = max(depth - 1, 0)
            continue
        depth += 1
        if depth > deepest:
            deepest = depth
            if deepest > stop:
                break
    return deepest


def _markup_text(markup: str) -> str:
    """The text of markup without a parser (linear time): what the sanitiser would drop with
    its content (``<style>``, ``<script>``... up to their end tag, or to the end when
    unclosed, as a browser reads them) left out, tags removed, entities decoded."""
    kept: list[str] = []
    pos = 0
    while (opened := _HIDDEN_OPEN.search(markup, pos)) is not None:
        kept.append(markup[pos : opened.start()])
        # Each search starts past the last one's match: every character is read once.
        closed = re.compile(rf"</{opened.group(1)}\s*>", re.IGNORECASE).search(markup, opened.end())
        if closed is None:
            pos = len(markup)
            break
        pos = closed.end()
    kept.append(markup[pos:])
    return html.unescape(_ANY_TAG.sub("", "".join(kept)))


_HIDDEN_OPEN = re.compile(
    r"<(" + "|".join(sorted(REMOVED_WITH_CONTENT)) + r")(?=[\s/>])[^>]*>", re.IGNORECASE
)
_ANY_TAG = re.compile(r"<[^<>]*>")


class _ImageRewriter:
    """nh3's attribute filter: counts and replaces image sources (and drops risky values)."""

    def __init__(self, show_images: bool) -> None:
        self.show_images = show_images
        self.remote = 0
        self.blocked = 0

    def __call__(self, tag: str, attribute: str, value: str) -> str | None:
        if tag == "img" and attribute == "src":
            value = _normalise_url(value)
            lowered = value.strip().lower()
            if lowered.startswith(("http://", "https://", "//")):
                self.remote += 1
                if self.show_images and not lowered.startswith("//"):
                    return value
                self.blocked += 1
                return BLOCKED_IMAGE
            if lowered.startswith("data:image/") and not lowered.startswith("data:image/svg"):
                return value  # embedded in the message: no request
            self.blocked += 1
            return BLOCKED_IMAGE  # cid:, svg, anything else
        if attribute == "href":
            # data: links open documents the sanitiser never saw; relative ones act on the
            # host's own site (``/logout``) with the person's session.
            return _safe_link(value)
        if attribute == "style" and any(w in value.lower() for w in ("url(", "expression", "\\")):
            return None
        return value


def sanitize_html(markup: str, *, show_images: bool = False) -> tuple[str, int, int]:
    """Safe markup for a message body: ``(html, remote images, blocked images)``.

    At most :data:`HTML_LIMIT` characters; markup nested deeper than :data:`MAX_DEPTH` comes
    back as its text, escaped (:func:`render_message` shows the plain part instead).
    """
    markup = markup[:HTML_LIMIT]
    if nesting_depth(markup) > MAX_DEPTH:
        return html.escape(_markup_text(markup)), 0, 0
    return _sanitize(markup, show_images)


def _sanitize(markup: str, show_images: bool) -> tuple[str, int, int]:
    """:func:`sanitize_html` for markup already cut and scanned (by :func:`render_message`)."""
    import nh3  # the sanitiser loads its native module here: not at ``import flask_mailconnect``

    rewriter = _ImageRewriter(show_images)
    cleaned = nh3.clean(
        markup,
        tags=TAGS,
        clean_content_tags=REMOVED_WITH_CONTENT,
        attributes=ATTRIBUTES,
        attribute_filter=rewriter,
        url_schemes=URL_SCHEMES,
        filter_style_properties=STYLE_PROPERTIES,
        link_rel="noopener noreferrer nofollow",
        # Links leave the host's page in a new tab (the CRM stays where it was).
        set_tag_attribute_values={"a": {"target": "_blank"}},
        strip_comments=True,
    )
    return cleaned, rewriter.remote, rewriter.blocked


def render_message(
    raw: bytes,
    *,
    uid: int,
    folder: str,
    arrived: datetime | None = None,
    show_images: bool = False,
    truncated: bool = False,
) -> MessageView:
    """Parse and make safe one message (see the module doc). Never raises on bad mail."""
    message = parse_compat32(raw)
    try:
        charset = text_codec(message.get_content_charset())
    except Exception:
        charset = None

    def header(name: str) -> Any:
        for key, value in message.raw_items():
            if key.lower() == name:
                return str(value).encode("utf-8", "surrogateescape")
        return None

    html_part, text_part, attached = _parts(message)
    body_html = body_text = None
    remote = blocked = 0
    simplified = False
    markup = clean_text(_part_text(html_part, charset)) if html_part is not None else None
    if markup is not None and len(markup) > HTML_LIMIT:
        markup, truncated = markup[:HTML_LIMIT], True
    if markup is not None and nesting_depth(markup) > MAX_DEPTH:
        # Too deep for nh3 to finish in time: the text part, else the markup's own text.
        simplified = True
        if text_part is not None:
            body_text = clean_text(_part_text(text_part, charset))
        else:
            body_text = _markup_text(markup)
        body_text = body_text[:TEXT_LIMIT]
    elif markup is not None:
        body_html, remote, blocked = _sanitize(markup, show_images)
    elif text_part is not None or not message.is_multipart():
        body_text = clean_text(_part_text(text_part or message, charset))[:TEXT_LIMIT]
    attachments = []
    for part in attached:
        payload = part.get_payload(decode=True)
        attachments.append(
            Attachment(
                name=_filename(part, charset) or "(no name)",
                content_type=part.get_content_type(),
                size=len(payload) if isinstance(payload, bytes) else 0,
            )
        )
    return MessageView(
        uid=uid,
        folder=folder,
        subject=decode_header_value(header("subject"), charset),
        sender=format_sender(header("from"), charset),
        to=_address_list(message, "to", charset),
        cc=_address_list(message, "cc", charset),
        reply_to=_address_list(message, "reply-to", charset),
        date=parse_date(header("date"), arrived),
        html=body_html,
        text=body_text,
        attachments=attachments,
        blocked_images=blocked,
        remote_images=remote,
        truncated=truncated,
        simplified=simplified,
    )


def as_text(view: MessageView) -> str:
    """The body as plain text (for hosts that show a preview); HTML reduced to its text."""
    if view.text is not None:
        return view.text
    import nh3  # as in _sanitize: loaded when HTML is first cleaned

    return html.unescape(nh3.clean(view.html or "", tags=set()))


__all__ = ["Attachment", "MessageView", "as_text", "render_message", "sanitize_html"]
