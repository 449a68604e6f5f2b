"""Writing the audit trail. Callers own the transaction; this only adds rows to the session."""

from __future__ import annotations

from flask import has_request_context, request
from sqlalchemy.orm import Session

from .models import AuditEvent, MailAccount
from .owners import Actor


def record(
    session: Session,
    action: str,
    *,
    actor: Actor | None,
    account: MailAccount | None = None,
    owner: tuple[str, str] | None = None,
    email: str = "",
    ok: bool = True,
    detail: str = "",
) -> AuditEvent:
    """Add one event. ``detail`` is an error code or field names, never a secret or banner."""
    if account is not None:
        owner = owner or account.owner
        email = email or account.email
    event = AuditEvent(
        action=action,
        outcome="ok" if ok else "failed",
        actor_id=actor.id if actor else None,
        actor_label=(actor.label if actor else "system")[:200],
        account_id=account.id if account is not None else None,
        account_email=email[:320],
        owner_kind=owner[0] if owner else None,
        owner_id=owner[1] if owner else None,
        detail=detail[:2000],
        remote_addr=request.remote_addr if has_request_context() else None,
    )
    session.add(event)
    return event
