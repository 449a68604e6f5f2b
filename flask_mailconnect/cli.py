"""``flask mailconnect ...``: create tables, generate and rotate encryption keys."""

from __future__ import annotations

import click
import sqlalchemy as sa
from cryptography.fernet import InvalidToken
from flask import current_app
from flask.cli import with_appcontext

from .crypto import generate_key, rotate_token
from .models import ENCRYPTED_COLUMNS

BATCH = 500


@click.group("mailconnect")
def cli_group() -> None:
    """Flask-MailConnect maintenance."""


@cli_group.command("init-db")
@with_appcontext
def init_db() -> None:
    """Create the mailconnect_* tables that do not exist yet."""
    current_app.extensions["mailconnect"].extension.create_all()
    click.echo("Created the Flask-MailConnect tables.")


@cli_group.command("generate-key")
def generate_key_command() -> None:
    """Print a new Fernet key for MAILCONNECT_ENCRYPTION_KEYS."""
    click.echo(generate_key())


@cli_group.command("rotate-key")
@with_appcontext
def rotate_key() -> None:
    """Re-encrypt every stored secret under the first key of MAILCONNECT_ENCRYPTION_KEYS.

    Run after putting a new key first; afterwards the old keys can be removed. Works in batches,
    one transaction each, and is safe to re-run if interrupted.
    """
    state = current_app.extensions["mailconnect"]
    cipher = state.cipher
    session = state.session
    total = 0
    for model, columns in ENCRYPTED_COLUMNS.items():
        table: sa.Table = model.__table__  # type: ignore[assignment]
        pk = table.c.id
        # Read and write the raw tokens: type_coerce to String bypasses EncryptedText.
        raw = [sa.type_coerce(table.c[name], sa.String).label(name) for name in columns]
        count = session.scalar(sa.select(sa.func.count()).select_from(table)) or 0
        last_id = None
        with click.progressbar(length=count, label=f"Rotating {table.name}") as bar:
            while True:
                query = sa.select(pk, *raw).order_by(pk).limit(BATCH)
                if last_id is not None:
                    query = query.where(pk > last_id)
                rows = session.execute(query).all()
                if not rows:
                    break
                for row in rows:
                    values = {}
                    for name in columns:
                        token = getattr(row, name)
                        if token is None:
                            continue
                        try:
                            values[name] = sa.type_coerce(rotate_token(cipher, token), sa.String)
                        except InvalidToken:
                            session.rollback()
                            raise click.ClickException(
                                f"{table.name} row {row.id}: no configured key decrypts it. "
                                "Put the old key back in MAILCONNECT_ENCRYPTION_KEYS and re-run."
                            ) from None
                    if values:
                        session.execute(table.update().where(pk == row.id).values(values))
                        total += 1
                session.commit()
                last_id = rows[-1].id
                bar.update(len(rows))
    click.echo(f"Re-encrypted {total} row(s) under the newest key.")
