""" "Edit folders": the mailbox's folders, mapping pre-filled from SPECIAL-USE, saving, and a page
that explains broken settings instead of failing."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from flask_mailconnect import AuditEvent, MailConnect
from flask_mailconnect.exceptions import InvalidSettings
from flask_mailconnect.signals import account_updated
from tests.conftest import login
from tests.mailboxes import imap_client, make_account, reset_inbox
from tests.peers.dovecot import DovecotPeer

pytestmark = pytest.mark.peers


@pytest.fixture
def folders(imap_server: DovecotPeer) -> DovecotPeer:
    """A mailbox with Sent, Archive and Trash (SPECIAL-USE in Dovecot's config) and Work."""
    reset_inbox(imap_server)
    client = imap_client(imap_server)
    try:
        for name in ("Sent", "Archive", "Trash", "Work"):
            if not client.folder_exists(name):
                client.create_folder(name)
    finally:
        client.logout()
    return imap_server


def selected(html: str, role: str) -> str | None:
    import re

    block = html.split(f'name="{role}"', 1)[1].split("</select>", 1)[0]
    found = re.search(r'<option value="([^"]*)" selected', block)
    return found.group(1) if found else None


def test_special_use_prefills_the_mapping(
    peer_app: Flask, mailconnect: MailConnect, db: Any, folders: DovecotPeer, client: Any
) -> None:
    with peer_app.app_context():
        account = make_account(db, folders)
        listing = mailconnect.list_folders(account)
        assert {"INBOX", "Sent", "Archive", "Trash", "Work"} <= set(listing.names)
        assert listing.suggested == {
            "inbox": "INBOX", "sent": "Sent", "archive": "Archive", "trash": "Trash"
        }  # fmt: skip
        assert listing.current == dict.fromkeys(("inbox", "sent", "archive", "trash"))
        account_id = account.id
    login(client, 1)
    page = client.get(f"/email/accounts/{account_id}")
    assert f"/email/accounts/{account_id}/folders" in page.get_data(as_text=True)
    html = client.get(f"/email/accounts/{account_id}/folders").get_data(as_text=True)
    assert [selected(html, r) for r in ("inbox", "sent", "archive", "trash")] == [
        "INBOX", "Sent", "Archive", "Trash",
    ]  # fmt: skip
    assert "Suggested by the server." in html and "Work" in html


def test_saving_the_mapping_is_checked_audited_and_signalled(
    peer_app: Flask, mailconnect: MailConnect, db: Any, folders: DovecotPeer, client: Any
) -> None:
    with peer_app.app_context():
        account_id = make_account(db, folders).id
    login(client, 1)
    url = f"/email/accounts/{account_id}/folders"
    form = {"inbox": "INBOX", "sent": "Sent", "archive": "Work", "trash": "Trash"}
    assert client.post(url, data=form).status_code == 400  # no CSRF token
    peer_app.config["WTF_CSRF_ENABLED"] = False
    bad = client.post(url, data={**form, "trash": "Nope"})
    assert bad.status_code == 422
    assert "There is no folder named &#39;Nope&#39;" in bad.get_data(as_text=True)
    changes: list[set[str]] = []
    with account_updated.connected_to(lambda s, **kw: changes.append(kw["changes"]), peer_app):
        saved = client.post(url, data=form)
    assert saved.status_code == 302 and saved.location.endswith(f"/email/accounts/{account_id}")
    assert changes == [{"folder_inbox", "folder_sent", "folder_archive", "folder_trash"}]
    # The stored mapping wins over suggestions afterwards.
    assert selected(client.get(url).get_data(as_text=True), "archive") == "Work"
    with peer_app.app_context():
        account = mailconnect.get_account(account_id)
        assert account is not None
        assert (account.folder_sent, account.folder_archive) == ("Sent", "Work")
        events = [(e.action, e.detail) for e in db.session.query(AuditEvent).all()]
        assert ("update", "folder_archive,folder_inbox,folder_sent,folder_trash") in events
        # The Python API validates too, and clearing a role is allowed.
        with pytest.raises(InvalidSettings):
            mailconnect.update_folders(account, {"sent": "Elsewhere"})
        assert mailconnect.update_folders(account, {"archive": ""}) == {"folder_archive"}
        assert account.folder_archive is None


def test_broken_settings_are_explained_not_a_500(
    peer_app: Flask, mailconnect: MailConnect, db: Any, folders: DovecotPeer, client: Any
) -> None:
    from tests.peers import free_port

    with peer_app.app_context():
        wrong = make_account(db, folders, password="wrong-password").id
        down = make_account(db, folders, email="down@example.com", imap_port=free_port()).id
    login(client, 1)
    page = client.get(f"/email/accounts/{wrong}/folders")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "cannot be read right now" in html
    assert "The server rejected the login or password." in html
    assert f"/email/accounts/{wrong}/reconnect" in html
    again = client.get(f"/email/accounts/{wrong}/folders").get_data(as_text=True)
    assert "The server rejected the login or password." in again  # now needs_reconnect
    with peer_app.app_context():
        account = mailconnect.get_account(wrong)
        assert account is not None and account.status == "needs_reconnect"
    page = client.get(f"/email/accounts/{down}/folders")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "refused the connection" in html and "try again in a few minutes" in html
    peer_app.config["WTF_CSRF_ENABLED"] = False
    assert (
        client.post(f"/email/accounts/{down}/folders", data={"inbox": "INBOX"}).status_code == 409
    )


def test_folders_page_needs_manage_permission(
    peer_app: Flask, db: Any, folders: DovecotPeer, client: Any
) -> None:
    with peer_app.app_context():
        mine = make_account(db, folders).id
        shared = make_account(
            db, folders, owner_kind="organization", owner_id="main", email="team@example.com"
        ).id
    login(client, 2)  # bob: alice's account does not exist for him
    assert client.get(f"/email/accounts/{mine}/folders").status_code == 404
    assert client.get(f"/email/accounts/{shared}/folders").status_code == 404  # view only
    assert client.get(f"/email/accounts/{shared}").status_code == 200  # recent mail: view
    login(client, 3)  # the admin manages both
    assert client.get(f"/email/accounts/{shared}/folders").status_code == 200
