"""Column types of the extension's tables: aware UTC datetimes and encrypted text.

Secrets are stored as Fernet tokens (``MAILCONNECT_ENCRYPTION_KEYS``, newest first; see
:mod:`flask_mailconnect.crypto`). Encryption needs the app's keys, so reading or writing such a
column needs an app context (requests, CLI commands and ``with app.app_context()`` jobs).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from cryptography.fernet import InvalidToken
from sqlalchemy.engine import Dialect

from .exceptions import EncryptionKeyError
from .runtime import current_cipher


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (MariaDB and SQLite keep no zone)."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


class EncryptedText(sa.TypeDecorator[str]):
    """A text column whose value is stored as a Fernet token, never in clear.

    Encryption needs the app's keys, so reading or writing such a column needs an app context
    (always true inside requests, CLI commands and ``with app.app_context()`` jobs).
    """

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return current_cipher().encrypt(str(value).encode("utf-8")).decode("ascii")

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        try:
            return current_cipher().decrypt(value.encode("ascii")).decode("utf-8")
        except InvalidToken as exc:
            raise EncryptionKeyError(
                "A stored secret could not be decrypted with any key in "
                "MAILCONNECT_ENCRYPTION_KEYS (was a key removed before `rotate-key` ran?)."
            ) from exc
