"""Signing in to the example host app (example_app/) with its test client, CSRF on: for
tests/test_example_app.py and tests/oauth_flow/test_admin_on_behalf.py (the demo admin)."""

from __future__ import annotations

import re

from flask.testing import FlaskClient


def csrf_token(html: bytes) -> str:
    match = re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert match, "page has no CSRF token"
    return match.group(1).decode()


def sign_in(client: FlaskClient, email: str, password: str):  # type: ignore[no-untyped-def]
    token = csrf_token(client.get("/login").data)
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})
