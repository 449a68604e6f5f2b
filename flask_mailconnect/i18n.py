"""Translating the words people read: the gettext domain ``flask_mailconnect``.

Flask-Babel is optional. When it is installed *and* initialised on the current app
(``"babel" in app.extensions``), strings are looked up in the catalogues shipped in
``flask_mailconnect/translations`` for the locale the host's selector picks; otherwise they pass
through unchanged. Either way ``%(name)s`` placeholders are filled the same way, so a page reads
the same in English with or without Flask-Babel.

Our own domain, never the host's ``messages``: the host's catalogues cannot clash with ours, and
a host overrides one of our strings by shipping its own ``flask_mailconnect.po`` (see
docs/translations.rst). Templates call :func:`gettext` as ``_mc`` (not ``_``, which belongs to
the host's layout our pages extend).

The bottom layer: it imports nothing of the package, so every module may use it.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from typing import Any

from flask import current_app, has_app_context
from flask.globals import _cv_app
from markupsafe import Markup, escape

try:  # optional dependency (the ``babel`` extra); deferred imports would hide a missing one
    from flask_babel import Domain, get_locale
except ImportError:  # pragma: no cover - the suite installs it; an app without Babel passes through
    Domain = get_locale = None

#: The gettext domain of every catalogue here (``<locale>/LC_MESSAGES/flask_mailconnect.mo``).
DOMAIN = "flask_mailconnect"
#: Where the catalogues live, inside the package (shipped compiled in the wheel).
TRANSLATIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "translations")

# One Domain per set of directories (in practice one per host app): each caches the catalogues
# it loaded per locale, so a request costs a dictionary lookup.
_domains: dict[tuple[str, ...], tuple[Any, dict[Any, Any]]] = {}


def _translations() -> Any:
    """The catalogue for the request's locale, or ``None`` where the host has no Flask-Babel:
    without it there is no locale to pick, so the English source text is the text.

    Ours first, then the host's ``BABEL_TRANSLATION_DIRECTORIES``: a host that ships its own
    ``<locale>/LC_MESSAGES/flask_mailconnect.mo`` there overrides the strings it contains
    (Babel's merge lets the later catalogue win) and keeps ours for the rest.
    """
    # Every _mc in a template lands here (dozens a page): the app context straight from its
    # context variable (``current_app`` is a proxy, several times slower), and the answer kept
    # on that context for as long as the locale object stays the same. Flask-Babel's
    # force_locale swaps the object, so a forced locale is never answered from this cache; a
    # new request is a new context, so nothing carries over between requests.
    ctx = _cv_app.get(None)
    if ctx is None or Domain is None:
        return None
    babel = ctx.app.extensions.get("babel")
    if babel is None:
        return None
    locale = get_locale()
    kept = getattr(ctx, _CTX_KEY, None)
    if kept is not None and kept[0] is locale and kept[1] is babel:
        return kept[2]
    found = _catalogue(babel, locale)
    setattr(ctx, _CTX_KEY, (locale, babel, found))
    return found


#: The attribute of the app context holding ``(locale, babel, catalogue)`` (see above).
_CTX_KEY = "_mailconnect_catalogue"


def _catalogue(babel: Any, locale: Any) -> Any:
    directories = (TRANSLATIONS, *babel.translation_directories)
    entry = _domains.get(directories)
    if entry is None:
        entry = _domains[directories] = (Domain(list(directories), domain=DOMAIN), {})
    domain, by_locale = entry
    # Keyed by the Locale itself (as Flask-Babel's force_locale changes it): the Domain's own
    # cache keys on str(locale), which is slower.
    found = by_locale.get(locale)
    if found is None:
        found = by_locale[locale] = domain.get_translations()
    return found


def _format(text: str, variables: dict[str, Any]) -> str:
    # Like Flask-Babel: no variables, no formatting (a literal "%" stays as written).
    return text % variables if variables else text


def _lookup(string: str) -> str:
    catalogue = _translations()
    return string if catalogue is None else str(catalogue.ugettext(string))


def _nlookup(singular: str, plural: str, num: int) -> str:
    catalogue = _translations()
    if catalogue is None:
        return singular if num == 1 else plural
    return str(catalogue.ungettext(singular, plural, num))


def gettext(string: str, **variables: Any) -> str:
    """``string`` in the current locale, with ``%(name)s`` filled from ``variables``."""
    return _format(_lookup(string), variables)


def ngettext(singular: str, plural: str, num: int, **variables: Any) -> str:
    """The singular or plural form for ``num`` (available as ``%(num)d``)."""
    variables.setdefault("num", num)
    return _format(_nlookup(singular, plural, num), variables)


def pgettext(context: str, string: str, **variables: Any) -> str:
    """``string`` disambiguated by ``context`` (the same English word, two meanings)."""
    catalogue = _translations()
    text = string if catalogue is None else str(catalogue.upgettext(context, string))
    return _format(text, variables)


def markup_gettext(string: str, **variables: Any) -> Markup:
    """``_mc`` in templates. Like Jinja's own i18n extension under autoescape: the catalogue's
    text is trusted like the template it replaces (so a sentence may keep its ``<strong>`` or
    link whole for translators), and every value filled in is escaped."""
    text = Markup(_lookup(string))  # noqa: S704  # catalogue text: trusted, like a template
    return text % variables if variables else text


def markup_ngettext(singular: str, plural: str, num: int, **variables: Any) -> Markup:
    """``_mc_n`` in templates: :func:`markup_gettext` with a plural (``%(num)d``)."""
    variables.setdefault("num", num)
    return Markup(_nlookup(singular, plural, num)) % variables  # noqa: S704  # as above


#: Per app: ``{(name, catalogue): Markup}`` for :func:`cached_fragment`.
_fragments: weakref.WeakKeyDictionary[Any, dict[tuple[str, Any], Markup]] = (
    weakref.WeakKeyDictionary()
)
_fragments_lock = threading.Lock()


def cached_fragment(name: str, caller: Callable[[], str]) -> Markup:
    """``{% call mailconnect_cached("name") %}...{% endcall %}`` in templates: the block rendered
    once per app and catalogue (the request's language), then reused.

    Only for blocks whose text depends on nothing but the language: ``_mc`` of fixed strings,
    literal markup (the script's words, the signature toolbar). A block that reads the request,
    the account, the config or anything else must not be wrapped: its first rendering would be
    shown to everyone. ``name`` tells the blocks apart (one per place it is used).
    """
    ctx = _cv_app.get(None)
    # No app: nothing to keep it for. Templates reloaded when edited (debug,
    # TEMPLATES_AUTO_RELOAD): an edit must show at once, so nothing is kept either.
    if ctx is None or ctx.app.jinja_env.auto_reload:
        return Markup(caller())  # noqa: S704  # the block's own (escaped) rendering
    key = (name, _translations())  # the catalogue object itself: one per app and language
    per_app = _fragments.get(ctx.app)
    found = per_app.get(key) if per_app is not None else None
    if found is None:
        found = Markup(caller())  # noqa: S704  # as above
        with _fragments_lock:  # threaded workers: WeakKeyDictionary writes one at a time
            _fragments.setdefault(ctx.app, {})[key] = found
    return found


def current_locale() -> str:
    """The language of the request as a BCP 47 tag (``de``, ``pt-BR``) for ``<html lang>``;
    ``en`` where the host has no Flask-Babel (the source text is English)."""
    if Domain is None or not has_app_context() or "babel" not in current_app.extensions:
        return "en"
    locale = get_locale()
    return str(locale).replace("_", "-") if locale else "en"


def N_(string: str) -> str:
    """Marks a string for extraction without translating it (module-level tables such as
    :data:`flask_mailconnect.codes.MESSAGES`, translated where they are read)."""
    return string


class LazyString:
    """A string translated each time it is used: for module-level constants (form labels,
    choices, validator messages) that exist before any request picks a locale."""

    __slots__ = ("_args", "_func", "_variables")

    def __init__(self, func: Any, *args: Any, **variables: Any) -> None:
        self._func = func
        self._args = args
        self._variables = variables

    def __str__(self) -> str:
        return str(self._func(*self._args, **self._variables))

    def __repr__(self) -> str:
        return f"lazy({str(self)!r})"

    def __html__(self) -> str:
        # Jinja and WTForms escape what they print; a lazy string is plain text, never markup.
        return str(escape(str(self)))

    def __len__(self) -> int:
        return len(str(self))

    def __bool__(self) -> bool:
        return bool(str(self))

    def __eq__(self, other: object) -> bool:
        return str(self) == (str(other) if isinstance(other, LazyString) else other)

    def __hash__(self) -> int:
        return hash(str(self))

    def __lt__(self, other: object) -> bool:
        return str(self) < str(other)

    def __add__(self, other: str) -> str:
        return str(self) + other

    def __radd__(self, other: str) -> str:
        return other + str(self)

    def __mod__(self, other: Any) -> str:
        return str(self) % other

    def __contains__(self, item: str) -> bool:
        return item in str(self)

    def __iter__(self) -> Any:
        return iter(str(self))

    def __getattr__(self, name: str) -> Any:
        # str methods (.format, .strip, .lower ...) on the translated text.
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(str(self), name)


def lazy_gettext(string: str, **variables: Any) -> LazyString:
    """:func:`gettext`, deferred until the string is printed or compared."""
    return LazyString(gettext, string, **variables)


def lazy_ngettext(singular: str, plural: str, num: int, **variables: Any) -> LazyString:
    return LazyString(ngettext, singular, plural, num, **variables)


__all__ = [
    "DOMAIN",
    "TRANSLATIONS",
    "LazyString",
    "current_locale",
    "N_",
    "cached_fragment",
    "gettext",
    "lazy_gettext",
    "lazy_ngettext",
    "markup_gettext",
    "markup_ngettext",
    "ngettext",
    "pgettext",
]
