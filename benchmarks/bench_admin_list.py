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

from benchmarks.table import Row, measured, samples
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


def measure(rows: int = ROWS, rounds: int = ROUNDS) -> dict[str, Any]:
    """Page 1, the last page and a filtered page 1 at ``rows`` accounts on SQLite: the
    per-request samples (seconds) and the SQL statements each ran."""
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        app, ext = hostapp.create_app(url)
        ext.user_getter(lambda user_id: hostapp.db.session.get(hostapp.User, int(user_id)))
        with app.app_context():
            _seed(hostapp.db, rows)
            last = hostapp.db.session.scalar(sa.select(sa.func.min(MailAccount.id)))
        client = app.test_client()
        client.post("/test-login/3")
        size = int(app.config["MAILCONNECT_ADMIN_PAGE_SIZE"])
        pages = {
            "page 1": "/email/admin/accounts",
            "last page": f"/email/admin/accounts?after={last + size + 10}",  # the last full page
            "filtered page 1": "/email/admin/accounts?status=error&provider=gmail",
        }
        page = client.get(pages["last page"]).get_data(as_text=True)
        assert len(re.findall(r"<tr data-account-id=", page)) == size
        with app.app_context():
            engine = hostapp.db.engine
        counts: dict[str, int] = {}
        for name, target in pages.items():
            seen: list[str] = []

            def record(*args: Any, seen: list[str] = seen) -> None:
                seen.append(args[2])

            sa.event.listen(engine, "before_cursor_execute", record)
            client.get(target)
            sa.event.remove(engine, "before_cursor_execute", record)
            counts[name] = len(seen)
        times = {name: _samples(client, target, rounds) for name, target in pages.items()}
        with app.app_context():
            hostapp.db.session.remove()
            hostapp.db.engine.dispose()
    return {"times": times, "counts": counts}


def _samples(client: Any, url: str, rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        response = client.get(url)
        samples.append(time.perf_counter() - started)
        assert response.status_code == 200
    return samples


def rows(*, smoke: bool = False) -> list[Row]:
    """Rows for ``make bench``: the last page against page 1 (keyset pagination: about 1.0),
    and the statements per page at 100,000 accounts against a small table (flat)."""
    size = 300 if smoke else ROWS
    found = measure(size, 1 if smoke else ROUNDS)
    small = measure(300, 1)["counts"] if not smoke else found["counts"]
    times = {k: samples(v, "ms", 1000) for k, v in found["times"].items()}
    queries = found["counts"]
    return [
        measured(
            f"admin list last page vs page 1, {size:,} accounts, SQLite",
            times["last page"], times["page 1"], at_most=1.2, against="page 1",
        ),
        measured(
            f"admin list SQL statements per page, {size:,} vs 300 accounts",
            f"{queries['page 1']} (filtered {queries['filtered page 1']})",
            f"{small['page 1']}", queries["page 1"] / max(small["page 1"], 1), at_most=1.0,
            against="300 accounts",
        ),
    ]  # fmt: skip


def main(rows: int = ROWS) -> None:
    found = measure(rows)
    t = {k: statistics.median(v) for k, v in found["times"].items()}
    counts = found["counts"]
    print(f"admin account list, {rows:,} accounts on SQLite (median of {ROUNDS}):")
    for name in ("page 1", "last page", "filtered page 1"):
        print(f"  {name:15s} {t[name] * 1000:7.2f} ms  ({counts[name]} queries)")
    print(f"  ratio last page / page 1: {t['last page'] / t['page 1']:.2f}")


if __name__ == "__main__":
    main()
