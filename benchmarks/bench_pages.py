"""Pages at 100,000 accounts on PostgreSQL under gunicorn: requests per second against a bare page.

What is measured, side by side in one run: the settings page (``/email/``, the signed-in person's
accounts), one account's page, and the admin account list, each against a bare page of the same
host app in the same layout (signed in through Flask-Login, the host's base template, one line of
content). The app runs under gunicorn with 2 sync workers on 127.0.0.1; the load comes from
another process (:func:`_load`, threads over ``http.client``), so the generator's own Python does
not share the workers' interpreters. Each round runs the bare page, every page, and the bare
page again, for a fixed time each; a page's ratio in a round is over the mean of that round's two
bare runs (a slow moment of the machine hits both sides), and the table gives the median of
:data:`ROUNDS` rounds with the spread of the per-round ratios in the notes. p99 latency is
reported for the admin list.

The database is seeded once with :data:`ROWS` accounts: the measured person owns
:data:`OWNED` of them (a third OAuth), the rest spread over :data:`PEOPLE` other people, a few
projects and the organisation, so every admin page names many different owners.

Where: ``MAILCONNECT_BENCH_DATABASE_URL``, else the first ``postgresql`` URL in
``MAILCONNECT_TEST_DATABASE_URLS``; without one (or without gunicorn) the rows say "skipped".
The tables in that database are dropped and re-created.

Run alone: ``python -m benchmarks.bench_pages``; in ``make bench`` through :func:`rows`.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchmarks import handwritten
from benchmarks.table import Row, informational, measured, samples, skipped

ROWS = 100_000
PEOPLE = 5_000
OWNED = 3  #: accounts of the measured person (user 1): a mailbox or two and a shared one
PROJECTS = 40
WORKERS = 2
CLIENTS = 4  #: concurrent connections of the load generator
SECONDS = 1.5  #: per page and round (the bare page runs twice a round)
ROUNDS = 5
ROOT = Path(__file__).resolve().parent.parent

PAGES = {
    "bare": "/bench/bare",
    "settings": "/email/",
    "account": "/email/accounts/{account}",
    "admin list": "/email/admin/accounts",
    **handwritten.PAGES,  # the same pages written by hand: reference rows without a goal
}
#: The person whose pages are measured, and the admin.
PERSON, ADMIN = 1, 3


def database_url() -> str | None:
    url = os.environ.get("MAILCONNECT_BENCH_DATABASE_URL")
    if url:
        return url
    extra = os.environ.get("MAILCONNECT_TEST_DATABASE_URLS", "")
    return next((u for u in extra.replace(",", " ").split() if u.startswith("postgresql")), None)


# -- the app gunicorn serves --------------------------------------------------------------------

BARE = """{% extends "host_layout.html" %}{% block title %}Home{% endblock %}
{% block content %}<h1>Hello, {{ current_user.email }}</h1>{% endblock %}"""


def make_app(url: str | None = None, *, batched: bool = True) -> Any:
    """The test host app on the seeded database (tables left as they are), plus ``/bench/bare``
    and a project scope. ``batched``: register ``@users_getter`` (else the default loads the
    people on a page in one query of the host's user model)."""
    from flask import render_template
    from flask_login import login_required

    from tests import hostapp

    url = url or os.environ["MAILCONNECT_BENCH_URL"]
    app, ext = hostapp.create_app(
        url, reset=False, TESTING=False, SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 4}
    )

    bare_page = app.jinja_env.from_string(BARE)  # compiled once, like a file template

    @app.get("/bench/bare")
    @login_required
    def bare() -> str:
        return render_template(bare_page)

    @app.post("/bench/login/<int:user_id>")
    def bench_login(user_id: int) -> str:  # a cookie per measured person
        from flask_login import login_user

        login_user(hostapp.db.session.get(hostapp.User, user_id))
        return "ok"

    handwritten.install(app, hostapp.db, hostapp.User)
    ext.user_getter(lambda ident: hostapp.db.session.get(hostapp.User, int(ident)))
    if batched or os.environ.get("MAILCONNECT_BENCH_BATCHED") == "1":

        @ext.users_getter
        def users(ids: list[str]) -> dict[str, Any]:
            keys = [int(i) for i in ids if i.isdigit()]
            found = hostapp.db.session.scalars(
                sa.select(hostapp.User).where(hostapp.User.id.in_(keys))
            )
            return {str(u.id): u for u in found}

    projects = {str(n): f"Project {n}" for n in range(1, PROJECTS + 1)}
    ext.register_scope(
        "project",
        load=lambda ident: ident if ident in projects else None,
        label=lambda ident: projects[ident],
        list=lambda: list(projects),
        ident=str,
        can_manage=lambda user, project: False,
    )
    return app


def wsgi() -> Any:
    """gunicorn's entry: ``benchmarks.bench_pages:wsgi()``."""
    return make_app(batched=os.environ.get("MAILCONNECT_BENCH_BATCHED", "1") == "1")


# -- seeding ---------------------------------------------------------------------------------


