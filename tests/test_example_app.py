"""The example host app: signing in with CSRF on, its layout around our pages, signing out."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from example_app import create_app
from example_app.models import db
from tests.example_client import csrf_token, sign_in

KEY = "5Lq1m0wQyqjAR1-3uQ2mH1q3ZBxB5i1aX5p1Z9xW0aM="


@pytest.fixture
def example(tmp_path: Path) -> Iterator[Flask]:
    app = create_app(
        {
            "INSTANCE_PATH": str(tmp_path),
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'example.db'}",
            "SECRET_KEY": "test",
            "MAILCONNECT_ENCRYPTION_KEYS": [KEY],
            "TESTING": True,  # CSRF stays on: WTF_CSRF_ENABLED is not touched
        }
    )
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_pages_need_a_signed_in_user(example: Flask) -> None:
    client = example.test_client()
    response = client.get("/")
    assert response.status_code == 302 and response.location.startswith("/login")
    assert client.get("/email/").status_code == 302


def test_login_without_csrf_token_is_refused(example: Flask) -> None:
    client = example.test_client()
    response = client.post("/login", data={"email": "alice@demo.test", "password": "alice"})
    assert response.status_code == 400
    assert client.get("/").status_code == 302


def test_wrong_password_is_refused(example: Flask) -> None:
    client = example.test_client()
    response = sign_in(client, "alice@demo.test", "nope")
    assert response.status_code == 400
    assert b"Wrong email or password." in response.data


def test_demo_user_signs_in_and_sees_home_in_the_layout(example: Flask) -> None:
    client = example.test_client()
    response = sign_in(client, "alice@demo.test", "alice")
    assert response.status_code == 302 and response.location == "/"
    page = client.get("/").data.decode()
    assert "Hello, Alice Martin" in page
    assert "Welcome, Alice Martin." in page  # flashed by the login view
    assert 'class="site-header"' in page and "Northwind CRM" in page
    assert 'href="/email/"' in page and "Connect one" in page


def test_email_settings_render_inside_the_host_layout(example: Flask) -> None:
    client = example.test_client()
    sign_in(client, "admin@demo.test", "admin")
    response = client.get("/email/")
    assert response.status_code == 200
    page = response.data.decode()
    assert 'class="site-header"' in page  # the host's header and navigation
    assert '<a href="/email/" aria-current="page">Email settings</a>' in page
    assert "<title>" in page and "· Northwind CRM</title>" in page
    assert "admin@demo.test" in page and ">admin</span>" in page


def test_home_shows_the_default_account(example: Flask) -> None:
    from flask_mailconnect import MailAccount

    with example.app_context():
        db.session.add(
            MailAccount(
                owner_kind="user", owner_id="1", email="alice@work.example",
                username="alice@work.example", password="secret", smtp_host="smtp.work.example",
                smtp_port=587, smtp_security="starttls", is_default=True,
            )
        )  # fmt: skip
        db.session.commit()
    client = example.test_client()
    sign_in(client, "alice@demo.test", "alice")
    page = client.get("/").data.decode()
    assert "alice@work.example" in page and "Connected" in page
    assert "Connect one" not in page


def test_logout_is_a_post_with_csrf(example: Flask) -> None:
    client = example.test_client()
    sign_in(client, "alice@demo.test", "alice")
    assert client.get("/logout").status_code == 405
    home = client.get("/").data
    response = client.post("/logout", data={"csrf_token": csrf_token(home)})
    assert response.status_code == 302 and response.location == "/login"
    assert client.get("/").status_code == 302


def test_login_redirects_only_to_local_pages(example: Flask) -> None:
    client = example.test_client()
    token = csrf_token(client.get("/login").data)
    data = {"email": "alice@demo.test", "password": "alice", "csrf_token": token}
    response = client.post("/login?next=//evil.example/", data=data)
    assert response.location == "/"
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/").data)})
    token = csrf_token(client.get("/login").data)
    response = client.post("/login?next=/email/", data={**data, "csrf_token": token})
    assert response.location == "/email/"


@pytest.mark.parametrize(
    "target",
    [
        "/\\evil.test",  # browsers read /\ like //
        "/\\/evil.test",
        "//evil.test",
        "https://evil.test",
        "javascript:alert(1)",
        "/\tevil.test",
        "/email/\r\nX: y",
        "",
    ],
)
def test_login_refuses_unsafe_next_targets(example: Flask, target: str) -> None:
    client = example.test_client()
    token = csrf_token(client.get("/login").data)
    data = {"email": "alice@demo.test", "password": "alice", "csrf_token": token}
    response = client.post("/login", query_string={"next": target}, data=data)
    assert response.status_code == 302 and response.location == "/"


def test_login_honours_a_local_next_target(example: Flask) -> None:
    client = example.test_client()
    token = csrf_token(client.get("/login").data)
    data = {"email": "alice@demo.test", "password": "alice", "csrf_token": token}
    response = client.post("/login", query_string={"next": "/email/"}, data=data)
    assert response.status_code == 302 and response.location == "/email/"


def test_sandbox_settings_are_shown_to_the_demo_user(tmp_path: Path) -> None:
    app = create_app(
        {
            "INSTANCE_PATH": str(tmp_path),
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'example.db'}",
            "MAILCONNECT_ENCRYPTION_KEYS": [KEY],
            "EXAMPLE_SANDBOX": {
                "address": "demo@sandbox.example", "password": "demo-password",
                "smtp_host": "localhost", "smtp_port": 2587, "smtp_security": "starttls",
                "imap_host": "localhost", "imap_port": 2993, "imap_security": "ssl",
            },
        }
    )  # fmt: skip
    try:
        client = app.test_client()
        sign_in(client, "alice@demo.test", "alice")
        page = client.get("/").data.decode()
        assert "demo@sandbox.example" in page and "2587" in page and "2993" in page
        # Generated once into the instance folder, demo only:
        assert (tmp_path / "secret-key.txt").exists()
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.mark.browser
def test_expired_csrf_token_on_test_connection_says_reload(example: Flask) -> None:
    """The JSON test endpoint refuses a stale token with 400 {"error": "csrf"}: the page says
    the session expired instead of blaming the network."""
    from tests.browser_helpers import chromium, serve

    with serve(example) as url, chromium() as browser:
        page = browser.new_page()
        page.goto(f"{url}/login")
        page.fill("input[name=email]", "alice@demo.test")
        page.fill("input[name=password]", "alice")
        page.click("button[type=submit]")
        page.goto(f"{url}/email/connect")
        page.fill("#email", "alice@example.com")
        page.click("[name=continue_]")
        page.wait_for_selector("#smtp_host", state="visible")
        page.fill("#smtp_host", "smtp.example.com")
        page.fill("#password", "pw")
        # What a token looks like once the session behind it is gone.
        token = "form[data-test-url] [name=csrf_token]"  # not the layout's logout form
        page.evaluate(f"document.querySelector('{token}').value = 'expired'")
        with page.expect_response("**/email/connect/test") as answer:
            page.click("[data-mc-test]")
        assert answer.value.status == 400
        alert = page.locator("[data-mc-result] .mc-alert--error")
        alert.wait_for()
        assert alert.inner_text() == "Your session expired. Reload the page and try again."
        assert page.locator("[data-mc-save]").is_disabled()
        page.close()


def test_a_banner_asks_to_sign_in_again_only_for_accounts_that_need_it(example: Flask) -> None:
    from flask_mailconnect import MailAccount

    client = example.test_client()
    sign_in(client, "alice@demo.test", "alice")
    with example.app_context():
        password = MailAccount(
            owner_kind="user", owner_id="1", email="alice@work.example",
            username="alice@work.example", password="secret", smtp_host="smtp.work.example",
            smtp_port=587, smtp_security="starttls",
        )  # fmt: skip
        oauth = MailAccount(
            owner_kind="user", owner_id="1", provider="google", auth_method="oauth2",
            email="alice@gmail.example", username="alice@gmail.example",
            smtp_host="smtp.gmail.com", smtp_port=587, smtp_security="starttls",
        )  # fmt: skip
        db.session.add_all([password, oauth])
        db.session.commit()
        ids = password.id, oauth.id
    page = client.get("/").data.decode()
    assert "reconnect-banner" not in page and "Sign in again" not in page

    with example.app_context():
        for account_id in ids:
            account = db.session.get(MailAccount, account_id)
            account.status = "needs_reconnect"
            account.last_error_message = "The server rejected the login or password."
        db.session.commit()
    page = client.get("/").data.decode()
    assert page.count('class="flash flash-error reconnect-banner"') == 2
    assert f'href="/email/accounts/{ids[0]}/reconnect">Sign in again</a>' in page
    form = re.search(
        r'<form method="post" action="/email/oauth/google/start"[^>]*>(.*?)</form>', page, re.S
    )
    assert form, page
    assert f'name="account_id" value="{ids[1]}"' in form.group(1)
    assert 'name="csrf_token"' in form.group(1) and "Sign in again" in form.group(1)
    # Another user's broken account is not shown to Alice; Bob sees no banner.
    other = example.test_client()
    sign_in(other, "bob@demo.test", "bob")
    assert "reconnect-banner" not in other.get("/").data.decode()
