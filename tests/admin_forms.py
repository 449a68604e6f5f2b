"""The admin providers form, filled and posted with the test client: for
tests/test_admin_providers.py, test_detect_admin_providers.py, test_http_guard.py and
tests/oauth_flow/test_admin_oauth_provider.py.

``form`` is a valid password provider (Acme Mail), ``oauth_form`` the fields that make it an
OAuth provider with explicit URLs, ``create`` posts it to the "new provider" page.
"""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient

SECRET = "s3cr3t-client-value-never-shown"


def token(client: FlaskClient, url: str) -> str:
    page = client.get(url).get_data(as_text=True)
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert match, page[:500]
    return match.group(1)


def form(**over: Any) -> dict[str, Any]:
    data = {
        "name": "Acme Mail", "enabled": "y", "service_type": "imap_smtp", "sends": "y",
        "receives": "y", "smtp_host": "smtp.acme.org", "smtp_port": "587",
        "smtp_security": "starttls", "imap_host": "imap.acme.org", "imap_port": "993",
        "imap_security": "ssl", "login_format": "local_part", "auth_method": "password",
        "domains": "acme.org\nacme-corp.com",
    }  # fmt: skip
    data.update(over)
    return {k: v for k, v in data.items() if v is not None}


def create(client: FlaskClient, **over: Any) -> Any:
    data = form(**over)
    data["csrf_token"] = token(client, "/email/admin/providers/new")
    return client.post("/email/admin/providers/new", data=data)


def oauth_form(**over: Any) -> dict[str, Any]:
    fields = {
        "auth_method": "oauth2", "client_id": "acme-client", "client_secret": SECRET,
        "authorize_url": "https://id.acme.org/authorize", "token_url": "https://id.acme.org/token",
        "userinfo_url": "https://id.acme.org/userinfo",
    }  # fmt: skip
    return {**fields, **over}
