"""Typed exceptions of the Python API. Every one derives from :class:`MailConnectError`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .crypto import EncryptionKeyError
from .transport.errors import ConnectionFailed, MailConnectError

if TYPE_CHECKING:
    from .transport.settings import ConnectionReport


class PermissionDenied(MailConnectError):
    """The actor may not do this to this account or owner."""


class InvalidSettings(MailConnectError):
    """Server settings that cannot work; ``errors`` maps field names to messages."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class TooManyTests(MailConnectError):
    """The actor ran more connection tests than ``MAILCONNECT_TESTS_PER_HOUR`` allows."""


class AccountLimitReached(MailConnectError):
    """The owner already has as many accounts as ``MAILCONNECT_MAX_ACCOUNTS`` allows."""

    def __init__(self, owner: tuple[str, str], limit: int) -> None:
        plural = "account" if limit == 1 else "accounts"
        super().__init__(
            f"This {owner[0]} already has {limit} email {plural}, the most allowed. "
            "Disconnect one to connect another."
        )
        self.owner = owner
        self.limit = limit


class NoSenderAccount(MailConnectError):
    """``resolve_sender`` found no active, connected account the actor may send from.

    ``tried`` lists each place looked at with why it did not apply.
    """

    def __init__(self, tried: list[str]) -> None:
        super().__init__(
            "No account to send from. Tried: " + ("; ".join(tried) if tried else "nothing")
            + ". Connect an account, or pass account= explicitly."
        )
        self.tried = tried


class ConnectionTestFailed(MailConnectError):
    """Saving was refused because Test connection did not pass; ``report`` says why."""

    def __init__(self, report: ConnectionReport) -> None:
        failed = [r for r in report.results if not r.ok]
        super().__init__(" ".join(f"{r.protocol.value.upper()}: {r.message}" for r in failed))
        self.report = report


__all__ = [
    "AccountLimitReached",
    "ConnectionFailed",
    "ConnectionTestFailed",
    "EncryptionKeyError",
    "InvalidSettings",
    "MailConnectError",
    "NoSenderAccount",
    "PermissionDenied",
    "TooManyTests",
]
