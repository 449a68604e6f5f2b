"""What the OAuth layer reports while it refreshes tokens, written down here: a refused grant
moves the account to ``needs_reconnect`` with its audit row, in the refresh's own transaction,
and the signals fire once it committed (see :mod:`flask_mailconnect.runtime`).

Apart from :mod:`flask_mailconnect.accounts`, whose package loads every use-case: ``init_app``
installs :class:`AccountEvents` on the runtime, and start-up should not pay for the rest
(issue 13).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from . import audit, signals
from .models import AccountStatus, MailAccount, utcnow


class AccountEvents:
    """What the OAuth layer reports while it refreshes tokens (see :mod:`..runtime`)."""

    def grant_refused(
        self, session: Session, account_id: int, *, code: str, message: str, already: bool
    ) -> None:
        """In the refresh's private transaction: wipe the tokens, mark ``needs_reconnect``, and
        audit the transition once (``already``: it was marked before)."""
        session.execute(
            sa.update(MailAccount)
            .where(MailAccount.id == account_id)
            .values(
                status=AccountStatus.NEEDS_RECONNECT,
                last_error_code=code,
                last_error_message=message,
                last_checked_at=utcnow(),
                access_token=None,
                refresh_token=None,
                token_expires_at=None,
                graph_access_token=None,
                graph_token_expires_at=None,
            )
        )
        if already:
            return
        email, owner_kind, owner_id = session.execute(
            sa.select(MailAccount.email, MailAccount.owner_kind, MailAccount.owner_id).where(
                MailAccount.id == account_id
            )
        ).one()
        event = audit.record(
            session, "needs_reconnect", actor=None, owner=(owner_kind, owner_id), email=email,
            ok=False, detail=code,
        )  # fmt: skip
        event.account_id = account_id

    def token_refreshed(self, account: MailAccount) -> None:
        """After the rotated tokens were committed."""
        signals.announce(signals.token_refreshed, None, account=account)

    def needs_reconnect(self, account: MailAccount, reason: str) -> None:
        """After a refused grant was committed (once per transition)."""
        signals.announce(signals.account_needs_reconnect, None, account=account, reason=reason)


__all__ = ["AccountEvents"]
