"""``flask mailconnect detect ADDRESS``: the tool an admin uses when a person says "it didn't
find my server". Asks every source afresh (the cache is neither read nor trusted, but the new
answer is stored), waits for each up to the deadline, and prints every source with its outcome
and time, then the result."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click
from flask.cli import with_appcontext

from .transport.settings import SECURITY_LABELS

if TYPE_CHECKING:
    from .detection import Detection


def _seconds(value: float | None) -> str:
    return "      -" if value is None else f"{value:7.3f}s"


def _report(found: Detection) -> None:
    click.echo(f"Servers for {found.email}")
    for attempt in found.tried:
        detail = f"  {attempt.detail}" if attempt.detail else ""
        click.echo(
            f"  {attempt.source:<13} {attempt.outcome:<8} {_seconds(attempt.seconds)}{detail}"
        )
    if found.not_asked == "busy":
        click.echo("Result: not looked up: this process runs as many detections as it may.")
    elif not found.found:
        click.echo("Result: nothing found; the person types the servers by hand.")
    else:
        click.echo(f"Result: {found.source} ({found.source_label})")
        if found.provider is not None:
            button = ", Connect button offered" if found.offers_oauth else ""
            click.echo(f"  Provider  {found.provider.title} ({found.provider.key}){button}")
        for name, server in (("SMTP", found.smtp), ("IMAP", found.imap)):
            shown = "-" if server is None else (
                f"{server.host}:{server.port} {SECURITY_LABELS[server.security]}")  # fmt: skip
            click.echo(f"  {name:<9} {shown}")
        if found.pop3_only:
            click.echo("  (the source offers POP3 only for reading mail: not supported)")
        click.echo(f"  Login     {found.username or '(the person types it)'}")
        click.echo(f"  Sign-in   {' or '.join(found.auth) or '-'}")
    click.echo(f"Whole detection: {found.seconds:.3f}s")


@click.command("detect")
@click.argument("address")
@click.option("--cached", is_flag=True, help="Answer from the cache when it has the domain.")
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@with_appcontext
def detect_command(address: str, cached: bool, as_json: bool) -> None:
    """Show how the servers for ADDRESS are found: each source, its outcome and time."""
    from .detection import detect  # with the command: every app's start-up adds the group

    found = detect(address, fresh=not cached, wait_all=True)
    if as_json:
        click.echo(json.dumps({**found.as_dict(), "seconds": found.seconds}, indent=2))
    else:
        _report(found)