def seed(url: str, rows: int = ROWS) -> int:
    """Re-create the tables with ``rows`` accounts; returns the id of one of the person's."""
    from flask_mailconnect import metadata
    from flask_mailconnect.models import MailAccount
    from tests import hostapp

    app, ext = hostapp.create_app(url)  # drops and re-creates both sets of tables, users 1-3
    with app.app_context():
        db = hostapp.db
        db.session.execute(
            sa.insert(hostapp.User),
            [{"id": 100 + n, "email": f"person{n}@corp.example"} for n in range(PEOPLE)],
        )
        batch: list[dict[str, Any]] = []
        for i in range(rows):
            if i < OWNED:
                kind, ident = "user", str(PERSON)
            elif i % 50 == 0:
                kind, ident = "organization", "main"
            elif i % 20 == 0:
                kind, ident = "project", str(1 + (i // 20) % PROJECTS)
            else:
                kind, ident = "user", str(100 + i % PEOPLE)
            oauth = i % 3 == 0
            batch.append({
                "owner_kind": kind, "owner_id": ident,
                "provider": ("gmail", "other", "google")[i % 3] if not oauth else "google",
                "auth_method": "oauth2" if oauth else "password",
                "email": f"box{i:06d}@corp.example", "username": f"box{i:06d}@corp.example",
                "smtp_host": "smtp.corp.example", "smtp_port": 587, "smtp_security": "starttls",
                "imap_host": "imap.corp.example", "imap_port": 993, "imap_security": "ssl",
                "status": ("connected", "error")[i % 7 == 0], "active": i % 11 != 0,
                "is_default": i == 0, "display_name": "", "signature_html": "",
                "signature_text": "", "notify_email": True, "notify_mobile": True,
                "send_via": "smtp", "token_scopes": "",
            })  # fmt: skip
            if len(batch) == 5000:
                db.session.execute(sa.insert(MailAccount), batch)
                batch = []
        if batch:
            db.session.execute(sa.insert(MailAccount), batch)
        db.session.commit()
        with db.engine.connect() as conn:  # planner statistics, as a live database has them
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("ANALYZE"))
        account = db.session.scalar(
            sa.select(sa.func.min(MailAccount.id)).where(MailAccount.owner_id == str(PERSON))
        )
        db.session.remove()
        db.engine.dispose()
    assert metadata is not None and ext is not None
    return int(account)


# -- gunicorn and the load generator ------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Gunicorn:
    """gunicorn serving :func:`wsgi` with ``WORKERS`` sync workers on a free port."""

    def __init__(self, url: str, *, batched: bool = True) -> None:
        self.port = _free_port()
        env = {**os.environ, "MAILCONNECT_BENCH_URL": url,
               "MAILCONNECT_BENCH_BATCHED": "1" if batched else "0"}  # fmt: skip
        exe = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or "gunicorn"
        self.process = subprocess.Popen(
            [exe, "--workers", str(WORKERS), "--bind", f"127.0.0.1:{self.port}",
             "--log-level", "warning", "benchmarks.bench_pages:wsgi()"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.request("GET", "/")
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("gunicorn did not start")

    def request(self, method: str, path: str, cookie: str = "") -> http.client.HTTPResponse:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request(method, path, headers={"Cookie": cookie} if cookie else {})
        response = conn.getresponse()
        response.read()
        conn.close()
        return response

    def cookie_for(self, user_id: int, *paths: str) -> str:
        """A signed-in session cookie, as a browser would hold it after opening ``paths``
        once: their CSRF token is in it, so the measured requests do not each mint one."""
        response = self.request("POST", f"/bench/login/{user_id}")
        cookie = (response.getheader("Set-Cookie") or "").split(";", 1)[0]
        for path in paths:
            for _ in range(3):
                fresh = self.request("GET", path, cookie).getheader("Set-Cookie")
                if not fresh:
                    break
                cookie = fresh.split(";", 1)[0]
        return cookie

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


LOAD_SCRIPT = """
import http.client, json, sys, threading, time
port, path, cookie = sys.argv[1], sys.argv[2], sys.argv[3]
seconds, clients = float(sys.argv[4]), int(sys.argv[5])
latencies, failures = [], []
def run():
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        started = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
        conn.request("GET", path, headers={"Cookie": cookie})
        response = conn.getresponse(); response.read(); conn.close()
        if response.status != 200:
            failures.append(response.status)
        latencies.append(time.perf_counter() - started)
threads = [threading.Thread(target=run) for _ in range(clients)]
began = time.perf_counter()
[t.start() for t in threads]; [t.join() for t in threads]
print(json.dumps({"n": len(latencies), "elapsed": time.perf_counter() - began,
                  "latencies": latencies, "failures": failures[:5]}))
"""


def _load(server: Gunicorn, path: str, cookie: str, seconds: float) -> dict[str, float]:
    """Requests per second and p99 (ms) of ``path``, from a load generator in its own process."""
    out = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, str(server.port), path, cookie, str(seconds),
         str(CLIENTS)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    data = json.loads(out.stdout)
    if data["failures"]:
        raise RuntimeError(f"{path}: HTTP {data['failures']}")
    latencies = sorted(data["latencies"])
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return {"rps": data["n"] / data["elapsed"], "p99": p99 * 1000}


def _admin(page: str) -> bool:
    """The admin's pages (requested with the admin's cookie), the others the person's."""
    return page.endswith("admin list")


def measure(
    url: str, account: int, *, rounds: int = ROUNDS, seconds: float = SECONDS, batched: bool = True
) -> dict[str, list[dict[str, float]]]:
    """``{page: [{"rps", "p99", "ratio"} per round]}`` under gunicorn.

    Each round runs the bare page, then every page, then the bare page again; a page's
    ``ratio`` is its requests per second over the mean of that round's two bare runs, so a
    burst of load from elsewhere on the machine shifts both sides of a ratio alike.
    """
    server = Gunicorn(url, batched=batched)
    try:
        mine = [p.format(account=account) for k, p in PAGES.items() if not _admin(k)]
        cookies = {
            PERSON: server.cookie_for(PERSON, *mine),
            ADMIN: server.cookie_for(ADMIN, *(p for k, p in PAGES.items() if _admin(k))),
        }

        def run(page: str, length: float) -> dict[str, float]:
            who = ADMIN if _admin(page) else PERSON
            return _load(server, PAGES[page].format(account=account), cookies[who], length)

        for page in PAGES:  # warm every worker's caches and connections
            who = ADMIN if _admin(page) else PERSON
            target = PAGES[page].format(account=account)
            assert server.request("GET", target, cookies[who]).status == 200, target
            run(page, min(seconds, 0.5))
        results: dict[str, list[dict[str, float]]] = {page: [] for page in PAGES}
        for _ in range(rounds):
            before = run("bare", seconds)
            found = {page: run(page, seconds) for page in PAGES if page != "bare"}
            after = run("bare", seconds)
            bare = (before["rps"] + after["rps"]) / 2
            results["bare"].append({**before, "rps": bare, "ratio": 1.0})
            for page, one in found.items():
                results[page].append({**one, "ratio": one["rps"] / bare})
        return results
    finally:
        server.stop()


def rows(*, smoke: bool = False) -> list[Row]:
    figures = ("settings page", "account page", "admin list", "admin list p99",
               "settings page written by hand (reference)",
               "account page written by hand (reference)",
               "admin list written by hand (reference)")  # fmt: skip
    url = database_url()
    if url is None:
        reason = "no PostgreSQL (MAILCONNECT_BENCH_DATABASE_URL)"
        return [skipped(f, reason) for f in figures]
    try:
        import gunicorn  # noqa: F401
    except ImportError:
        return [skipped(f, "gunicorn is not installed (the bench extra)") for f in figures]
    account = seed(url, 300 if smoke else ROWS)
    found = measure(url, account, rounds=1 if smoke else ROUNDS, seconds=0.3 if smoke else SECONDS)
    size = "300" if smoke else f"{ROWS:,}"

    def rps(page: str) -> Any:
        return samples([r["rps"] for r in found[page]], "req/s")

    def ratio(page: str) -> float:
        return statistics.median(r["ratio"] for r in found[page])

    def spread(page: str) -> str:
        values = [r["ratio"] for r in found[page]]
        return f"{page}: ratio per round {min(values):.2f}-{max(values):.2f}"

    bare = rps("bare")
    result = [
        measured(f"settings page, {size} accounts, PG, gunicorn {WORKERS}w", rps("settings"),
                 bare, ratio("settings"), at_least=0.8, against="bare page",
                 note=spread("settings")),
        measured(f"account page, {size} accounts", rps("account"), bare, ratio("account"),
                 at_least=0.8, against="bare page", note=spread("account")),
        measured(f"admin list, {size} accounts", rps("admin list"), bare, ratio("admin list"),
                 at_least=0.5, against="bare page", note=spread("admin list")),
    ]  # fmt: skip
    for page, name in (("settings", "settings page"), ("account", "account page"),
                       ("admin list", "admin list")):  # fmt: skip
        hand = f"hand-written {page}"
        result.append(informational(
            f"{name} written by hand (reference)", rps(hand), bare, ratio(hand),
            against="bare page",
            note=f"{spread(hand)}; the same data and markup written directly with "
            "Flask-SQLAlchemy, Jinja and Flask-WTF, without translations, permissions or "
            "per-partial templates (benchmarks/handwritten.py): what a host writes without "
            "the extension",
        ))  # fmt: skip
    p99 = samples([r["p99"] for r in found["admin list"]], "ms")
    result.append(
        measured(
            "admin list p99",
            p99,
            samples([30.0], "ms"),
            at_most=1.0,
            against="goal",
            note="p99 of the admin list's latency against the 30 ms goal (ratio: p99 / 30 ms)",
        )  # fmt: skip
    )
    return result


def main() -> None:
    from benchmarks.table import print_table

    print_table(rows())


if __name__ == "__main__":
    main()
