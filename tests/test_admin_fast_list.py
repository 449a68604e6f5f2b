"""The admin account list's fast paths show what the slow ones showed.

- the page's statement is built once per set of filters and reused with other values
  (views/admin/lists.py ``keyset(shape=...)``): every filter, search and page shows the rows a
  plain filter over all accounts gives, on SQLite and each database in
  ``MAILCONNECT_TEST_DATABASE_URLS``;
- the rows' CSRF field is written without building a form: it is WTForms' field, and a button
  on the page works;
- the tabs' links are kept per app and request root: an app mounted under a prefix, or a host
  whose ``@url_defaults`` add to every link, still gets its own links;
- rows without a character to escape skip the per-value escaping: still the template's rows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from flask import Flask, render_template_string, url_for
from flask_wtf.csrf import validate_csrf
from markupsafe import escape

from flask_mailconnect import MailConnect
from flask_mailconnect.models import MailAccount
from flask_mailconnect.views.admin_forms import ActionForm
from tests import hostapp
from tests.admin_row_template import JINJA_ROWS
from tests.conftest import (
    captured_context,
    cleaned_up,
    database_urls,
    db_label,
    login,
    override_templates,
)

PEOPLE = {"1": "alice@example.test", "2": "bob@example.test", "3": "admin@example.test"}


@pytest.fixture(params=database_urls(), ids=db_label)
def site(request: pytest.FixtureRequest) -> Iterator[tuple[Flask, MailConnect]]:
    app, ext = hostapp.create_app(request.param, MAILCONNECT_ADMIN_PAGE_SIZE=7)

    @ext.user_search
    def search(query: str, limit: int) -> list[Any]:
        found = [i for i, email in PEOPLE.items() if query.lower() in email]
        return [hostapp.db.session.get(hostapp.User, int(i)) for i in found][:limit]

    with cleaned_up(app):
        yield app, ext


#: Addresses with LIKE's special characters: a search for them must match them literally.
ODD = ["per%cent@corp.example", "under_score@corp.example", "back\\slash@corp.example"]


def _accounts() -> list[dict[str, Any]]:
    owners = [("user", "1"), ("user", "2"), ("organization", "main"), ("user", "3")]
    rows = []
    for i in range(40):
        kind, ident = owners[i % 4]
        email = ODD[i // 13] if i % 13 == 5 else f"box{i:03d}@corp.example"
        rows.append({
            "owner_kind": kind, "owner_id": ident, "provider": ("gmail", "other")[i % 2],
            "auth_method": "password", "email": email, "username": "u",
            "smtp_host": "smtp.corp.example", "smtp_port": 587, "smtp_security": "starttls",
            "status": ("connected", "error")[i % 3 == 0], "active": i % 5 != 0,
        })  # fmt: skip
    return rows


def _ids(page: str) -> list[int]:
    return [int(x) for x in re.findall(r'<tr data-account-id="(\d+)"', page)]


def _matches(row: dict[str, Any], args: dict[str, str]) -> bool:
    """The filters as the page describes them, over the rows in Python."""
    status, q = args.get("status"), args.get("q", "")
    if status == "inactive" and row["active"]:
        return False
    if status and status != "inactive" and row["status"] != status:
        return False
    if args.get("scope") and row["owner_kind"] != args["scope"]:
        return False
    if args.get("provider") and row["provider"] != args["provider"]:
        return False
    if q:
        people = [i for i, email in PEOPLE.items() if q.lower() in email]
        return (
            q.lower() in row["email"].lower()
            or row["owner_id"] == q
            or (row["owner_kind"] == "user" and row["owner_id"] in people)
        )
    return True


FILTERS = [
    {},
    {"status": "error"},
    {"status": "inactive"},
    {"scope": "organization"},
    {"provider": "gmail", "status": "connected"},
    {"q": "box01"},
    {"q": "%"},  # LIKE's wildcards and escape, matched as typed
    {"q": "_"},
    {"q": "\\"},
    {"q": "bob@"},  # by owner, through the host's user search
    {"q": "main"},  # an owner id
    {"q": "nobody-at-all"},
    {"q": "box", "scope": "user", "provider": "other", "status": "error"},
]


def test_every_filter_and_page_shows_what_a_filter_over_all_rows_gives(
    site: tuple[Flask, MailConnect],
) -> None:
    app, _ext = site
    rows = _accounts()
    with app.app_context():
        hostapp.db.session.execute(sa.insert(MailAccount), rows)
        hostapp.db.session.commit()
        ids = list(hostapp.db.session.scalars(sa.select(MailAccount.id).order_by(MailAccount.id)))
    by_id = dict(zip(ids, rows, strict=True))
    client = app.test_client()
    login(client, 3)
    # Twice over: the second round reuses every statement the first one built.
    for _round in range(2):
        for args in FILTERS:
            expected = sorted((i for i, r in by_id.items() if _matches(r, args)), reverse=True)
            seen: list[int] = []
            pages: list[list[int]] = []
            url = client.get("/email/admin/accounts", query_string=args).request.url
            while url:
                page = client.get(url).get_data(as_text=True)
                pages.append(_ids(page))
                seen += pages[-1]
                found = re.search(r'href="([^"]+)" rel="next"', page)
                url = found.group(1).replace("&amp;", "&") if found else ""
            assert seen == expected, args
            if len(pages) > 1:  # and back: "Newer" from the second page is the first
                page = client.get(
                    "/email/admin/accounts", query_string={**args, "after": pages[0][-1]}
                ).get_data(as_text=True)
                newer = re.search(r'href="([^"]+)" rel="prev"', page)
                assert newer
                back = client.get(newer.group(1).replace("&amp;", "&")).get_data(as_text=True)
                assert _ids(back) == pages[0], args


@pytest.fixture
def list_app() -> Iterator[tuple[Flask, MailConnect]]:
    app, ext = hostapp.create_app()
    with app.app_context():
        hostapp.db.session.execute(sa.insert(MailAccount), _accounts()[:12])
        hostapp.db.session.commit()
    with cleaned_up(app):
        yield app, ext


@pytest.mark.parametrize("field_name", ["csrf_token", "my_token"])
def test_the_rows_csrf_field_is_wtforms_and_their_buttons_work(
    list_app: tuple[Flask, MailConnect], field_name: str
) -> None:
    app, _ext = list_app
    app.config["WTF_CSRF_FIELD_NAME"] = field_name
    client = app.test_client()
    login(client, 3)
    with captured_context(app) as captured:
        page = client.get("/email/admin/accounts").get_data(as_text=True)
    with client.session_transaction() as session:
        stored = dict(session)
    with app.test_request_context("/email/admin/accounts"):
        from flask import session

        session.update(stored)
        ours, theirs = str(captured["csrf_field"]), str(getattr(ActionForm(), field_name)(id=False))
        # The same field; the token signed for the same session (its timestamp may differ).
        value = re.compile(r'value="([^"]+)"')
        assert value.sub("", ours) == value.sub("", theirs)
        for field in (ours, theirs):
            found = value.search(field)
            assert found
            validate_csrf(found.group(1), token_key=field_name)  # raises when not
    # The first row's Deactivate button, as a browser sends it.
    form = re.search(r'<form method="post" action="([^"]+)" class="mc-inline-form">\s*'
                     r'<input name="(\w+)" type="hidden" value="([^"]+)">', page)  # fmt: skip
    assert form and form.group(2) == field_name
    answer = client.post(form.group(1), data={field_name: form.group(3), "next": "/"})
    assert answer.status_code == 302
    account_id = int(form.group(1).split("/")[-2])
    with app.app_context():
        assert hostapp.db.session.get(MailAccount, account_id).active is False  # type: ignore[union-attr]
    # Without the token the same button is refused.
    client.post(f"/email/admin/accounts/{account_id}/reactivate", data={"next": "/"})
    with app.app_context():
        assert hostapp.db.session.get(MailAccount, account_id).active is False  # type: ignore[union-attr]


def _tabs(page: str) -> list[str]:
    return re.findall(r'<a class="mc-tab" href="([^"]+)"', page)


def test_tab_links_follow_the_request_root_and_the_hosts_url_defaults(
    list_app: tuple[Flask, MailConnect],
) -> None:
    app, _ext = list_app
    client = app.test_client()
    login(client, 3)
    plain = _tabs(client.get("/email/admin/accounts").get_data(as_text=True))
    assert plain[0] == "/email/admin/accounts" and len(plain) == 5
    # The same app mounted under /mounted (SCRIPT_NAME): its links, not the cached ones.
    mounted = client.get(
        "/email/admin/accounts", environ_overrides={"SCRIPT_NAME": "/mounted"}
    ).get_data(as_text=True)
    assert _tabs(mounted) == ["/mounted" + link for link in plain]
    assert _tabs(client.get("/email/admin/accounts").get_data(as_text=True)) == plain


def test_tab_links_take_a_hosts_url_defaults(list_app: tuple[Flask, MailConnect]) -> None:
    app, _ext = list_app
    tenant = {"value": "north"}

    @app.url_defaults
    def add_tenant(endpoint: str, values: dict[str, Any]) -> None:
        if endpoint.startswith("mailconnect.admin_"):
            values.setdefault("tenant", tenant["value"])

    client = app.test_client()
    login(client, 3)
    first = _tabs(client.get("/email/admin/accounts").get_data(as_text=True))
    tenant["value"] = "south"
    second = _tabs(client.get("/email/admin/accounts").get_data(as_text=True))
    assert first[0] == "/email/admin/accounts?tenant=north"
    assert second[0] == "/email/admin/accounts?tenant=south"


def test_a_pager_link_whose_search_holds_the_marker_digits_is_still_right(
    list_app: tuple[Flask, MailConnect],
) -> None:
    """The pager's links are one url_for split at a marker number: a search term holding
    those digits (sorted before the cursor) must not move the cut."""
    from flask_mailconnect.views.links import _MARKER, page_url

    app, _ext = list_app
    app.url_map.sort_parameters = True  # "account" sorts before "after": the term comes first
    term = f"x{_MARKER}y"
    with app.test_request_context("/email/admin/audit"):
        for cursor in (5, 12345):
            want = url_for("mailconnect.admin_audit", account=term, after=cursor)
            assert str(page_url("after", cursor, {"account": term})) == escape(want)


@pytest.mark.parametrize("owner_id", ["7", "a b/c", "Zx9"])
def test_rows_without_characters_to_escape_are_still_the_templates(
    list_app: tuple[Flask, MailConnect], owner_id: str
) -> None:
    """Every value plain (no ``& < > " '``): the rows skip per-value escaping; and an owner id
    that needs quoting in a link, or does not, is linked as one path segment."""
    app, _ext = list_app
    with app.app_context():
        hostapp.db.session.execute(sa.update(MailAccount).values(display_name="Plain Name"))
        hostapp.db.session.execute(
            sa.update(MailAccount)
            .where(MailAccount.owner_kind == "user", MailAccount.owner_id == "1")
            .values(owner_id=owner_id)
        )
        hostapp.db.session.commit()
    client = app.test_client()
    login(client, 3)
    with captured_context(app) as captured:
        page = client.get("/email/admin/accounts").get_data(as_text=True)
    with app.test_request_context("/email/admin/accounts"):
        expected = render_template_string(JINJA_ROWS, **captured)
    # One path segment, as the id is stored ("/" and spaces quoted).
    person = "/email/admin/users/" + quote(owner_id, safe="")
    assert str(captured["rows_html"]) == expected and expected in page
    assert f'<a href="{person}">' in page


#: The filters' options as ``mailconnect/admin/accounts.html`` wrote them before they moved to
#: Python (views/admin/account_rows.py ``options``).
JINJA_OPTIONS = (
    '{% for value, label in statuses %}<option value="{{ value }}"{% if args.status == value %}'
    " selected{% endif %}>{{ label }}</option>{% endfor %}|"
    '{% for kind in kinds %}<option value="{{ kind }}"{% if args.scope == kind %} selected'
    "{% endif %}>{{ kind_names[kind] }}</option>{% endfor %}|"
    '{% for key, p in providers.items() %}<option value="{{ key }}"{% if args.provider == key %}'
    " selected{% endif %}>{{ provider_titles[key] }}</option>{% endfor %}"
)


@pytest.mark.parametrize(
    "query",
    [{}, {"status": "error", "scope": "team", "provider": "google"}, {"status": "inactive"}],
)
def test_filter_options_are_what_the_template_wrote(
    list_app: tuple[Flask, MailConnect], query: dict[str, str]
) -> None:
    app, ext = list_app
    ext.register_scope("team", load=lambda ident: ident, title="A & B")
    client = app.test_client()
    login(client, 3)
    with captured_context(app) as captured:
        page = client.get("/email/admin/accounts", query_string=query).get_data(as_text=True)
    with app.test_request_context("/email/admin/accounts"):
        expected = render_template_string(JINJA_OPTIONS, **captured).split("|")
    ours = [str(captured[f"{n}_options"]) for n in ("status", "scope", "provider")]
    assert ours == expected
    assert all(part in page for part in expected)
    assert '<option value="team"' in expected[1]
    for name, value in query.items():  # the chosen filter shows as chosen
        assert (
            f'<option value="{value}" selected>'
            in ours[("status", "scope", "provider").index(name)]
        )


def test_an_override_of_the_list_may_use_the_action_form(
    list_app: tuple[Flask, MailConnect],
) -> None:
    """The stock list writes its rows in Python and never builds ``action_form``; a host's own
    ``admin/accounts.html`` using it gets the form (built on first use) and its CSRF field,
    which the deactivate button accepts."""
    app, _ext = list_app
    override_templates(app, {"mailconnect/admin/accounts.html": (
        "{% for a in accounts %}<form method=post action=\"{{ url_for("
        "'mailconnect.admin_account_deactivate', account_id=a.id) }}\">"
        "{{ action_form.csrf_token(id=False) }}</form>{% endfor %}"
    )})  # fmt: skip
    client = app.test_client()
    login(client, 3)
    page = client.get("/email/admin/accounts").get_data(as_text=True)
    forms = re.findall(
        r'action="([^"]+)"><input name="csrf_token" type="hidden" value="([^"]+)">', page
    )
    assert len(forms) == 12 and len({token for _, token in forms}) == 1
    with app.app_context():
        active = {a.id for a in hostapp.db.session.query(MailAccount).filter_by(active=True)}
    action, token = next(f for f in forms if int(f[0].split("/")[-2]) in active)
    assert client.post(action, data={"csrf_token": token}).status_code == 302
    with app.app_context():
        account_id = int(action.split("/")[-2])
        assert hostapp.db.session.get(MailAccount, account_id).active is False
