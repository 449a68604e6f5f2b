"""What importing the IMAP transport and the credentials module costs: no imapclient, no mapper
configuration (issue 13: ``import flask_mailconnect`` within 80 ms of the host's Flask stack).

Each check runs in a fresh interpreter and asserts only what was loaded or built, never a time.
The IMAP checks themselves still work once imapclient loads on first use: see
tests/test_transport_imap.py.
"""

from __future__ import annotations

import subprocess
import sys


def _run(code: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_importing_the_imap_transport_leaves_imapclient_to_the_first_connection() -> None:
    code = (
        "import sys\n"
        "import flask_mailconnect.transport.imap, flask_mailconnect.transport.tester\n"
        "print('imapclient' in sys.modules)\n"
        "from flask_mailconnect.transport.imap import _client_class\n"
        "_client_class()\n"
        "print('imapclient' in sys.modules)"
    )
    assert _run(code).split() == ["False", "True"]


def test_importing_credentials_configures_no_mappers_until_a_batch_query_is_made() -> None:
    code = (
        "from flask_mailconnect import credentials\n"
        "from flask_mailconnect.models import MailAccount\n"
        "print(MailAccount.__mapper__.configured)\n"
        "credentials.accounts_with_passwords()\n"
        "print(MailAccount.__mapper__.configured)\n"
        "print(credentials.with_password() is credentials.with_password())"
    )
    assert _run(code).split() == ["False", "True", "True"]
