"""Column types of the extension's tables: aware UTC datetimes and encrypted text.

Secrets are stored as Fernet tokens (``MAILCONNECT_ENCRYPTION_KEYS``, newest first; see
:mod:`flask_mailconnect.crypto`). Writing encrypts (an app context is needed for the keys).
Reading does NOT decrypt: a query returns a :class:`Sealed` value that holds the ciphertext, and
the code that needs the secret opens it (:func:`open_secret`) at the moment of use. So SQL
logging (``SQLALCHEMY_ECHO="debug"`` logs every row) only ever shows ciphertext, and a lost or
changed key fails where a secret is used, as a typed :class:`EncryptionKeyError`, not in every
query that happens to load a row.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from .crypto import decrypt
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


class Sealed:
    """A stored secret as read from the database: its ciphertext, not yet decrypted.

    Not a ``str`` on purpose: code that forgets :func:`open_secret` fails loudly instead of
    sending ciphertext to a server. Its ``repr`` shows only the start of the ciphertext.
    """

    __slots__ = ("token",)

    def __init__(self, token: str) -> None:
        self.token = token

    def __repr__(self) -> str:
        return f"Sealed({self.token[:12]}...)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sealed) and other.token == self.token

    def __hash__(self) -> int:
        return hash(self.token)

    def open(self) -> str:
        """The plaintext; raises :class:`EncryptionKeyError` when no configured key fits."""
        return decrypt(current_cipher(), self.token)


def open_secret(value: Sealed | str | None) -> str | None:
    """The plaintext of a value read from an encrypted column (``None`` stays ``None``; a plain
    ``str`` is a value set in this session and not yet read back)."""
    if value is None or isinstance(value, str):
        return value
    return value.open()


def seal(value: str | None) -> Sealed | None:
    """``value`` encrypted now, for assigning to an encrypted column. Raises
    :class:`EncryptionKeyError` here, in plain Python, when there is no key: assigning the
    plaintext instead would fail at flush, inside SQLAlchemy (a ``StatementError`` whose text
    lists the statement's parameters, the plaintext among them)."""
    if value is None:
        return None
    return Sealed(current_cipher().encrypt(str(value).encode("utf-8")).decode("ascii"))


class EncryptedText(sa.TypeDecorator[Any]):
    """A text column whose value is stored as a Fernet token, never in clear.

    Writing encrypts with the app's keys (an app context is needed: always true inside
    requests, CLI commands and ``with app.app_context()`` jobs); reading returns :class:`Sealed`.
    """

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if isinstance(value, Sealed):  # read back and written again: already encrypted
            return value.token
        return current_cipher().encrypt(str(value).encode("utf-8")).decode("ascii")

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else Sealed(str(value))
