"""What ``import flask_mailconnect`` and ``from flask_mailconnect import MailConnect`` load.

Heavy third-party packages load where they are used (issue 13): Authlib and joserfc with the
first OAuth flow or token refresh, dnspython and publicsuffixlist with the first server
detection, requests and urllib3 with the first HTTP request, defusedxml with the first
clientConfig answer, imapclient with the first mailbox, nh3 with the first HTML to clean,
cryptography with the cipher (``init_app``). Each check runs in a fresh
interpreter; no timing is asserted (benchmarks/ measures that), only which modules are present.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

DEFERRED = (
    "authlib.integrations", "joserfc", "dns", "publicsuffixlist", "requests", "urllib3",
    "charset_normalizer", "defusedxml", "imapclient", "nh3",
)  # fmt: skip
#: Loaded by ``init_app`` (the cipher checks the keys), not by the import.
UNTIL_INIT_APP = ("cryptography",)


def _loaded(code: str) -> list[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    return list(json.loads(out.splitlines()[-1]))


def _heavy(modules: list[str], deferred: tuple[str, ...] = DEFERRED) -> list[str]:
    return [m for m in modules if any(m == d or m.startswith(d + ".") for d in deferred)]


def test_the_bare_import_loads_the_exceptions_only() -> None:
    ours = [m for m in _loaded("import flask_mailconnect") if m.startswith("flask_mailconnect")]
    assert sorted(ours) == ["flask_mailconnect", "flask_mailconnect.codes",
                            "flask_mailconnect.exceptions"]  # fmt: skip


@pytest.mark.parametrize(
    "code",
    [
        "from flask_mailconnect import MailConnect",
        "from tests import hostapp\nhostapp.create_app()",  # init_app: views, forms, CLI
    ],
)
def test_the_extension_loads_no_heavy_package_until_used(code: str) -> None:
    assert _heavy(_loaded(code)) == []


def test_importing_the_extension_leaves_cryptography_to_init_app() -> None:
    assert _heavy(_loaded("from flask_mailconnect import MailConnect"), UNTIL_INIT_APP) == []
    assert "cryptography.fernet" in _loaded("from tests import hostapp\nhostapp.create_app()")


def test_every_public_name_resolves_and_the_first_oauth_use_loads_authlib() -> None:
    code = """
import flask_mailconnect
missing = [n for n in flask_mailconnect.__all__ if getattr(flask_mailconnect, n, None) is None]
assert not missing, missing
assert set(flask_mailconnect.__all__) <= set(dir(flask_mailconnect))
from flask_mailconnect.transport.http import GuardedOAuth2Session, oauth2_session_class
from authlib.integrations.requests_client import OAuth2Session
assert GuardedOAuth2Session is oauth2_session_class()
assert issubclass(GuardedOAuth2Session, OAuth2Session)
assert GuardedOAuth2Session.__qualname__ == "GuardedOAuth2Session"
"""
    assert "authlib.integrations.requests_client" in _loaded(code)
