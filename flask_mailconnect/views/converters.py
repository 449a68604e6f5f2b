"""The URL converters of our paths, ``<mc_id:...>`` and ``<mc_uid:...>``.

Kept apart from the views (which load on their first request, see :mod:`.routes`): werkzeug
needs the converter classes when the blueprint's rules are added, at ``init_app``.
"""

from __future__ import annotations

from typing import Any

from werkzeug.routing import BaseConverter
from werkzeug.routing import ValidationError as NoMatch

from ..validation import parse_id, parse_uid

#: The URL converter of every id in our paths: ``<mc_id:account_id>``.
ID_CONVERTER = "mc_id"
#: The URL converter of IMAP UIDs (``<mc_uid:uid>``): up to 2**32-1, not a primary key.
UID_CONVERTER = "mc_uid"


class IdConverter(BaseConverter):
    """An id in a path: ASCII digits only (werkzeug's ``int`` takes "٣" too), 1 ..
    :data:`~flask_mailconnect.validation.MAX_ID` (what an INTEGER primary key holds on every
    supported database).

    Anything else does not match the rule, so the request gets the host's 404 page: no query
    runs with a number the database cannot hold.
    """

    regex = r"[0-9]{1,20}"

    def to_python(self, value: str) -> int:
        number = parse_id(value)
        if number is None:
            raise NoMatch()
        return number

    def to_url(self, value: Any) -> str:
        return str(int(value))


class UidConverter(IdConverter):
    """An IMAP UID in a path: ASCII digits, 1 .. :data:`~flask_mailconnect.validation.MAX_UID`
    (UIDs are 32-bit unsigned, so a real message may have one past :data:`MAX_ID`)."""

    def to_python(self, value: str) -> int:
        number = parse_uid(value)
        if number is None:
            raise NoMatch()
        return number


def register_converters(setup: Any) -> None:
    """``record_once`` callback: the app's URL map learns both converters (before any rule)."""
    converters = setup.app.url_map.converters
    for name, converter in ((ID_CONVERTER, IdConverter), (UID_CONVERTER, UidConverter)):
        if converters.setdefault(name, converter) is not converter:
            raise RuntimeError(f"the app already has another {name!r} URL converter")


__all__ = ["ID_CONVERTER", "UID_CONVERTER", "IdConverter", "UidConverter", "register_converters"]
