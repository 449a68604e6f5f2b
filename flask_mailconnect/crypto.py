"""Encryption at rest for passwords and tokens: a column type over cryptography's MultiFernet.

Keys come from ``MAILCONNECT_ENCRYPTION_KEYS`` (newest first). New values are written with the
first key; any listed key decrypts, so rotating is: put the new key first, deploy, run
``flask mailconnect rotate-key``, then drop the old key.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from .exceptions import EncryptionKeyError

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet


def check_keys(keys: Iterable[str | bytes] | str | None) -> list[str | bytes]:
    """The configured keys, each checked the way Fernet checks a key (32 url-safe
    base64-encoded bytes), without loading cryptography: ``init_app`` fails on a malformed key
    at start-up, and the cipher itself is built on the first encryption (issue 13)."""
    if isinstance(keys, (str, bytes)):
        keys = [keys]
    key_list = [k for k in (keys or []) if k]
    if not key_list:
        raise EncryptionKeyError(
            "MAILCONNECT_ENCRYPTION_KEYS is empty. Generate a key with "
            "`python -m flask_mailconnect generate-key` (no app needed), e.g. "
            "`export MAILCONNECT_KEY=$(python -m flask_mailconnect generate-key)`, and set "
            'app.config["MAILCONNECT_ENCRYPTION_KEYS"] = [os.environ["MAILCONNECT_KEY"]].'
        )
    for key in key_list:
        try:
            fits = isinstance(key, (str, bytes)) and len(base64.urlsafe_b64decode(key)) == 32
        except (ValueError, TypeError):  # binascii.Error is a ValueError; never echo the key
            fits = False
        if not fits:
            raise EncryptionKeyError(
                "MAILCONNECT_ENCRYPTION_KEYS holds a value that is not a Fernet key "
                "(32 url-safe base64-encoded bytes); make one with "
                "`python -m flask_mailconnect generate-key`."
            )
    return key_list


def build_cipher(keys: Iterable[str | bytes] | str | None) -> MultiFernet:
    key_list = check_keys(keys)
    from cryptography.fernet import Fernet, MultiFernet  # heavy: loaded where used (issue 13)

    return MultiFernet([Fernet(k) for k in key_list])


def generate_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode("ascii")


#: Why a stored secret could not be opened, for :class:`EncryptionKeyError`.
NO_KEY_FITS = (
    "A stored secret could not be decrypted with any key in MAILCONNECT_ENCRYPTION_KEYS "
    "(was a key removed before `rotate-key` ran?)."
)


@contextmanager
def _key_fits() -> Iterator[None]:
    """cryptography's ``InvalidToken`` (no configured key fits) as :class:`EncryptionKeyError`;
    it stays in here, so code above never imports cryptography (~10 ms at start-up)."""
    from cryptography.fernet import InvalidToken  # loaded already: the cipher exists

    try:
        yield
    except InvalidToken as exc:
        raise EncryptionKeyError(NO_KEY_FITS) from exc


def decrypt(cipher: MultiFernet, token: str) -> str:
    """The plaintext of one stored token; :class:`EncryptionKeyError` when no configured key
    fits."""
    with _key_fits():
        return cipher.decrypt(token.encode("ascii")).decode("utf-8")


def rotate_token(cipher: MultiFernet, token: str) -> str:
    """Re-encrypt one stored token under the newest key (:class:`EncryptionKeyError` if no
    configured key fits)."""
    with _key_fits():
        return cipher.rotate(token.encode("ascii")).decode("ascii")
