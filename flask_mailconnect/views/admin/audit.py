"""The audit trail: who did what to which account, filtered, one sentence per event."""

from __future__ import annotations

from datetime import datetime, time, timezone
from typing import Any

import sqlalchemy as sa
from flask import render_template

from ...accounts.providers import PROVIDER_ACTIONS
from ...i18n import N_, gettext
from ...models import AuditEvent
from ...validation import parse_id
from ..common import admin_required, search_text
from .lists import actor_is_admin, keyset, owner_label, prime_owner_labels

VERBS = {
    "connect": "connected", "reconnect": "reconnected", "disconnect": "disconnected",
    "update": "updated", "test": "tested", "deactivate": "deactivated",
    "reactivate": "reactivated", "handover": "started a hand-over of",
    "oauth_connect": "connected", "oauth_reconnect": "reconnected", "check": "checked",
    "needs_reconnect": "marked as needing sign-in", "keepalive": "kept signed in",
}  # fmt: skip
#: One whole sentence per action, so that each language orders its own words. ``%(who)s``:
#: "admin X", "X" or "system"; ``%(whose)s``: "their account", "X's account", ...
SENTENCES = {
    "connect": N_("%(who)s connected %(whose)s %(email)s"),
    "oauth_connect": N_("%(who)s connected %(whose)s %(email)s"),
    "reconnect": N_("%(who)s reconnected %(whose)s %(email)s"),
    "oauth_reconnect": N_("%(who)s reconnected %(whose)s %(email)s"),
    "disconnect": N_("%(who)s disconnected %(whose)s %(email)s"),
    "update": N_("%(who)s updated %(whose)s %(email)s"),
    "test": N_("%(who)s tested %(whose)s %(email)s"),
    "deactivate": N_("%(who)s deactivated %(whose)s %(email)s"),
    "reactivate": N_("%(who)s reactivated %(whose)s %(email)s"),
    "handover": N_("%(who)s started a hand-over of %(whose)s %(email)s"),
    "check": N_("%(who)s checked %(whose)s %(email)s"),
    # Events with no person behind them (health checks, token refresh, keep-alive).
    "needs_reconnect": N_("%(who)s marked %(whose)s %(email)s as needing sign-in"),
    "keepalive": N_("%(who)s kept %(whose)s %(email)s signed in (token keep-alive)"),
}
PROVIDER_SENTENCES = {
    "provider_create": N_("%(who)s created provider %(name)s"),
    "provider_update": N_("%(who)s updated provider %(name)s"),
    "provider_delete": N_("%(who)s deleted provider %(name)s"),
    "provider_enable": N_("%(who)s enabled provider %(name)s"),
    "provider_disable": N_("%(who)s disabled provider %(name)s"),
}


def _whose(event: AuditEvent) -> str:
    kind, ident = event.owner_kind or "", event.owner_id or ""
    if kind == "user":
        if event.actor_id and ident == event.actor_id:
            return gettext("their account")
        return gettext("%(owner)s's account", owner=owner_label(kind, ident))
    if kind == "organization":
        return gettext("the organization's account")
    return gettext("the %(owner)s account", owner=owner_label(kind, ident))


def describe(event: AuditEvent) -> str:
    """One sentence for the audit page. An admin acting on someone else's account says so
    ("admin X disconnected Y's account"); others acting on a shared account are named plainly
    (a project manager is not "admin"); events with no person behind them read as the system's
    ("system marked Y's account as needing sign-in")."""
    who = event.actor_label if event.actor_id else gettext("system")
    if event.action in PROVIDER_SENTENCES:
        return gettext(PROVIDER_SENTENCES[event.action], who=who, name=event.detail or "").strip()
    whose = _whose(event) if event.owner_kind else ""
    if event.actor_id and event.owner_kind:
        own = event.owner_kind == "user" and event.owner_id == event.actor_id
        if not own and actor_is_admin(event.actor_id):
            who = gettext("admin %(name)s", name=who)
    sentence = SENTENCES.get(event.action)
    if sentence is None:  # an action of a newer version: its name, in English
        verb = VERBS.get(event.action, event.action.replace("_", " "))
        text = f"{who} {verb} {whose} {event.account_email or ''}"
    else:
        text = gettext(sentence, who=who, whose=whose, email=event.account_email or "")
    return " ".join(text.split())  # no owner: no double space where "whose" was


def _day(value: str, end: bool) -> datetime | None:
    try:
        day = datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        return None
    return datetime.combine(day, time.max if end else time.min, tzinfo=timezone.utc)


@admin_required
def admin_audit() -> Any:
    args = {k: search_text(k) for k in ("action", "actor", "account", "since", "until")}
    where: list[Any] = []
    if args["action"]:
        where.append(AuditEvent.action == args["action"])
    if args["actor"]:
        pattern = "%" + args["actor"].lower() + "%"
        where.append(
            sa.or_(
                sa.func.lower(AuditEvent.actor_label).like(pattern),
                AuditEvent.actor_id == args["actor"],
            )  # fmt: skip
        )
    if args["account"]:
        term = args["account"]
        account_id = parse_id(term)
        if account_id is not None:
            where.append(AuditEvent.account_id == account_id)
        else:
            where.append(sa.func.lower(AuditEvent.account_email).like("%" + term.lower() + "%"))
    since, until = _day(args["since"], False), _day(args["until"], True)
    if since:
        where.append(AuditEvent.created_at >= since)
    if until:
        where.append(AuditEvent.created_at <= until)
    rows, older, newer = keyset(AuditEvent, where)
    prime_owner_labels([(e.owner_kind, e.owner_id) for e in rows], [e.actor_id for e in rows])
    actions = sorted({*VERBS, *PROVIDER_ACTIONS})
    return render_template(
        "mailconnect/admin/audit.html", events=rows, older=older, newer=newer, args=args,
        actions=actions,
    )  # fmt: skip
