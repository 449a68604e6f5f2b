"""``python -m flask_mailconnect generate-key``: a new encryption key, with no app and no config.

The key goes into ``MAILCONNECT_ENCRYPTION_KEYS``; the README shows the usual form::

    export MAILCONNECT_KEY=$(python -m flask_mailconnect generate-key)

and, in the app, ``app.config["MAILCONNECT_ENCRYPTION_KEYS"] = [os.environ["MAILCONNECT_KEY"]]``.
Imports only the key helper, so it runs before the extension is wired into any app.
"""

from __future__ import annotations

import click

from .crypto import generate_key


@click.group()
def main() -> None:
    """Flask-MailConnect commands that need no app (the rest: `flask mailconnect --help`)."""


@main.command("generate-key")
def generate_key_command() -> None:
    """Print a new Fernet key for MAILCONNECT_ENCRYPTION_KEYS (32 url-safe base64 bytes)."""
    click.echo(generate_key())


if __name__ == "__main__":  # pragma: no branch
    main(prog_name="python -m flask_mailconnect")
