"""Detection answers per domain, shared by every worker through the database
(``mailconnect_detect_cache``): an answer for a day, "nothing found" for an hour
(``MAILCONNECT_DETECT_CACHE``), so a busy site asks each source about a domain about once a day
whatever its number of processes. Keyed by the domain's ASCII (IDNA) form; an answer that may
be one person's (a login without placeholders) is never stored here (:func:`.run.detect`).

Reads and writes use their own short transaction on the engine, never the host's session: a
page that only looks servers up must not commit (or roll back) anything the host has pending.
The table is a cache: when it is missing (migrations not run yet) or the database refuses,
detection just runs without it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ..models import DetectCache
from .model import Finding, SourceAttempt

log = logging.getLogger("flask_mailconnect.detection")
_TABLE: sa.Table = DetectCache.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class CachePolicy:
    """Seconds an answer (``positive``) and a "nothing found" (``negative``) are kept."""

    positive: float = 86_400
    negative: float = 3_600

    @classmethod
    def from_config(cls, value: Any) -> CachePolicy | None:
        """``MAILCONNECT_DETECT_CACHE``: ``{"positive": s, "negative": s}``; falsy: off."""
        if not value:
            return None
        if not isinstance(value, Mapping):
            raise ValueError("MAILCONNECT_DETECT_CACHE must be a dict or None")
        return cls(
            positive=float(value.get("positive", cls.positive)),
            negative=float(value.get("negative", cls.negative)),
        )


@dataclass(frozen=True)
class Cached:
    finding: Finding | None
    tried: tuple[SourceAttempt, ...]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def load(engine: Engine, domain: str) -> Cached | None:
    """The unexpired answer for ``domain``, else ``None``."""
    query = sa.select(_TABLE.c.answer).where(
        _TABLE.c.domain == domain, _TABLE.c.expires_at > _now()
    )
    try:
        with engine.connect() as conn:
            text = conn.execute(query).scalar()
    except sa.exc.SQLAlchemyError as exc:
        log.warning("Detection cache unavailable: %s", type(exc).__name__)
        return None
    if text is None:
        return None
    try:
        data = json.loads(text)
        finding = Finding.from_dict(data["finding"]) if data.get("finding") else None
        tried = tuple(
            SourceAttempt(t["source"], t["outcome"], t.get("seconds"), t.get("detail", ""))
            for t in data.get("tried", ())
        )
    except (ValueError, KeyError, TypeError):
        return None  # written by another version: ask again
    return Cached(finding, tried)


def store(
    engine: Engine,
    domain: str,
    finding: Finding | None,
    tried: tuple[SourceAttempt, ...],
    seconds: float,
) -> None:
    """Keep the answer for ``seconds`` (replacing an older one); failures are only logged."""
    text = json.dumps(
        {
            "finding": finding.as_dict() if finding else None,
            "tried": [t.as_dict() for t in tried],
        }
    )
    row = {"domain": domain, "answer": text, "expires_at": _now() + timedelta(seconds=seconds)}
    try:
        with engine.begin() as conn:
            # Delete then insert works the same on SQLite, PostgreSQL and MariaDB; two workers
            # storing at once: one insert loses on the primary key, which is fine.
            conn.execute(
                _TABLE.delete().where(
                    sa.or_(_TABLE.c.domain == domain, _TABLE.c.expires_at < _now())
                )
            )  # this domain's old answer, and any expired one (the table stays small)
            conn.execute(_TABLE.insert().values(**row))
    except sa.exc.IntegrityError:
        pass
    except sa.exc.SQLAlchemyError as exc:
        log.warning("Detection cache not written: %s", type(exc).__name__)
