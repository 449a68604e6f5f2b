"""Sending's modules leave their heavy dependencies to first use (issue 13): importing the SMTP
submission and Sent-copy module does not load imapclient, and the signature module does not
load nh3 until a signature is cleaned. Each check runs in a fresh interpreter and asserts only
what was loaded, never a time; sending with a Sent copy (tests/test_send.py) and signatures
(tests/test_signatures.py) still work once they load."""

from __future__ import annotations

import subprocess
import sys


def _run(code: str) -> list[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()


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
