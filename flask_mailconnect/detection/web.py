"""The sources read over HTTPS: Mozilla's ISP database, the domain's own ``autoconfig`` host
and ``.well-known`` file, and Microsoft's Autodiscover v2 (only to learn that a domain is on
Microsoft 365). Every request goes through the guarded client (:func:`.context.fetch`)."""

from __future__ import annotations

import json
from urllib.parse import quote

from ..providers.builtin._autodiscover import AUTODISCOVER_URL, hosted_provider
from .clientconfig import ClientConfigError, parse_client_config
from .context import Context, SourceFailure, fetch, public_host
from .model import Finding

__all__ = ["AUTODISCOVER_URL", "autoconfig", "autodiscover", "ispdb", "well_known"]


def _checked(ctx: Context, finding: Finding) -> Finding:
    """Drop servers given as IP literals the network guard refuses (a published file that
    points people at ``10.0.0.5`` or ``127.0.0.1``)."""
    allow = ctx.options.allow_private_hosts
    smtp, imap = (
        s if s is not None and public_host(s.host, allow_private=allow) else None
        for s in (finding.smtp, finding.imap)
    )
    if (smtp, imap) == (finding.smtp, finding.imap):
        return finding
    if smtp is None and imap is None:
        raise SourceFailure("blocked", "servers at non-public addresses")
    return Finding(**{**finding.__dict__, "smtp": smtp, "imap": imap})


def client_config(ctx: Context, url: str, *, source: str, domain: str, origin: str) -> Finding:
    """Fetch and parse one clientConfig document for ``domain``'s addresses."""
    body = fetch(ctx, url)
    try:
        found = parse_client_config(body, domain=domain, source=source, origin=origin)
    except ClientConfigError as exc:
        raise SourceFailure("invalid", str(exc)[:200]) from None
    return _checked(ctx, found)


def ispdb_url(base: str, domain: str) -> str:
    return base + quote(domain, safe="")


def autoconfig_url(template: str, ctx: Context) -> str:
    """A ``MAILCONNECT_AUTOCONFIG_URLS`` entry for this address (``{domain}``, ``{email}``)."""
    return template.replace("{domain}", ctx.domain).replace("{email}", quote(ctx.email, safe="@"))


def ispdb(ctx: Context) -> Finding:
    if not ctx.ispdb_url:
        raise SourceFailure("skipped", "MAILCONNECT_ISPDB_URL is not set")
    url = ispdb_url(ctx.ispdb_url, ctx.domain)
    return client_config(ctx, url, source="ispdb", domain=ctx.domain, origin="")


def _own(ctx: Context, index: int, source: str) -> Finding:
    if len(ctx.autoconfig_urls) <= index:
        raise SourceFailure("skipped", "no such URL in MAILCONNECT_AUTOCONFIG_URLS")
    url = autoconfig_url(ctx.autoconfig_urls[index], ctx)
    return client_config(ctx, url, source=source, domain=ctx.domain, origin=ctx.domain)


def autoconfig(ctx: Context) -> Finding:
    """``https://autoconfig.{domain}/mail/config-v1.1.xml?emailaddress=...``"""
    return _own(ctx, 0, "autoconfig")


def well_known(ctx: Context) -> Finding:
    """``https://{domain}/.well-known/autoconfig/mail/config-v1.1.xml``"""
    return _own(ctx, 1, "well-known")


def autodiscover(ctx: Context) -> Finding:
    """Only the provider (its servers and button come from the catalogue)."""
    if not ctx.autodiscover_url:
        raise SourceFailure("skipped", "MAILCONNECT_DETECT_AUTODISCOVER is off")
    body = fetch(ctx, ctx.autodiscover_url.replace("{email}", quote(ctx.email, safe="@")))
    try:
        answer = json.loads(body)
    except ValueError:
        raise SourceFailure("invalid", "not JSON") from None
    key = hosted_provider(answer)
    provider = ctx.catalog.get(key) if key else None
    if provider is None or not provider.enabled:
        detail = "not hosted there" if key is None else "provider not offered"
        raise SourceFailure("nothing", detail)
    return Finding(source="autodiscover", provider=provider.key, auth=("oauth2",))
