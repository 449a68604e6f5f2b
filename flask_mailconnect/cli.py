"""``flask mailconnect ...``: migrate or create tables, generate and rotate encryption keys."""

from __future__ import annotations

from typing import Any

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import with_appcontext

from .cli_detect import detect_command
from .crypto import generate_key, rotate_token
from .exceptions import DeliveryUnknownError, EncryptionKeyError, MigrationError, SendError
from .models import ENCRYPTED_COLUMNS, MailAccount

# ``init_app`` adds this group to every app, so the modules behind the commands (migrations,
# health, sending) are imported by the command that runs them, not with the group (issue 13).

BATCH = 500


@click.group("mailconnect")
def cli_group() -> None:
    """Flask-MailConnect maintenance."""


cli_group.add_command(detect_command)


@cli_group.command("init-db")
@with_appcontext
def init_db() -> None:
    """Create the mailconnect_* tables that do not exist yet, recorded as the newest
    revision (tests and demos; a real deployment runs `flask mailconnect db upgrade`)."""
    from . import migrations

    migrations.create_all()
    click.echo(f"Created the Flask-MailConnect tables (at {migrations.current()}).")


@cli_group.command("generate-key")
def generate_key_command() -> None:
    """Print a new Fernet key for MAILCONNECT_ENCRYPTION_KEYS (needs no key, no database)."""
    click.echo(generate_key())


@cli_group.group("db")
def db_group() -> None:
    """Our tables' migrations (own version table mailconnect_alembic_version)."""


def _migrate(work: Any, *args: str) -> None:
    try:
        work(None, *args)
    except MigrationError as exc:
        raise click.ClickException(str(exc)) from None


