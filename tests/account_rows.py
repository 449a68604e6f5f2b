"""Account rows inserted in bulk, for the query-count tests: tests/test_query_counts.py and
tests/test_account_page_queries.py."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Flask

from flask_mailconnect import MailAccount
from tests.hostapp import db


def account_rows(owners: list[tuple[str, str]], per_owner: int = 1) -> list[dict[str, Any]]:
    """``per_owner`` password accounts for each (kind, id) in ``owners``, as INSERT rows: each
    owner's first is the default, every third (from the first) in error, every fifth inactive."""
    rows = []
    for kind, ident in owners:
        for n in range(per_owner):
            email = f"{kind}{ident}-{n}@example.com"
            rows.append(
                {
                    "owner_kind": kind, "owner_id": ident, "provider": "other",
                    "auth_method": "password", "email": email, "username": email,
                    "smtp_host": "smtp.example.test", "smtp_port": 587,
                    "smtp_security": "starttls", "is_default": n == 0,
                    "status": "connected" if n % 3 else "error", "active": n % 5 != 4,
                }
            )  # fmt: skip
    return rows


def insert_rows(app: Flask, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (from ``account_rows``) in one executemany, committed."""
    with app.app_context():
        db.session.execute(sa.insert(MailAccount), rows)
        db.session.commit()
