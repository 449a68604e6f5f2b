"""Detection where people and admins meet it: the cache shared across workers (every test
database), ``/detect`` and the no-JS Continue step, the "Connect with ..." offer for a detected
OAuth provider (with the address as login hint), ``flask mailconnect detect`` and the facade."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from flask_mailconnect import Detection, MailConnect
from flask_mailconnect.detection import detect
from flask_mailconnect.runtime import DETECT_MX_PER_MINUTE
from tests import hostapp
from tests.conftest import database_urls, db_label, login
from tests.detection_helpers import ACME
from tests.peers.certs import TestCerts, make_certs
from tests.peers.detect_env import DetectPeers, detect_peers, fixture
from tests.peers.web_server import Route


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TestCerts:
    return make_certs(tmp_path_factory.mktemp("detect-view-certs"))


@pytest.fixture
def peers(certs: TestCerts) -> Iterator[DetectPeers]:
    zone = {"_submissions._tcp.srv-mail.net": [("SRV", "0 0 465 smtp.srv-mail.net.")]}
    with detect_peers(certs, zone) as found:
        found.ispdb("isp-one.net", Route(body=fixture("several.xml")))
        found.ispdb("acme-customer.net", Route(body=fixture("oauth2.xml")))
        found.ispdb("pop-only.net", Route(body=fixture("pop3_only.xml")))
        yield found


def _url(database: str, tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'shared.db'}" if database == "sqlite://" else database


# -- the cache, shared by every worker through the database -----------------------------------


@pytest.mark.parametrize("database", database_urls(), ids=db_label)
def test_answers_are_shared_across_workers_through_the_database(
    peers: DetectPeers, database: str, tmp_path: Path
) -> None:
    url = _url(database, tmp_path)
    first = peers.app(url)
    second = peers.app(url, reset=False)  # another worker: same database, its own state
    with first.test_request_context():
        found = detect("ana@isp-one.net")
        nothing = detect("ana@nobody-knows.net")
    assert (found.source, found.cached, nothing.found) == ("ispdb", False, False)
    asked = list(peers.web.seen)
    with second.test_request_context():
        again = detect("bo@isp-one.net")
        still_nothing = detect("bo@nobody-knows.net")
    assert again.cached and again.source == "ispdb"
    assert again.username == "bo@isp-one.net"  # the login is filled per address
    assert again.imap == found.imap and again.smtp == found.smtp
    assert still_nothing.cached and not still_nothing.found
    assert peers.web.seen == asked  # no source was asked again
    assert [t.source for t in again.tried][:2] == ["catalogue", "ispdb"]


def test_expired_answers_are_asked_again_and_the_cache_can_be_off(peers: DetectPeers) -> None:
    app = peers.app(MAILCONNECT_DETECT_CACHE={"positive": 0, "negative": 0})
    with app.test_request_context():
        detect("ana@isp-one.net")
        assert not detect("ana@isp-one.net").cached
    assert peers.web.seen.count("/ispdb/isp-one.net") == 2
    off = peers.app(MAILCONNECT_DETECT_CACHE=None)
    with off.test_request_context():
        detect("ana@isp-one.net")
        assert not detect("ana@isp-one.net").cached
    assert peers.web.seen.count("/ispdb/isp-one.net") == 4


def test_a_missing_cache_table_only_costs_the_cache(peers: DetectPeers) -> None:
    app = peers.app()
    with app.app_context():
        from flask_mailconnect.models import DetectCache

        DetectCache.__table__.drop(app.extensions["mailconnect"].db.engine)
    with app.test_request_context():
        first, second = detect("ana@isp-one.net"), detect("ana@isp-one.net")
    assert (first.source, second.source) == ("ispdb", "ispdb")
    assert not first.cached and not second.cached
    assert peers.web.seen.count("/ispdb/isp-one.net") == 2  # the second one asked again


# -- the page and /detect ------------------------------------------------------------------------


def test_detect_endpoint_gives_servers_and_where_they_came_from(peers: DetectPeers) -> None:
    client = peers.app().test_client()
    login(client, 1)
    data = client.get("/email/detect", query_string={"email": "ana@isp-one.net"}).get_json()
    assert data["found"] and data["source"] == "ispdb" and data["provider"] == "other"
    assert data["smtp"] == {"host": "smtp.isp-one.net", "port": 465, "security": "ssl"}
    assert data["username"] == "ana@isp-one.net"
    assert data["message"] == (
        "Servers for isp-one.net found from Mozilla's ISP database. Check them below: any "
        "field can be changed."
    )
    assert "tried" not in data


def test_detect_endpoint_limits_network_look_ups_per_person(peers: DetectPeers) -> None:
    client = peers.app().test_client()
    login(client, 1)
    for n in range(DETECT_MX_PER_MINUTE):
        data = client.get(f"/email/detect?email=ana@unknown{n}.net").get_json()
        assert data["not_asked"] == "" and not data["found"]
    assert any(
        p.startswith(f"/ispdb/unknown{DETECT_MX_PER_MINUTE - 1}.net") for p in peers.web.seen
    )
    asked = (list(peers.web.seen), list(peers.dns.queries))
    over = client.get("/email/detect?email=ana@one-too-many.net").get_json()
    assert (over["found"], over["not_asked"]) == (False, "limit")
    assert over["message"] == (
        "Servers for one-too-many.net could not be looked up right now (too many look-ups in "
        "a minute): enter them below."
    )
    assert (peers.web.seen, peers.dns.queries) == asked  # nothing was asked
    # Known and cached domains still answer; another person has their own budget.
    assert client.get("/email/detect?email=ana@gmail.com").get_json()["provider"] == "google"
    assert client.get("/email/detect?email=bo@unknown0.net").get_json()["cached"]
    login(client, 2)
    theirs = client.get("/email/detect?email=bo@one-too-many.net").get_json()
    assert theirs["not_asked"] == "" and any("one-too-many" in p for p in peers.web.seen)


@pytest.mark.parametrize("database", database_urls(), ids=db_label)
def test_detect_holds_no_database_connection_while_it_waits(
    peers: DetectPeers, database: str, tmp_path: Path
) -> None:
    app = peers.app(_url(database, tmp_path))
    with app.app_context():
        engine = hostapp.db.engine
    held: list[int] = []
    for domain in ("waiting.net", "waiting2.net"):
        peers.ispdb(domain, Route(body=fixture("several.xml"), on_request=lambda: held.append(
            engine.pool.checkedout())))  # fmt: skip
    client = app.test_client()
    login(client, 1)
    data = client.get("/email/detect?email=ana@waiting.net").get_json()
    assert data["source"] == "ispdb"
    assert held == [0]  # the person was loaded, then the connection went back to the pool
    # The no-JS details step too, and the page still renders after it.
    page = client.get("/email/connect?email=bo@waiting2.net")
    assert page.status_code == 200 and 'value="smtp.isp-one.net"' in page.get_data(as_text=True)
    assert held == [0, 0]


def test_detect_endpoint_needs_sign_in(peers: DetectPeers) -> None:
    response = peers.app().test_client().get("/email/detect?email=ana@isp-one.net")
    assert response.status_code in (302, 401)
    assert peers.web.seen == []


def test_no_js_continue_fills_the_found_servers(peers: DetectPeers) -> None:
    client = peers.app().test_client()
    login(client, 1)
    page = client.get("/email/connect?email=ana@pop-only.net").get_data(as_text=True)
    assert 'value="smtp.pop-only.net"' in page
    imap = re.search(r'<input[^>]*name="imap_host"[^>]*>', page)
    assert imap is not None and 'value=""' in imap.group(0)  # POP3 only: no IMAP server
    text = html.unescape(re.sub(r"\s+", " ", page))
    assert "Servers for pop-only.net found from Mozilla's ISP database" in text
    assert "only be read over POP3" in text


def test_a_detected_oauth_provider_offers_its_button_with_the_address(peers: DetectPeers) -> None:
    app = peers.app(MAILCONNECT_PROVIDERS=ACME)
    client = app.test_client()
    login(client, 1)
    data = client.get("/email/detect?email=ana@acme-customer.net").get_json()
    assert (data["provider"], data["oauth"], data["source"]) == ("acme", True, "ispdb")
    assert data["auth"] == ["oauth2", "password"]
    page = client.get("/email/connect?email=ana@acme-customer.net").get_data(as_text=True)
    offer = re.search(r'<div class="mc-oauth-offer" data-mc-oauth-offer="acme"( hidden)?>', page)
    assert offer is not None and offer.group(1) is None  # shown without JavaScript too
    assert "Connect with Acme Mail" in page
    assert 'name="login_hint" value="ana@acme-customer.net"' in page
    # The button's form starts the flow with the address as the login hint.
    token = re.search(
        r'id="mc-oauth-acme".*?name="csrf_token" type="hidden" value="([^"]+)"', page, re.S
    )
    assert token is not None
    response = client.post(
        "/email/oauth/acme/start",
        data={"csrf_token": token.group(1), "login_hint": "ana@acme-customer.net"},
    )
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.netloc == "id.acme-mail.net"
    assert parse_qs(location.query)["login_hint"] == ["ana@acme-customer.net"]


def test_a_hint_that_is_not_an_address_is_dropped(peers: DetectPeers) -> None:
    client = peers.app(MAILCONNECT_PROVIDERS=ACME).test_client()
    login(client, 1)
    page = client.get("/email/connect?email=ana@acme-customer.net").get_data(as_text=True)
    token = re.search(
        r'id="mc-oauth-acme".*?name="csrf_token" type="hidden" value="([^"]+)"', page, re.S
    )
    assert token is not None
    response = client.post(
        "/email/oauth/acme/start", data={"csrf_token": token.group(1), "login_hint": "a b@c d"}
    )
    assert "login_hint" not in parse_qs(urlsplit(response.headers["Location"]).query)


def test_password_providers_get_no_offer(peers: DetectPeers) -> None:
    client = peers.app(MAILCONNECT_PROVIDERS=ACME).test_client()
    login(client, 1)
    page = client.get("/email/connect?email=ana@isp-one.net").get_data(as_text=True)
    assert re.search(r'data-mc-oauth-offer="acme" hidden', page)


# -- the CLI and the facade -----------------------------------------------------------------------


def test_cli_prints_every_source_its_outcome_and_time(peers: DetectPeers) -> None:
    app = peers.app()
    result = app.test_cli_runner().invoke(args=["mailconnect", "detect", "ana@isp-one.net"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Servers for ana@isp-one.net"
    for source in ("catalogue", "ispdb", "autoconfig", "well-known", "srv", "mx", "autodiscover"):
        assert any(
            re.match(rf"  {re.escape(source)} +\w+ +(\d+\.\d{{3}}s|-)", line) for line in lines
        ), source
    assert re.search(r"  ispdb +found +\d+\.\d{3}s", result.output)
    assert re.search(r"  autoconfig +nothing +\d+\.\d{3}s  HTTP 404", result.output)
    assert "Result: ispdb (from Mozilla's ISP database)" in result.output
    assert "  SMTP      smtp.isp-one.net:465 SSL/TLS" in result.output
    assert re.search(r"Whole detection: \d+\.\d{3}s", result.output)
    nothing = app.test_cli_runner().invoke(args=["mailconnect", "detect", "x@nobody-knows.net"])
    assert "Result: nothing found" in nothing.output
    as_json = app.test_cli_runner().invoke(
        args=["mailconnect", "detect", "--json", "ana@isp-one.net"]
    )
    assert '"source": "ispdb"' in as_json.output


def test_the_facade_detects(peers: DetectPeers) -> None:
    app = peers.app()
    ext: Any = MailConnect.of(app)
    with app.test_request_context():
        found = ext.detect("ana@srv-mail.net")
    assert isinstance(found, Detection) and found.source == "srv"


def test_an_admin_connecting_for_a_person_offers_the_button_for_that_person(
    peers: DetectPeers,
) -> None:
    app = peers.app(MAILCONNECT_PROVIDERS=ACME)

    @MailConnect.of(app).user_getter
    def get(user_id: str) -> Any:
        return hostapp.db.session.get(hostapp.User, int(user_id)) if user_id.isdigit() else None

    client = app.test_client()
    login(client, 3)  # the admin, on Alice's (user 1) page
    page = client.get("/email/admin/users/1/connect?email=ana@acme-customer.net")
    text = page.get_data(as_text=True)
    form = re.search(r'<form [^>]*id="mc-oauth-acme".*?</form>', text, re.S)
    assert form is not None
    assert '<input type="hidden" name="owner_kind" value="user">' in form.group(0)
    assert '<input type="hidden" name="owner_id" value="1">' in form.group(0)
    # On one's own page the button connects one's own account: no owner fields.
    login(client, 1)
    own = client.get("/email/connect?email=ana@acme-customer.net").get_data(as_text=True)
    mine = re.search(r'<form [^>]*id="mc-oauth-acme".*?</form>', own, re.S)
    assert mine is not None and "owner_kind" not in mine.group(0)
