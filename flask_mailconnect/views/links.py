"""Links built once and kept: ``url_for`` per link was a good part of a page's time.

:func:`link_pattern` splits a URL around its id, so that a page of rows (the admin lists, the
settings page's cards, one account's page) builds each kind of link with one ``url_for``;
:func:`cached_url` keeps a URL that is the same on every request (a stylesheet, a tab) per
app, request root, host and scheme. Neither caches where the host registered
``@url_defaults``: those may read anything, so every call then builds its URL.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Hashable, Mapping
from typing import Any, NamedTuple
from urllib.parse import quote

from flask import current_app, has_request_context, request, url_for
from markupsafe import Markup

#: Stands for the id while a link pattern is built: digits (every id converter takes them)
#: that no other part of our URLs contains.
_MARKER = 918273645546372819


class LinkPattern(NamedTuple):
    """A URL split around its id: ``head ~ id ~ tail``. Templates write
    ``{{ p.head }}{{ account.id }}{{ p.tail }}`` (two constants and an int: about a third of
    what a function call per link costs in Jinja); Python calls it."""

    head: Markup
    tail: Markup

    def __call__(self, ident: Any) -> Markup:
        # Text (an owner id) is quoted as one path segment; the Markup halves escape it.
        return (
            self.head
            + (str(ident) if isinstance(ident, int) else quote(ident, safe=""))
            + self.tail
        )

    def html(self, ident: Any) -> str:
        """:meth:`__call__` as a plain ``str``, for HTML written in Python: safe as it is (the
        halves are escaped; a quoted segment holds only ``%XX``, letters, digits and ``_.-~``)
        without the two ``Markup`` concatenations, which escape their operand again."""
        if isinstance(ident, int):
            segment = str(ident)
        elif isinstance(ident, str) and ident.isascii() and ident.isalnum():
            segment = ident  # what quote() would return: ASCII letters and digits only
        else:
            segment = quote(str(ident), safe="")
        return f"{self.head}{segment}{self.tail}"


class LinkMap(dict[Any, Markup]):
    """``{id: url}`` filled on first look-up from a :class:`LinkPattern`: templates may index
    it with any id on the page, and a page that does not (the rows are written in Python)
    builds no link it does not show."""

    def __init__(self, pattern: LinkPattern) -> None:
        super().__init__()
        self.pattern = pattern

    def __missing__(self, ident: Any) -> Markup:
        url = self[ident] = self.pattern(ident)
        return url


def link_pattern(endpoint: str, key: str, **values: Any) -> LinkPattern:
    """``url_for(endpoint, **{key: id}, **values)`` for many ids, from one ``url_for``: the
    URL is built once with a marker for the id and split around it (and kept: see
    :func:`cached_url`)."""
    return _cached(("pattern", endpoint, key), values, lambda: _pattern(endpoint, key, values))


def _pattern(endpoint: str, key: str, values: dict[str, Any]) -> LinkPattern:
    for marker in (_MARKER, *(_MARKER + n for n in range(1, 4))):
        url = url_for(endpoint, **{key: marker, **values})
        # Once, or a search term holding the marker's digits would cut the link elsewhere.
        if url.count(str(marker)) == 1:
            head, _, tail = url.partition(str(marker))
            return LinkPattern(Markup.escape(head), Markup.escape(tail))
    raise ValueError(f"{endpoint}: {key} is not in its URL once")


def page_url(key: str, cursor: int, args: Mapping[str, Any]) -> Markup:
    """The pager's link: ``url_for(request.endpoint, **{key: cursor}, **args)`` (``key``:
    ``after`` or ``before``), from a kept :func:`link_pattern`."""
    return link_pattern(str(request.endpoint), key, **args)(cursor)


def cached_url(endpoint: str, **values: Any) -> str:
    """``url_for(endpoint, **values)``, kept per app for the request's root, host and scheme
    (what else the URL depends on), so that the links every admin page repeats (its tabs,
    its stylesheet) are built once, not per request: ``url_for`` was a good part of a list
    page's time. Where the host registered ``@url_defaults`` (which may read anything), every
    call builds its URL."""
    return _cached(("url", endpoint), values, lambda: url_for(endpoint, **values))


#: Per app: ``{(what, request root, host, scheme, values): url or pattern}`` (bounded).
_urls: weakref.WeakKeyDictionary[Any, dict[Hashable, Any]] = weakref.WeakKeyDictionary()
_URLS_MAX = 1024
_urls_lock = threading.Lock()


def _cached(what: tuple[str, ...], values: dict[str, Any], build: Callable[[], Any]) -> Any:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if not has_request_context() or any(app.url_default_functions.values()):
        return build()
    if what[1].startswith("."):  # relative to the request's blueprint: not one URL per key
        return build()
    try:
        key = (*what, request.script_root, request.host, request.scheme,
               tuple(values.items()))  # fmt: skip  # in order: the query string keeps it
        hash(key)
    except TypeError:  # a value that cannot be a key: built every time
        return build()
    per_app = _urls.get(app)
    if per_app is None:
        with _urls_lock:  # threaded workers: WeakKeyDictionary writes one at a time
            per_app = _urls.setdefault(app, {})
    found = per_app.get(key)
    if found is None:
        found = build()
        if len(per_app) >= _URLS_MAX:  # a crafted Host header or many queries: start over
            per_app.clear()
        per_app[key] = found
    return found


#: One account's pages, by the name templates use (``links.disconnect``): account.html and
#: _recent_mail.html link to all of them.
ACCOUNT_PAGES = {
    "account": "mailconnect.account",
    "disconnect": "mailconnect.disconnect",
    "reconnect": "mailconnect.reconnect",
    "folders": "mailconnect.folders",
    "sync": "mailconnect.sync",
    "notifications": "mailconnect.notifications",
    "oauth_test": "mailconnect.oauth_test",
}


def account_links(account_id: int) -> dict[str, Markup]:
    """``{name: url}`` of :data:`ACCOUNT_PAGES` for one account, from patterns kept per app
    (one ``url_for`` per page kind for the process's life, not one per link and request)."""
    patterns: dict[str, LinkPattern] = _cached(
        ("account_links", "mailconnect.account"),
        {},
        lambda: {name: _pattern(ep, "account_id", {}) for name, ep in ACCOUNT_PAGES.items()},
    )
    return {name: pattern(account_id) for name, pattern in patterns.items()}
