"""``/detect`` (the connect page's script) cannot be used to make the server query DNS at will:
MX lookups only for syntactically valid domains, a per-person budget per minute, answers (also
negative ones) cached; admin and preset domains keep answering without DNS (L9)."""

from __future__ import annotations

from tests.conftest import login
from tests.mx_dns import make_app
from tests.peers.dns_server import DNSServer


def domains_asked(server: DNSServer) -> set[str]:
    """Domains detection asked DNS about (MX, and SRV as ``_imaps._tcp.<domain>``...)."""
    return {name.rpartition("._tcp.")[2] for name, _type in server.queries}


def test_invalid_domains_are_never_looked_up(dns_server: DNSServer) -> None:
    app = make_app(dns_server)
    client = app.test_client()
    login(client, 1)
    for bad in ("a@-bad-.com", "a@no_underscores.com", "a@x..com", "a@" + "x" * 300 + ".com",
                "a@single", "a@1.2.3.4", "a@space d.com"):  # fmt: skip
        answer = client.get("/email/detect", query_string={"email": bad}).get_json()
        assert answer["provider"] == "other", bad
    assert dns_server.queries == []


def test_mx_lookups_per_person_are_limited(dns_server: DNSServer) -> None:
    from flask_mailconnect.runtime import DETECT_MX_PER_MINUTE

    app = make_app(dns_server)
    assert app.extensions["mailconnect"].detect_window.limit == DETECT_MX_PER_MINUTE
    alice, bob = app.test_client(), app.test_client()
    login(alice, 1)
    login(bob, 2)
    for n in range(DETECT_MX_PER_MINUTE):
        alice.get(f"/email/detect?email=a@unknown-{n}.org")
    assert len(domains_asked(dns_server)) == DETECT_MX_PER_MINUTE
    # Over budget: no more DNS for alice, but known domains still answer, and bob is unaffected.
    answer = alice.get("/email/detect?email=ann@acme-widgets.com").get_json()
    assert (answer["found"], answer["source"], answer["provider"]) == (False, None, "other")
    assert "too many look-ups" in answer["message"]
    assert alice.get("/email/detect?email=x@gmail.com").get_json()["provider"] == "google"
    assert len(domains_asked(dns_server)) == DETECT_MX_PER_MINUTE
    answer = bob.get("/email/detect?email=ann@acme-widgets.com").get_json()
    assert (answer["provider"], answer["source"]) == ("google", "mx")
    # A negative answer is cached: asking again costs no query.
    before = len(dns_server.queries)
    bob.get("/email/detect?email=a@unknown-0.org")
    assert len(dns_server.queries) == before
