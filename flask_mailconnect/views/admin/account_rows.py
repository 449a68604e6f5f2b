"""The rows of the admin account list, written in Python once per page.

A page shows up to ``MAILCONNECT_ADMIN_PAGE_SIZE`` rows of some thirty values each. Written by
Jinja, every value went through autoescaping (a ``Markup`` made per value, constants included)
and an attribute lookup through Jinja's ``getattr``: most of the page's time. Here the
words and links of the page are escaped once, and per row only what differs from row to row is
escaped: the address, display name, owner's name, provider, status and the id. Every value that
comes from a person (addresses, names, the host's labels) still goes through
:func:`markupsafe.escape`; the result is the HTML the template wrote before, byte for byte
(``tests/test_admin_rows.py`` compares the two).

Per page the row is cut into constant pieces around what varies (kept per language and links:
:func:`_pieces`), rows are unpacked by position, and the escaping of addresses, names and
owners is skipped on a page where none of them holds a character to escape (one search).

``mailconnect/admin/accounts.html`` writes the result with ``{{ rows_html }}``; a host that
overrides that template gets the same ``accounts`` and lookup tables as before. The filters'
``<option>`` lists are written here too (:func:`options`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from markupsafe import Markup, escape

from ...forms import escape_text
from ...i18n import markup_gettext as _mc
from ..links import LinkPattern

#: One row, as ``mailconnect/admin/accounts.html`` wrote it; ``w`` is :class:`RowWords`, every
#: other field is escaped (or built from escaped parts) by :func:`account_rows`.
_ROW = (
    '\n  <tr data-account-id="{id}"{row_class}>\n'
    '    <td data-label="{w.account}"><a class="mc-strong" href="{account_url}">{email}</a>'
    "{name}</td>\n"
    '    <td data-label="{w.owner}">{owner}</td>\n'
    '    <td data-label="{w.provider}">{provider}</td>\n'
    '    <td data-label="{w.status}">{status}</td>\n'
    '    <td class="mc-row-actions">\n'
    '      <form method="post" action="{action}" class="mc-inline-form">\n'
    "        {hidden}\n"
    '        <button type="submit" class="mc-btn mc-btn--secondary mc-btn--small">{verb}'
    '<span class="mc-sr"> {email}</span></button>\n'
    "      </form>\n"
    '      <a class="mc-btn mc-btn--danger-ghost mc-btn--small" href="{disconnect_url}">'
    '{w.disconnect}<span class="mc-sr"> {email}</span></a>\n'
    "    </td>\n"
    "  </tr>\n  "
)


class RowWords:
    """The words every row repeats, translated once for the page (``_mc`` as in templates: the
    catalogue's text is trusted like the template it replaces)."""

    def __init__(self) -> None:
        self.account = _mc("Account")
        self.owner = _mc("Owner")
        self.provider = _mc("Provider")
        self.status = _mc("Status")
        self.inactive = _mc("Inactive")
        self.inactive_title = _mc("Deactivated by an administrator: kept, but not used for sending")
        self.deactivate = _mc("Deactivate")
        self.reactivate = _mc("Reactivate")
        self.disconnect = _mc("Disconnect")

    def key(self) -> tuple[str, ...]:
        """Every word, as a cache key (:func:`_pieces`)."""
        return tuple(str(v) for v in vars(self).values())


#: What :func:`markupsafe.escape` replaces (a page whose values have none is written as is).
_SPECIAL = re.compile("[&<>\"']")


def _status_label(status: str, labels: Mapping[str, str]) -> str:
    # The template's ``status_labels[s] or s.replace('_', ' ')|capitalize``: a status the
    # models do not name (a newer version's row) is still shown, readable.
    return labels.get(status) or status.replace("_", " ").capitalize()


#: The fields of each row, in this order (``LIST_COLUMNS`` in :mod:`.accounts` is built from
#: it): the rows are unpacked by position, a tenth of what attribute access on a row costs.
FIELDS = ("id", "email", "display_name", "owner_kind", "owner_id", "provider", "status", "active")

#: :data:`_ROW` split around what differs from row to row (the links written as head, id and
#: tail): constant pieces (formatted once per page) and, between them, the varying fields in
#: :data:`_ORDER`, the order :func:`account_rows` writes them in.
_SPLIT = re.split(
    r"\{(id|email|name|owner|provider|status|hidden)\}",
    _ROW.replace("{account_url}", "{account_head}{id}{account_tail}")
    .replace("{action}", "{action_head}{id}{action_tail}")
    .replace("{disconnect_url}", "{disconnect_head}{id}{disconnect_tail}"),
)
_ORDER = ("id", "id", "email", "name", "owner", "provider", "status", "id", "hidden", "email", "id",
          "email")  # fmt: skip
if tuple(_SPLIT[1::2]) != _ORDER:  # pragma: no cover - the f-string in account_rows relies on it
    raise RuntimeError(f"_ROW's fields changed: {_SPLIT[1::2]}")


def _pieces(**constants: Any) -> tuple[str, ...]:
    """The constant pieces of :data:`_SPLIT` with ``constants`` (words and link halves) filled
    in; kept, as they are the same on every page in one language and request root."""
    key = tuple(sorted((k, str(v) if k != "w" else v.key()) for k, v in constants.items()))
    found = _pieces_made.get(key)
    if found is None:
        found = tuple(piece.format(**constants) for piece in _SPLIT[0::2])
        if len(_pieces_made) >= _PIECES_MAX:  # many link roots or queries: start over
            _pieces_made.clear()
        _pieces_made[key] = found
    return found


#: ``{constants: pieces}`` for :func:`_pieces`: the key holds every value the pieces are made
#: of (bounded: a few languages and request roots, each link half from a few query strings).
_pieces_made: dict[tuple[Any, ...], tuple[str, ...]] = {}
_PIECES_MAX = 256


def account_rows(
    rows: Sequence[Any],
    *,
    links: Mapping[str, LinkPattern],
    person: LinkPattern,
    owner_labels: Mapping[tuple[str, str], str],
    kind_names: Mapping[str, str],
    provider_labels: Mapping[str, str],
    status_labels: Mapping[str, str],
    csrf_field: Markup,
    back: str,
) -> Markup:
    """The ``<tr>`` of each of ``rows`` (plain rows of :data:`FIELDS`), as one Markup.

    ``person``: the link of a person's admin page; ``provider_labels``: the title to show per
    provider key of the rows (the key itself for a provider the catalogue does not know); the
    other tables are those the template gets.
    """
    w = RowWords()
    acc, deact, react = links["account"], links["deactivate"], links["reactivate"]
    disc = links["disconnect"]
    # Constant per page: the hidden fields of every row's form.
    hidden = f'{csrf_field}<input type="hidden" name="next" value="{escape(back)}">'
    inactive_badge = (
        f' <span class="mc-badge mc-badge--inactive" title="{w.inactive_title}">{w.inactive}</span>'
    )
    # The row's constant pieces, per page, for an active and an inactive account (links are
    # ``head + id + tail``: the id is a slot, head and tail are constants around it).
    common = {"w": w, "account_head": acc.head, "account_tail": acc.tail,
              "disconnect_head": disc.head, "disconnect_tail": disc.tail}  # fmt: skip
    active_pieces = _pieces(row_class="", action_head=deact.head, action_tail=deact.tail,
                            verb=w.deactivate, **common)  # fmt: skip
    inactive_pieces = _pieces(row_class=' class="mc-row--inactive"', action_head=react.head,
                              action_tail=react.tail, verb=w.reactivate, **common)  # fmt: skip
    # Per page, not per row: most rows share a few owners' kinds, providers and statuses.
    values = [tuple(r) for r in rows]  # unpacked by position below (FIELDS)
    kind_line = {
        kind: f'<br><span class="mc-muted">{escape(kind_names.get(kind) or kind)}</span>'
        for kind in {r[3] for r in values}
        if kind != "organization"
    }
    provider_cell = {key: str(escape(label)) for key, label in provider_labels.items()}
    badge = {
        status: (
            f'<span class="mc-badge mc-badge--{escape(status.replace("_", "-"))}">'
            f'<span class="mc-badge-dot" aria-hidden="true"></span>'
            f"{escape(_status_label(status, status_labels))}</span>"
        )
        for status in {r[6] for r in values}
    }
    status_cell = {
        (status, active): text + ("" if active else inactive_badge)
        for status, text in badge.items()
        for active in (True, False)
    }
    # Addresses, display names and owners' names: escaped one by one only on a page where one
    # of them needs it (one search over all of them; most pages have none).
    owners = {(r[3], r[4]): owner_labels[r[3], r[4]] for r in values}
    texts = [r[1] for r in values] + [r[2] for r in values if r[2]] + list(owners.values())
    plain = all(type(t) is str for t in texts) and not _SPECIAL.search("\n".join(texts))
    owner_cell: dict[tuple[str, str], str] = {}
    for (kind, owner_id), label in owners.items():
        if not plain:
            label = escape_text(label)
        if kind == "user":  # a person: linked to their admin page
            label = f'<a href="{person.html(owner_id)}">{label}</a>'
        owner_cell[kind, owner_id] = f"{label}{kind_line.get(kind, '')}"
    out: list[str] = []
    for ident, email, name, kind, owner_id, provider, status, active in values:
        ident = int(ident)  # an integer primary key: digits only
        if not plain:
            email = escape_text(email)
            name = escape_text(name) if name else name
        name = f'<br><span class="mc-muted">{name}</span>' if name else ""
        c = active_pieces if active else inactive_pieces
        out.append(
            f"{c[0]}{ident}{c[1]}{ident}{c[2]}{email}{c[3]}{name}{c[4]}"
            f"{owner_cell[kind, owner_id]}{c[5]}{provider_cell[provider]}{c[6]}"
            f"{status_cell[status, bool(active)]}{c[7]}{ident}{c[8]}{hidden}{c[9]}{email}"
            f"{c[10]}{ident}{c[11]}{email}{c[12]}"
        )
    # Every value in ``out`` was escaped above: the join is safe HTML.
    return Markup("".join(out))  # noqa: S704


def options(choices: Iterable[tuple[Any, Any]], chosen: str) -> Markup:
    """A filter's ``<option>`` list, as the template's loop wrote it
    (``<option value="{{ value }}"{% if chosen == value %} selected{% endif %}>{{ label }}``):
    value and label escaped, the chosen one selected. A Jinja loop per option and filter was
    a good part of the page's time."""
    return Markup(  # noqa: S704  # every value escaped here
        "".join(
            f'<option value="{escape(value)}"{" selected" if chosen == value else ""}>'
            f"{escape(label)}</option>"
            for value, label in choices
        )
    )
