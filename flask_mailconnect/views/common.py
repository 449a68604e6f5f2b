"""What every page of the blueprint shares: who is acting, CSRF, loading accounts, headers,
and :func:`admin_required`, the one gate of the admin pages."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from functools import wraps
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import Response, abort, current_app, g, jsonify, request
from flask_wtf.csrf import ValidationError, generate_csrf, validate_csrf
from markupsafe import Markup, escape
from werkzeug.exceptions import NotFound

from ..codes import MESSAGES
from ..exceptions import PermissionDenied
from ..forms import checkbox_html, provider_title  # noqa: F401  # checkbox_html: routes.py global
from ..i18n import N_, gettext, ngettext
from ..models import MailAccount
from ..oauth.client import safe_next
from ..oauth.refresh import REMEDY_TEMPLATES
from ..owners import ORGANIZATION_OWNER, Actor
from ..providers import current_catalog
from ..providers.model import HINT_TEMPLATES, Provider
from ..runtime import Runtime
from ..transport.settings import SECURITY_LABELS
from ..validation import SEARCH_MAX, control_chars, parse_id
from .routes import AdminRequired

F = TypeVar("F", bound=Callable[..., Any])
#: Set on every view :func:`admin_required` wraps (the suite checks each admin endpoint has it).
ADMIN_ONLY = "mailconnect_admin_only"


def query_id(name: str) -> int | None:
    """An id from the query string (``?after=``, ``?account=``); ``None`` when absent or not
    an id (ASCII digits, 1 .. ``MAX_ID``): a list page then simply shows its first page."""
    return parse_id(request.args.get(name, ""))


def search_text(name: str = "q") -> str:
    """A search box's (or list filter's) text from the query string: control characters
    dropped (PostgreSQL refuses NUL in any string), stripped and cut to
    :data:`~flask_mailconnect.validation.SEARCH_MAX` characters before any LIKE or the host's
    ``@user_search`` sees it."""
    text = request.args.get(name, "")[: SEARCH_MAX * 4]
    if control_chars(text):
        text = "".join(ch if not control_chars(ch) else " " for ch in text)
    return text.strip()[:SEARCH_MAX].strip()


def state() -> Runtime:
    return current_app.extensions["mailconnect"]


def actor() -> Actor:
    """The signed-in person; ``_require_actor`` already refused anonymous visitors."""
    return g.mailconnect_actor


@functools.cache
def by_id() -> sa.Select[MailAccount]:
    """One account by id, as ``session.get`` loads it (no autoflush), but built once (on first
    use: at import it would configure the mappers): ``get`` makes and annotates a new
    statement per call, a third of what loading an account costs."""
    query = sa.select(MailAccount).where(MailAccount.id == sa.bindparam("account_id"))
    return query.execution_options(autoflush=False)


def load_account(
    account_id: int, action: str, *, query: sa.Select[MailAccount] | None = None
) -> MailAccount:
    """The account, if the actor may ``action`` it; otherwise 404 so ids reveal nothing.

    ``query``: :func:`by_id` (the default) or one made from it loading fewer columns (a page
    showing some).
    """
    # One row by primary key; an account this session already holds comes back as that same
    # object (unchanged), as with session.get.
    found = state().session.scalars(by_id() if query is None else query, {"account_id": account_id})
    account = found.first()
    if account is None or not state().policy.can(actor(), action, account.owner):
        abort(404)
    return account


def is_admin(who: Actor | None) -> bool:
    """The policy's ``admin`` action on the organisation (scopes.py): who may use the admin
    pages."""
    return who is not None and state().policy.can(who, "admin", ORGANIZATION_OWNER)


def admin_required(view: F) -> F:
    """For the admin pages: anyone else gets 403 (:class:`AdminRequired`) before the view
    loads anything, so no object's existence shows (anonymous visitors were already sent to
    sign in by ``_require_actor``)."""

    @wraps(view)
    def admin_only(*args: Any, **kwargs: Any) -> Any:
        if not is_admin(actor()):
            raise AdminRequired()
        return view(*args, **kwargs)

    setattr(admin_only, ADMIN_ONLY, True)
    return admin_only  # type: ignore[return-value]


def safe_back() -> str | None:
    """Where to return after an action: the request's ``next`` (form field, else query
    argument) when it is a path on this site, else ``None``.

    Checked with the same rule as the OAuth flow's ``next`` (:func:`..oauth.flow.safe_next`):
    no scheme or host, no ``//`` or backslash, no control characters (browsers drop tabs and
    newlines, so ``/<TAB>/evil`` would become ``//evil``).
    """

    return safe_next(request.form.get("next") or request.args.get("next"))


def ports() -> dict[str, tuple[int, ...] | None]:
    options = state().transport_options()
    return {"smtp": options.smtp_ports, "imap": options.imap_ports}


def wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json" or request.is_json


def _require_actor() -> Any:
    if request.endpoint == "mailconnect.static":
        return None
    found = state().hooks.current_actor()
    if found is None:
        manager = getattr(current_app, "login_manager", None)
        if manager is not None:
            return manager.unauthorized()  # redirects to the login view, or aborts with 401
        abort(401)
    g.mailconnect_actor = found
    return None


def csrf_input() -> Markup:
    """The hidden CSRF field of a form, as WTForms writes a FlaskForm's
    (``<input name=... type="hidden" value=...>``): the one way our templates write it
    (``mailconnect_csrf_input()``), whichever form it belongs to. Empty where the host turned
    CSRF off (``WTF_CSRF_ENABLED``). Made once per request: a page has several such forms."""
    found: Markup | None = g.get("_mailconnect_csrf_input")
    if found is None:
        config = current_app.config
        if not config.get("WTF_CSRF_ENABLED", True):
            found = Markup("")
        else:
            name = escape(config.get("WTF_CSRF_FIELD_NAME", "csrf_token"))
            token = escape(generate_csrf())  # Markup.format: twice the cost, same text
            found = Markup(f'<input name="{name}" type="hidden" value="{token}">')  # noqa: S704
        g._mailconnect_csrf_input = found
    return found


def _require_csrf() -> Any:
    """Every POST carries a valid token, as a form field or an ``X-CSRFToken`` header.

    FlaskForm checks its field too; checking here as well covers the JSON endpoint and makes a
    missing token a 400 before any view code runs, whether or not the host uses CSRFProtect.
    """
    if request.method != "POST" or not current_app.config.get("WTF_CSRF_ENABLED", True):
        return None
    field = current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    token = request.form.get(field)
    for header in current_app.config.get("WTF_CSRF_HEADERS", ["X-CSRFToken", "X-CSRF-Token"]):
        token = token or request.headers.get(header)
    try:
        validate_csrf(token)
    except ValidationError as exc:
        reason = gettext(str(exc.args[0]))  # Flask-WTF's sentence, in our catalogue below
        if wants_json():
            return jsonify(ok=False, error="csrf", message=reason), 400
        abort(400, description=gettext("%(reason)s Reload the page and try again.", reason=reason))
    return None


#: The words of :attr:`MailAccount.status_label <flask_mailconnect.models.MailAccount>`
#: (``AccountStatus.LABELS``), which templates translate with ``_mc(account.status_label)``.
STATUS_WORDS = (N_("Connected"), N_("Error"), N_("Needs reconnect"), N_("Awaiting authorization"))

# Flask-WTF's own CSRF sentences (it has no catalogue for them): translated by _require_csrf.
_CSRF_REASONS = (
    N_("The CSRF token is missing."),
    N_("The CSRF session token is missing."),
    N_("The CSRF token has expired."),
    N_("The CSRF tokens do not match."),
    N_("The CSRF token is invalid."),
)


def _no_store(response: Response) -> Response:
    # Our pages show personal data and forms that take passwords: keep them out of caches and
    # the back/forward cache of shared computers. Our CSS and JS hold nothing personal: they
    # keep Flask's static caching.
    if request.endpoint == "mailconnect.static":
        return response
    response.headers["Cache-Control"] = "no-store"
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def _not_found(_exc: PermissionDenied) -> Any:
    # The service said no: answer as if the account did not exist (through the host's 404 page).
    return current_app.handle_http_exception(NotFound())


def time_ago(value: datetime | None, now: datetime | None = None) -> str:
    """``"3 minutes ago"``, for the health of an account."""
    if value is None:
        return gettext("never")
    now = now or datetime.now(timezone.utc)
    seconds = int((now - value).total_seconds())
    if seconds < 60:
        return gettext("just now")
    for size, unit in ((86400 * 365, "year"), (86400 * 30, "month"), (86400, "day"),
                       (3600, "hour"), (60, "minute")):  # fmt: skip
        if seconds >= size:
            return _ago(unit, seconds // size)
    return gettext("just now")  # pragma: no cover - the loop always returns for seconds >= 60


def _ago(unit: str, count: int) -> str:
    # One whole sentence per unit: languages inflect the unit with the number and the "ago".
    if unit == "year":
        return ngettext("%(num)d year ago", "%(num)d years ago", count)
    if unit == "month":
        return ngettext("%(num)d month ago", "%(num)d months ago", count)
    if unit == "day":
        return ngettext("%(num)d day ago", "%(num)d days ago", count)
    if unit == "hour":
        return ngettext("%(num)d hour ago", "%(num)d hours ago", count)
    return ngettext("%(num)d minute ago", "%(num)d minutes ago", count)


def localize(code: str | None, message: str | None) -> str:
    """``message`` in the language of the current request, when it is ``code``'s stock wording
    (:data:`~flask_mailconnect.codes.MESSAGES`, optionally followed by the provider's advice,
    translated too when the catalogue has it) or a whole message of the catalogue (``N_``);
    any other text (a server-specific or already translated message) is returned unchanged.

    Messages are produced and stored in English (tests run in worker threads, checks in jobs,
    ``last_error_message`` is a column): this is where a page turns them into the reader's
    language.
    """
    text = message or ""
    base = MESSAGES.get(code or "")
    if base is None or not text.startswith(base):
        return _whole(text) if text else text
    hint = text[len(base) :].strip()
    translated = gettext(base)
    return f"{translated} {_whole(hint)}" if hint else translated


def _pattern(template: str) -> re.Pattern[str]:
    """``template`` (``%(name)s`` placeholders) as a regex that finds the values again."""
    parts = re.split(r"%\((\w+)\)s", template)
    seen: set[str] = set()
    regex = ""
    for index, part in enumerate(parts):
        if index % 2 == 0:
            regex += re.escape(part)
        elif part in seen:
            regex += f"(?P={part})"
        else:
            seen.add(part)
            regex += f"(?P<{part}>.+?)"
    return re.compile(regex, re.DOTALL)


#: English texts made with values in them (a provider's name, its settings URL), stored or
#: raised that way; translated by finding the values again.
_TEMPLATES = [(t, _pattern(t)) for t in (*HINT_TEMPLATES, *REMEDY_TEMPLATES)]


def _whole(text: str) -> str:
    """``text`` translated when the catalogue has it, as it is or as one of :data:`_TEMPLATES`
    filled in; else unchanged."""
    translated = gettext(text)
    if translated != text:
        return translated
    for template, pattern in _TEMPLATES:
        found = pattern.fullmatch(text)
        if found:
            return gettext(template, **found.groupdict())
    return text


def provider_name(key: str) -> str:
    """A provider key as people read it: the provider's title, else the key itself (an account
    whose provider left the configuration)."""
    return _provider_label(current_catalog().get(key), key)


def provider_labels(found: Mapping[str, Provider | None]) -> dict[str, str]:
    """:func:`provider_name` of each key of ``found`` (key to the provider a page already
    looked up in its catalogue, or ``None``)."""
    return {key: _provider_label(provider, key) for key, provider in found.items()}


def _provider_label(found: Provider | None, key: str) -> str:
    return provider_title(found) if found else key


def security_label(value: str | None) -> str:
    if value == "none":
        return gettext("None")  # no encryption; the protocol names are not translated
    return SECURITY_LABELS.get(value or "", value or "")
