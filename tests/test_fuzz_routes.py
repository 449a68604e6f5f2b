"""Property: no route of the example app (our blueprint and the host's own pages) answers 500
to hostile input, and no exception escapes (TESTING propagates them to the test client).

Every rule of ``app.url_map`` is requested with each of its methods, signed in as a person
and as an admin, with CSRF on and a real token on POSTs (sometimes none: that must be a 400).
Path arguments, query strings and form fields get hostile values: numbers past 2**31 and
2**63 (INTEGER on PostgreSQL and MariaDB; SQLite's limit), Unicode
digits ("²", "٣"), 5,000 digits, NUL, CR/LF, 60 KB strings, empty, repeated and missing
fields, mixed with valid ids so the pages behind the permission checks run too.

Deterministic (``derandomize``, no example database), and bounded: a fixed number of examples
per route and method, fewer on PostgreSQL and MariaDB (``MAILCONNECT_TEST_DATABASE_URLS``).
Nothing leaves the machine: connection tests are rate-limited to zero, MX lookups are off, and
the stored accounts point at loopback, which the network guard refuses at once.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict
from werkzeug.routing import Rule

from example_app.models import Project, User
from example_app.models import db as example_db
from flask_mailconnect import MailAccount
from flask_mailconnect.models import MailProvider
from tests.conftest import database_urls, db_label
from tests.examplehost import example_app_on, sign_in

#: Examples per (route, method): SQLite, then each server database.
EXAMPLES = {"sqlite": 40, "server": 12}

HOSTILE = [
    "", " ", "0", "-1", "1", "2", "3", "07", str(2**31), str(2**63 - 1), str(2**63),
    str(2**64), "9" * 40, "7" * 5000, "\u00b2", "\u0663", "1\u00b2", "\u0661\u0662", "\uff11",
    "1.5", "1e3", "0x10", "\x00", "a\x00b", "\r\n", "x\r\nBcc: y@example.com", "\t", "\x1b[2J",
    "\u2028", "A" * 60_000, "%", "_", "%_" * 300, "' OR 1=1 --", "<script>x</script>",
    "../../etc/passwd", "//evil.test", "https://evil.test/", "javascript:alert(1)",
    "alice@demo.test", "a@b", "@", "x@" + "a" * 300 + ".test", "user", "organization", "main",
    "project", "galaxy", "google", "other", "ssl", "starttls", "none", "y", "on", "imap_smtp",
    "graph", "oauth2", "password", "email", "INBOX", "Sent",
]  # fmt: skip
#: Every form field and query parameter our pages and the host's read.
FIELDS = [
    "csrf_token", "q", "status", "scope", "provider", "after", "before", "action", "actor",
    "account", "since", "until", "next", "email", "account_id", "owner_kind", "owner_id",
    "state", "code", "error", "error_description", "inbox", "sent", "archive", "trash",
    "username", "password", "smtp_host", "smtp_port", "smtp_security", "imap_host",
    "imap_port", "imap_security", "receives", "sends", "display_name", "signature_html",
    "notify_email", "mute_mobile", "is_default", "continue_", "test", "save", "submit",
    "name", "enabled", "service_type", "login_format", "auth_method", "client_id",
    "client_secret", "server_metadata_url", "authorize_url", "token_url", "revoke_url",
    "userinfo_url", "scopes", "domains", "filename",
]  # fmt: skip
#: For path arguments: the nastiest first (a derandomized run tries early ones most).
PATH_HOSTILE = [
    str(2**31), str(2**63), "7" * 5000, "\u00b2", "\u0663", "0", "-1", "\x00", "a\r\nb",
    "A" * 60_000, str(2**31 - 1), str(2**63 - 1), "9" * 40, "%_", "galaxy", "projct", "main",
    "user", "project", "organization", "google", "acme", "x" * 65, " ",
]  # fmt: skip
_ARG = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


@pytest.fixture(params=database_urls(), ids=db_label)
def fuzz_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Flask, str]]:
    config = {
        "MAILCONNECT_PROVIDERS": {"google": {"client_id": "c", "client_secret": "s"}},
        "MAILCONNECT_EXTERNAL_URL": "http://localhost",
        "MAILCONNECT_TESTS_PER_HOUR": 0,  # Test connection never leaves the machine
        "MAILCONNECT_MX_LOOKUP": False,
        "MAILCONNECT_CONNECT_TIMEOUT": 1,
    }
    with example_app_on(request.param, tmp_path, **config) as app:
        _seed(app)
        yield app, db_label(request.param)


def _seed(app: Flask) -> None:
    """Accounts of a person, a project and the organisation, and an admin-entered provider:
    the pages behind valid ids run too (their servers are loopback: refused at once)."""
    with app.app_context():
        alice = example_db.session.scalars(
            sa.select(User).where(User.email == "alice@demo.test")
        ).one()
        project = example_db.session.scalars(sa.select(Project).order_by(Project.id)).first()
        assert project is not None
        for kind, ident, email in (
            ("user", str(alice.id), "alice@demo.test"),
            ("project", str(project.id), "project@demo.test"),
            ("organization", "main", "org@demo.test"),
        ):
            example_db.session.add(
                MailAccount(
                    owner_kind=kind,
                    owner_id=ident,
                    provider="other",
                    email=email,
                    username=email,
                    password="pw",
                    smtp_host="127.0.0.1",
                    smtp_port=587,
                    smtp_security="starttls",
                    imap_host="127.0.0.1",
                    imap_port=993,
                    imap_security="ssl",
                    is_default=True,
                )  # fmt: skip
            )
        example_db.session.add(
            MailProvider(
                key="acme",
                name="Acme",
                smtp_host="smtp.acme.org",
                smtp_port=587,
                smtp_security="starttls",
                imap_host="imap.acme.org",
                imap_port=993,
                imap_security="ssl",
            )  # fmt: skip
        )
        example_db.session.commit()


def _valid_ids(app: Flask) -> list[str]:
    with app.app_context():
        ids = [str(i) for i in example_db.session.scalars(sa.select(MailAccount.id))]
        ids += [str(i) for i in example_db.session.scalars(sa.select(MailProvider.id))]
        ids += [str(i) for i in example_db.session.scalars(sa.select(User.id))]
        ids += [str(i) for i in example_db.session.scalars(sa.select(Project.id))]
    return sorted(set(ids))


def _signed_in(app: Flask, email: str, password: str) -> tuple[FlaskClient, str, dict[str, Any]]:
    """A client signed in through the login form, its CSRF token and its session's login
    keys (restored before each example: a fuzzed POST /logout signs it out)."""
    client = app.test_client()
    token = sign_in(client, email, password)
    with client.session_transaction() as session:
        keys = {k: v for k, v in session.items() if k.startswith("_")}
    return client, token, keys


def _routes(app: Flask) -> list[tuple[Rule, str]]:
    found = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint)):
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((rule, method))
    return found


def _path(rule: Rule, values: dict[str, str]) -> str:
    return _ARG.sub(lambda m: quote(values[m.group(1)], safe=""), rule.rule)


def _fuzz(
    rule: Rule,
    method: str,
    clients: dict[str, tuple[FlaskClient, str, dict[str, Any]]],
    valid: list[str],
    examples: int,
    tally: dict[int, int],
) -> None:
    """Request ``method`` ``rule`` ``examples`` times with generated input; count statuses."""
    value = st.one_of(st.sampled_from(HOSTILE), st.sampled_from(valid), st.text(max_size=12))
    pairs = st.lists(st.tuples(st.sampled_from(FIELDS), value), max_size=8)
    path_value = st.one_of(st.sampled_from(PATH_HOSTILE), st.sampled_from(valid))

    @settings(
        max_examples=examples, derandomize=True, database=None, deadline=None,
        suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    @given(
        who=st.sampled_from(sorted(clients)),
        path_values=st.fixed_dictionaries({a: path_value for a in sorted(rule.arguments)}),
        query=pairs,
        form=pairs,
        with_token=st.booleans() if method == "POST" else st.just(False),
        as_json=st.booleans(),
    )
    def request_once(
        who: str,
        path_values: dict[str, str],
        query: list[tuple[str, str]],
        form: list[tuple[str, str]],
        with_token: bool,
        as_json: bool,
    ) -> None:
        client, token, keys = clients[who]
        with client.session_transaction() as session:
            session.update(keys)  # signed in again, whatever the last request did
        url = _path(rule, path_values)
        if query:
            url += "?" + urlencode(query)
        headers = {"Accept": "application/json"} if as_json else {}
        data = MultiDict(form) if method == "POST" else None
        if with_token and data is not None:
            data.add("csrf_token", token)
            headers["X-CSRFToken"] = token
        response = client.open(url, method=method, data=data, headers=headers)
        tally[response.status_code] = tally.get(response.status_code, 0) + 1
        assert response.status_code < 500 or response.status_code == 502, (
            f"{method} {url[:300]} as {who}: {response.status_code}"
        )
        response.close()

    request_once()


def test_no_route_answers_500(fuzz_app: tuple[Flask, str], capsys: pytest.CaptureFixture) -> None:
    app, label = fuzz_app
    valid = _valid_ids(app)
    clients = {
        "person": _signed_in(app, "alice@demo.test", "alice"),
        "admin": _signed_in(app, "admin@demo.test", "admin"),
    }
    routes = _routes(app)
    examples = EXAMPLES["sqlite" if label == "sqlite" else "server"]
    tally: dict[int, int] = {}
    started = time.monotonic()
    for rule, method in routes:
        _fuzz(rule, method, clients, valid, examples, tally)
    elapsed = time.monotonic() - started
    count = sum(tally.values())
    with capsys.disabled():
        print(
            f"\n[fuzz] {label}: {count} requests over {len(routes)} routes x methods "
            f"in {elapsed:.1f}s; statuses {dict(sorted(tally.items()))}"
        )
    assert count >= len(routes)
