"""Encryption at rest for passwords and tokens: a column type over cryptography's MultiFernet.

Keys come from ``MAILCONNECT_ENCRYPTION_KEYS`` (newest first). New values are written with the
first key; any listed key decrypts, so rotating is: put the new key first, deploy, run
``flask mailconnect rotate-key``, then drop the old key.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app
from sqlalchemy.engine import Dialect


class EncryptionKeyError(RuntimeError):
    """The keys are missing or malformed, or a stored value matches none of them."""


def build_cipher(keys: Iterable[str | bytes] | str | None) -> MultiFernet:
    if isinstance(keys, (str, bytes)):
        keys = [keys]
    key_list = [k for k in (keys or []) if k]
    if not key_list:
        raise EncryptionKeyError(
            "MAILCONNECT_ENCRYPTION_KEYS is empty. Generate a key with "
            "`flask mailconnect generate-key` and set it in your configuration."
        )
    try:
        return MultiFernet([Fernet(k) for k in key_list])
    except (ValueError, TypeError) as exc:  # never echo the key itself
        raise EncryptionKeyError(
            "MAILCONNECT_ENCRYPTION_KEYS holds a value that is not a Fernet key "
            "(32 url-safe base64-encoded bytes)."
        ) from exc


def generate_key() -> str:
    return Fernet.generate_key().decode("ascii")


def current_cipher() -> MultiFernet:
    state = current_app.extensions.get("mailconnect")
    if state is None:
        raise EncryptionKeyError("MailConnect is not initialised on the current app.")
    return state.cipher


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


def rotate_token(cipher: MultiFernet, token: str) -> str:
    """Re-encrypt one stored token under the newest key (raises InvalidToken if none fits)."""
    return cipher.rotate(token.encode("ascii")).decode("ascii")
