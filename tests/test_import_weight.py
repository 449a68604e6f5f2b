"""What ``import flask_mailconnect`` and ``from flask_mailconnect import MailConnect`` load.

Heavy third-party packages load where they are used (issue 13): Authlib and joserfc with the
first OAuth flow or token refresh, dnspython and publicsuffixlist with the first server
detection, requests and urllib3 with the first HTTP request, defusedxml with the first
clientConfig answer, imapclient with the first mailbox, nh3 with the first HTML to clean,
cryptography with the cipher (``init_app``); importing ``credentials`` configures no mappers.
Each check runs in a fresh interpreter; no timing is asserted (benchmarks/ measures that), only
what was loaded or built.
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
#: Loaded with the first secret sealed or opened (the cipher), not at start-up: ``init_app``
#: checks the keys' format by itself.
UNTIL_FIRST_SECRET = ("cryptography",)
#: What the facade's methods, the CLI commands and the first detection import when called, and
#: a From header's full parse (``email.policy``'s header classes): not a host's start-up.
ON_FIRST_CALL = (
    "flask_mailconnect.health", "flask_mailconnect.sending", "flask_mailconnect.migrations",
    "flask_mailconnect.detection.run", "flask_mailconnect.transport.smtp", "email.policy",
    "email.headerregistry",
)  # fmt: skip
#: The views and what they import (forms, the accounts use-cases, sync): registered by name at
#: ``init_app`` (views/routes.py) and imported with the first request that runs them.
UNTIL_FIRST_REQUEST = (
    "flask_mailconnect.views.user", "flask_mailconnect.views.admin",
    "flask_mailconnect.views.oauth", "flask_mailconnect.views.connect",
    "flask_mailconnect.accounts.core", "flask_mailconnect.forms", "flask_mailconnect.sync",
)  # fmt: skip


def _run(code: str) -> list[str]:
    """What ``code`` prints in a fresh interpreter, line by line."""
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()


def _loaded(code: str) -> list[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    return list(json.loads(_run(probe)[-1]))


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


@pytest.mark.parametrize(
    "code",
    [
        "from flask_mailconnect import MailConnect",
        "from tests import hostapp\nhostapp.create_app(reset=False)",  # init_app, no tables
    ],
)
def test_start_up_leaves_health_sending_and_migrations_to_their_first_use(code: str) -> None:
    assert _heavy(_loaded(code), ON_FIRST_CALL) == []


def test_the_facade_and_the_cli_load_a_use_case_when_it_is_called() -> None:
    code = """
import sys
from click.testing import CliRunner
from tests import hostapp
app, mailconnect = hostapp.create_app(reset=False)
print("flask_mailconnect.migrations" in sys.modules)
with app.app_context():
    mailconnect.create_all()
print("flask_mailconnect.migrations" in sys.modules)
result = app.test_cli_runner().invoke(args=["mailconnect", "check"])
print(result.exit_code, "flask_mailconnect.health" in sys.modules)
"""
    assert _run(code) == ["False", "True", "0 True"]


def test_cryptography_loads_with_the_first_secret_not_at_start_up() -> None:
    """init_app checks the keys' format without cryptography; the first seal loads it."""
    startup = "from tests import hostapp\napp, ext = hostapp.create_app(reset=False)"
    assert _heavy(_loaded(startup), UNTIL_FIRST_SECRET) == []
    sealed = (
        f"{startup}\nfrom flask_mailconnect.columns import seal\nwith app.app_context(): seal('x')"
    )
    assert "cryptography.fernet" in _loaded(sealed)


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


def test_submit_and_sending_leave_imapclient_to_the_first_sent_copy() -> None:
    code = (
        "import sys\n"
        "import flask_mailconnect.transport.submit, flask_mailconnect.sending\n"
        "print('imapclient' in sys.modules)\n"
        "from imapclient.imapclient import SEEN, SENT\n"
        "from flask_mailconnect.transport import submit\n"
        "print(submit.SEEN == SEEN and submit.SENT == SENT)"
    )
    assert _run(code) == ["False", "True"]


