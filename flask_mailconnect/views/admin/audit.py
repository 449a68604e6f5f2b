"""The audit trail: who did what to which account, filtered, one sentence per event."""

from __future__ import annotations

from datetime import datetime, time, timezone
from typing import Any

import sqlalchemy as sa
from flask import render_template

from ...accounts.providers import PROVIDER_ACTIONS
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
#: Events with no person behind them (health checks, token refresh, keep-alive), worded whole.
SYSTEM_PHRASES = {
    "needs_reconnect": "marked {whose} {email} as needing sign-in",
    "keepalive": "kept {whose} {email} signed in (token keep-alive)",
}


def _whose(event: AuditEvent) -> str:
    kind, ident = event.owner_kind or "", event.owner_id or ""
    if kind == "user":
        if event.actor_id and ident == event.actor_id:
            return "their account"
        return f"{owner_label(kind, ident)}'s account"
    if kind == "organization":
        return "the organization's account"
    return f"the {owner_label(kind, ident)} account"


def describe(event: AuditEvent) -> str:
    """One sentence for the audit page. An admin acting on someone else's account says so
    ("admin X disconnected Y's account"); others acting on a shared account are named plainly
    (a project manager is not "admin"); events with no person behind them read as the system's
    ("system marked Y's account as needing sign-in")."""
    verb = VERBS.get(event.action, event.action.replace("_", " "))
    who = event.actor_label if event.actor_id else "system"
    if event.action.startswith("provider_"):
        return f"{who} {verb.replace('provider ', '')} provider {event.detail}".strip()
    if not event.owner_kind:
        return f"{who} {verb} {event.account_email}".strip()
    whose = _whose(event)
    if not event.actor_id:
        phrase = SYSTEM_PHRASES.get(event.action, f"{verb} {{whose}} {{email}}")
        return f"system {phrase.format(whose=whose, email=event.account_email)}".strip()
    own = event.owner_kind == "user" and event.owner_id == event.actor_id
    if not own and actor_is_admin(event.actor_id):
        who = f"admin {who}"
    return f"{who} {verb} {whose} {event.account_email}".strip()


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
