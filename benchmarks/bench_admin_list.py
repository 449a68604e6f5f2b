"""Admin account list at 100,000 accounts on SQLite: page 1 against a deep page, and queries.

Keyset pagination (``?after=<id>``) makes every page one range scan on the primary key, so a
page near the end costs what the first one does: the printed ratio should stay near 1.0 (an
OFFSET page would grow with its depth). The SQL statements per page are counted too; they must
not depend on the number of rows.
"""

from __future__ import annotations

import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from flask_mailconnect.models import MailAccount
from tests import hostapp

ROWS = 100_000
ROUNDS = 15


def _seed(db: Any, rows: int) -> None:
    owners = [("user", "1"), ("user", "2"), ("user", "3"), ("organization", "main")]
    batch = []
    for i in range(rows):
        kind, ident = owners[i % 4]
        batch.append({
            "owner_kind": kind, "owner_id": ident, "provider": ("gmail", "other")[i % 2],
            "auth_method": "password", "email": f"box{i:06d}@corp.example", "username": "u",
            "smtp_host": "smtp.corp.example", "smtp_port": 587, "smtp_security": "starttls",
            "status": ("connected", "error")[i % 7 == 0], "active": i % 11 != 0,
            "is_default": False, "display_name": "", "signature_html": "",
            "signature_text": "", "notify_email": True, "notify_mobile": True,
            "send_via": "smtp", "token_scopes": "",
        })  # fmt: skip
        if len(batch) == 5000:
            db.session.execute(sa.insert(MailAccount), batch)
            batch = []
    if batch:
        db.session.execute(sa.insert(MailAccount), batch)
    db.session.commit()


def _time(client: Any, url: str) -> float:
    samples = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        response = client.get(url)
        samples.append(time.perf_counter() - started)
        assert response.status_code == 200
    return statistics.median(samples)


def main(rows: int = ROWS) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        app, ext = hostapp.create_app(url)
        ext.user_getter(lambda user_id: hostapp.db.session.get(hostapp.User, int(user_id)))
        with app.app_context():
            _seed(hostapp.db, rows)
            last = hostapp.db.session.scalar(sa.select(sa.func.min(MailAccount.id)))
        client = app.test_client()
        client.post("/test-login/3")
        first = "/email/admin/accounts"
        deep = f"/email/admin/accounts?after={last + 60}"  # the last full page
        page = client.get(deep).get_data(as_text=True)
        assert len(re.findall(r"<tr data-account-id=", page)) == 50
        filtered = "/email/admin/accounts?status=error&provider=gmail"
        counts = []
        with app.app_context():
            engine = hostapp.db.engine
        for target in (first, deep, filtered):
            seen: list[str] = []

            def record(*args: Any, seen: list[str] = seen) -> None:
                seen.append(args[2])

            sa.event.listen(engine, "before_cursor_execute", record)
            client.get(target)
            sa.event.remove(engine, "before_cursor_execute", record)
            counts.append(len(seen))
        t_first, t_deep, t_filtered = (
            _time(client, first),
            _time(client, deep),
            _time(client, filtered),
        )
        print(f"admin account list, {rows:,} accounts on SQLite (median of {ROUNDS}):")
        print(f"  page 1          {t_first * 1000:7.2f} ms  ({counts[0]} queries)")
        print(f"  last page       {t_deep * 1000:7.2f} ms  ({counts[1]} queries)")
        print(f"  filtered page 1 {t_filtered * 1000:7.2f} ms  ({counts[2]} queries)")
        print(f"  ratio last page / page 1: {t_deep / t_first:.2f}")
        with app.app_context():
            hostapp.db.session.remove()
            hostapp.db.engine.dispose()


if __name__ == "__main__":
    main()