@db_group.command("upgrade")
@click.argument("revision", default="head")
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Create or bring the mailconnect_* tables up to REVISION (default: the newest)."""
    from . import migrations

    try:
        adopted = migrations.upgrade(None, revision)
    except MigrationError as exc:
        raise click.ClickException(str(exc)) from None
    if adopted:
        click.echo(
            "The mailconnect_* tables had no recorded revision (made by create_all() or "
            "init-db) and match the newest schema: recorded them as the newest revision."
        )
    click.echo(f"Flask-MailConnect tables at {migrations.current()}.")


@db_group.command("downgrade")
@click.argument("revision")
@with_appcontext
def db_downgrade(revision: str) -> None:
    """Take the mailconnect_* tables back to REVISION (-1: one step; base: drop them)."""
    from . import migrations

    _migrate(migrations.downgrade, revision)
    click.echo(f"Flask-MailConnect tables at {migrations.current() or 'base (none)'}.")


@db_group.command("current")
@with_appcontext
def db_current() -> None:
    """Print the revision the database is at, and the newest one shipped."""
    from . import migrations

    click.echo(f"{migrations.current() or 'none'} (newest: {migrations.head()})")


@db_group.command("stamp")
@click.argument("revision")
@with_appcontext
def db_stamp(revision: str) -> None:
    """Record REVISION as applied without running it (adopt tables made by create_all)."""
    from . import migrations

    _migrate(migrations.stamp, revision)
    click.echo(f"Flask-MailConnect tables marked as {migrations.current()}.")


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
                        except EncryptionKeyError:
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


def _parse_scope(value: str | None) -> tuple[str, str | None] | None:
    if not value:
        return None
    kind, _, ident = value.partition(":")
    if not kind:
        raise click.BadParameter("use KIND or KIND:ID, e.g. project or project:7")
    return kind, ident or None


def _run_health(
    work_name: str, label: str, scope: str | None, account_id: int | None, concurrency: int | None
) -> dict[str, int]:
    from . import health

    state = current_app.extensions["mailconnect"]
    ids = health.select_account_ids(
        state,
        scope=_parse_scope(scope),
        account_id=account_id,
        keepalive_only=work_name == "keepalive",
    )
    state.session.commit()  # end the read transaction: workers commit on their own connections
    if account_id is not None and not ids:
        raise click.ClickException(f"No active account {account_id}.")
    workers = concurrency or int(current_app.config["MAILCONNECT_CHECK_CONCURRENCY"])
    work = health.keepalive_work if work_name == "keepalive" else health.check_work
    results = []
    with click.progressbar(length=len(ids), label=label, show_pos=True) as bar:
        for result in health.check_many(ids, concurrency=workers, work=work):
            results.append(result)
            bar.update(1)
    problems = sorted(
        (r for r in results if r.outcome in (health.ERROR, health.NEEDS_RECONNECT)),
        key=lambda r: r.account_id,
    )
    for result in problems:
        click.echo(f"  account {result.account_id}: {result.outcome} ({result.code})")
    return health.summarize(results)


_health_options = [
    click.option("--scope", metavar="KIND[:ID]", help="Only accounts of this owner kind or owner."),
    click.option("--account", "account_id", type=int, help="Only this account id."),
    click.option(
        "--concurrency",
        type=click.IntRange(1, 256),
        help="Accounts at once (default MAILCONNECT_CHECK_CONCURRENCY).",
    ),
    click.option(
        "--strict", is_flag=True, help="Exit 1 when any account is in error or needs reconnect."
    ),
]


def _with_health_options(func: Any) -> Any:
    for option in reversed(_health_options):
        func = option(func)
    return func


@cli_group.command("check")
@_with_health_options
@with_appcontext
def check_command(
    scope: str | None, account_id: int | None, concurrency: int | None, strict: bool
) -> None:
    """Check that active accounts can still sign in; refresh OAuth tokens before they lapse.

    Logs in to SMTP and IMAP for every active account (or one scope's or one account's), a few
    at a time, and records each outcome on the account. Accounts already needing reconnection
    are counted, not retried. Exit status: 0 when every check ran (whatever it found; affected
    owners learn through account_needs_reconnect), 1 when a check crashed, or with --strict
    when any account is in error or needs reconnecting.
    """
    summary = _run_health("check", "Checking accounts", scope, account_id, concurrency)
    click.echo(
        f"Checked {sum(summary[k] for k in ('ok', 'error', 'needs_reconnect', 'skipped'))} "
        f"account(s): {summary['ok']} ok, {summary['error']} error, "
        f"{summary['needs_reconnect']} need reconnecting, {summary['skipped']} skipped; "
        f"{summary['kept_alive']} token(s) refreshed to keep them alive."
    )
    if summary["crashed"] or (strict and (summary["error"] or summary["needs_reconnect"])):
        raise SystemExit(1)


@cli_group.command("keep-alive")
@_with_health_options
@with_appcontext
def keep_alive_command(
    scope: str | None, account_id: int | None, concurrency: int | None, strict: bool
) -> None:
    """Refresh OAuth tokens unused for MAILCONNECT_KEEPALIVE_DAYS, without logging in.

    A lighter daily companion of ``check`` (which keeps tokens alive too).
    """
    summary = _run_health("keepalive", "Keeping tokens alive", scope, account_id, concurrency)
    click.echo(
        f"Refreshed {summary['ok']} token(s); {summary['skipped']} not due, "
        f"{summary['error']} error, {summary['needs_reconnect']} need reconnecting."
    )
    if summary["crashed"] or (strict and (summary["error"] or summary["needs_reconnect"])):
        raise SystemExit(1)


@cli_group.command("send-test")
@click.option("--account", "account_id", type=int, required=True, help="Account id.")
@click.option("--to", "to", required=True, help="Recipient address.")
@click.option("--subject", default="Test message from Flask-MailConnect", show_default=True)
@with_appcontext
def send_test_command(account_id: int, to: str, subject: str) -> None:
    """Send a short test message from an account (with its signature) and say what happened."""
    from email.message import EmailMessage

    from .sending import send

    state = current_app.extensions["mailconnect"]
    account = state.session.get(MailAccount, account_id)
    if account is None:
        raise click.ClickException(f"No account with id {account_id}.")
    message = EmailMessage()
    message["To"] = to
    message["Subject"] = subject
    message.set_content(
        f"This is a test message sent through {account.email} by Flask-MailConnect.\n"
    )
    try:
        result = send(state, account, message)
    except SendError as exc:
        state.session.commit()  # keep the account's recorded status (e.g. needs_reconnect)

        if isinstance(exc, DeliveryUnknownError):
            raise click.ClickException(
                f"Delivery unknown ({exc.code}): may have been delivered; do not resend. {exc}"
            ) from None
        retry = "trying again later may work" if exc.retryable else "retrying will not help"
        raise click.ClickException(f"Not sent ({exc.code}; {retry}): {exc}") from None
    state.session.commit()
    click.echo(f"Sent {result.message_id} from {account.email} via {result.via}.")
    click.echo("Accepted: " + (", ".join(result.accepted) or "none"))
    for address, (code, reply) in result.refused.items():
        click.echo(f"Refused: {address} ({code} {reply})")
    if result.sent_copy:
        click.echo(f"A copy was saved to {result.sent_copy}.")
    elif result.sent_copy_error:
        click.echo(f"The copy in the Sent folder could not be saved ({result.sent_copy_error}).")
