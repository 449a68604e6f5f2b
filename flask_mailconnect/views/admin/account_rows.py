"""The rows of the admin account list, written in Python once per page.

A page shows up to ``MAILCONNECT_ADMIN_PAGE_SIZE`` rows of some thirty values each. Written by
Jinja, every value went through autoescaping (a ``Markup`` made per value, constants included)
and an attribute lookup through Jinja's ``getattr``: most of the page's time. Here the
words and links of the page are escaped once, and per row only what differs from row to row is
escaped: the address, display name, owner's name, provider, status and the id. Every value that
comes from a person (addresses, names, the host's labels) still goes through
:func:`markupsafe.escape`; the result is the HTML the template wrote before, byte for byte
(``tests/test_admin_rows.py`` compares the two).

``mailconnect/admin/accounts.html`` writes the result with ``{{ rows_html }}``; a host that
overrides that template gets the same ``accounts`` and lookup tables as before.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup, escape

from ...i18n import markup_gettext as _mc
from .lists import LinkPattern

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


#: What :func:`markupsafe.escape` replaces.
_SPECIAL = re.compile("[&<>\"']")


def _text(value: Any) -> str:
    """``escape(value)`` as a plain ``str``: the same characters replaced the same way (and a
    value that is already HTML, such as a host's ``Markup`` label, kept as it is), but most
    values (addresses, names) have none of them and are returned without making a ``Markup``."""
    if hasattr(value, "__html__"):
        return str(value.__html__())
    text = str(value)
    return str(escape(text)) if _SPECIAL.search(text) else text


def _status_label(status: str, labels: Mapping[str, str]) -> str:
    # The template's ``status_labels[s] or s.replace('_', ' ')|capitalize``: a status the
    # models do not name (a newer version's row) is still shown, readable.
    return labels.get(status) or status.replace("_", " ").capitalize()


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
    """The ``<tr>`` of each of ``rows`` (plain rows of ``LIST_COLUMNS``), as one Markup.

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
    # Per page, not per row: most rows share a few owners' kinds, providers and statuses.
    kind_line = {
        kind: f'<br><span class="mc-muted">{escape(kind_names.get(kind) or kind)}</span>'
        for kind in {r.owner_kind for r in rows}
        if kind != "organization"
    }
    provider_cell = {key: escape(label) for key, label in provider_labels.items()}
    badge = {
        status: (
            f'<span class="mc-badge mc-badge--{escape(status.replace("_", "-"))}">'
            f'<span class="mc-badge-dot" aria-hidden="true"></span>'
            f"{escape(_status_label(status, status_labels))}</span>"
        )
        for status in {r.status for r in rows}
    }
    owner_cell: dict[tuple[str, str], str] = {}
    out: list[str] = []
    for r in rows:
        ident = str(int(r.id))  # an integer primary key: digits only
        owner = (r.owner_kind, r.owner_id)
        cell = owner_cell.get(owner)
        if cell is None:
            label = _text(owner_labels[owner])
            if r.owner_kind == "user":  # a person: linked to their admin page
                label = f'<a href="{person.html(r.owner_id)}">{label}</a>'
            cell = owner_cell[owner] = f"{label}{kind_line.get(r.owner_kind, '')}"
        action = deact if r.active else react
        out.append(
            _ROW.format(
                w=w,
                id=ident,
                row_class="" if r.active else ' class="mc-row--inactive"',
                account_url=f"{acc.head}{ident}{acc.tail}",
                email=_text(r.email),
                name=f'<br><span class="mc-muted">{_text(r.display_name)}</span>'
                if r.display_name
                else "",
                owner=cell,
                provider=provider_cell[r.provider],
                status=badge[r.status] + ("" if r.active else inactive_badge),
                action=f"{action.head}{ident}{action.tail}",
                hidden=hidden,
                verb=w.deactivate if r.active else w.reactivate,
                disconnect_url=f"{disc.head}{ident}{disc.tail}",
            )
        )
    # Every value in ``out`` was escaped above: the join is safe HTML.
    return Markup("".join(out))  # noqa: S704