def test_signatures_load_nh3_when_a_signature_is_cleaned() -> None:
    code = (
        "import sys\n"
        "from flask_mailconnect.signatures import sanitize_signature\n"
        "print('nh3' in sys.modules)\n"
        "print(sanitize_signature('<p onclick=\"x()\">Hi<script>bad()</script></p>'))\n"
        "print('nh3' in sys.modules)"
    )
    assert _run(code) == ["False", "<p>Hi</p>", "True"]


def test_importing_the_imap_transport_leaves_imapclient_to_the_first_connection() -> None:
    code = (
        "import sys\n"
        "import flask_mailconnect.transport.imap, flask_mailconnect.transport.tester\n"
        "print('imapclient' in sys.modules)\n"
        "from flask_mailconnect.transport.imap import _client_class\n"
        "_client_class()\n"
        "print('imapclient' in sys.modules)"
    )
    assert _run(code) == ["False", "True"]


def test_importing_credentials_configures_no_mappers_until_a_batch_query_is_made() -> None:
    code = (
        "from flask_mailconnect import credentials\n"
        "from flask_mailconnect.models import MailAccount\n"
        "print(MailAccount.__mapper__.configured)\n"
        "credentials.accounts_with_passwords()\n"
        "print(MailAccount.__mapper__.configured)\n"
        "print(credentials.with_password() is credentials.with_password())"
    )
    assert _run(code) == ["False", "True", "True"]


def test_start_up_leaves_the_mappers_to_the_first_query() -> None:
    """Configuring the SQLAlchemy mappers costs ~15 ms: the first query pays it, not a host's
    start-up (a statement or loader option built at module level would configure them)."""
    code = (
        "from tests import hostapp\n"
        "from flask_mailconnect.models import MailAccount\n"
        "app, ext = hostapp.create_app(reset=False)\n"
        "print(MailAccount.__mapper__.configured)"
    )
    assert _run(code) == ["False"]


def test_preloading_imports_the_views_at_start_up_for_forking_servers() -> None:
    """``MAILCONNECT_PRELOAD_VIEWS``: ``init_app`` imports every view module and what it uses
    (a server forking its workers after loading the app shares them), and the pages work."""
    code = (
        "from tests import hostapp\n"
        "app, ext = hostapp.create_app(MAILCONNECT_PRELOAD_VIEWS=True)\n"
        "import sys\n"
        "loaded = set(sys.modules)\n"
        "client = app.test_client()\n"
        "client.post('/test-login/1')\n"
        "assert client.get('/email/').status_code == 200\n"
        "assert client.get('/email/connect').status_code == 200\n"
        "print(sorted(m for m in set(sys.modules) - loaded if m.startswith('flask_mailconnect')))"
    )
    loaded_at_start = _loaded(code.split("\nimport sys")[0])
    assert set(UNTIL_FIRST_REQUEST) <= set(loaded_at_start)
    assert _run(code)[-1] == "[]"  # the first pages import nothing of ours


def test_start_up_registers_the_views_and_the_first_request_loads_them() -> None:
    """``init_app`` builds the whole URL map without importing a view module (views/routes.py);
    the first page a signed-in person opens imports what it runs."""
    start_up = "from tests import hostapp\napp, ext = hostapp.create_app(reset=False)"
    loaded = _loaded(f"{start_up}\nassert app.url_map.converters['mc_id']")
    assert _heavy(loaded, UNTIL_FIRST_REQUEST) == []
    first_page = (
        "from tests import hostapp\n"
        "app, ext = hostapp.create_app()\n"
        "client = app.test_client()\n"
        "client.post('/test-login/1')\n"
        "assert client.get('/email/').status_code == 200"
    )
    assert set(UNTIL_FIRST_REQUEST) <= set(_loaded(first_page))
