"""``detect(email)``: every source at once under one deadline; the first in order that answers
wins.

Order (:data:`.model.SOURCES`): the catalogue by domain (admin-entered, declared and built-in
providers; answered at once, without any network), Mozilla's ISP database, the domain's
``autoconfig`` host, its ``.well-known`` file, DNS SRV records, the MX host, and Microsoft's
Autodiscover. The network sources start together on the process's shared, bounded pool
(:mod:`.workers`: a detection that finds it full answers "busy" at once); the answer is the
first source in that order that found servers once every source before it has ended, or, at
``MAILCONNECT_DETECT_TIMEOUT``, the first in order that found any: a source that never answers
costs no more than the deadline, and is not waited for (its requests and DNS queries end by
the same deadline, so its thread and socket are free soon after).

The domain is looked up in its ASCII form (IDNA A-labels: ``bücher.de`` is asked as
``xn--bcher-kva.de``), which is also the cache key. Nothing here sends a password, or anything
but the address and its domain: servers found are shown to the person with where they came
from and used only when they press Test connection or Save. Answers are cached per domain
(:mod:`.cache`), except one whose login carries no placeholder: that one may be one person's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from functools import partial

from flask import current_app

from ..providers.catalog import Catalog, current_catalog
from ..providers.detect import is_reserved
from ..providers.model import Provider
from ..runtime import current_runtime
from . import cache, records, web
from .context import Context, SourceFailure
from .model import (
    SOURCES,
    Auth,
    DetectedServer,
    Detection,
    Finding,
    NotAsked,
    SourceAttempt,
    fill,
    personal,
)
from .names import ascii_domain, clean_login
from .workers import Busy, workers

log = logging.getLogger("flask_mailconnect.detection")
Source = Callable[[Context], Finding]

#: The network sources, by name (the catalogue is asked first, in the caller's thread).
NETWORK: dict[str, Source] = {
    "ispdb": web.ispdb,
    "autoconfig": web.autoconfig,
    "well-known": web.well_known,
    "srv": records.srv,
    "mx": records.mx,
    "autodiscover": web.autodiscover,
}
#: A "nothing found" after a timeout or failure is asked again sooner than a real "nothing".
RETRY_SOON = 300.0
Result = tuple[Finding | None, SourceAttempt]


def _timed(name: str, source: Source, ctx: Context) -> Result:
    started = time.monotonic()
    try:
        finding = source(ctx)
    except SourceFailure as exc:
        return None, SourceAttempt(name, exc.outcome, _since(started), exc.detail)
    except Exception as exc:  # a bug in one source must not cost the others
        log.exception("Detection source %s failed", name)
        return None, SourceAttempt(name, "failed", _since(started), type(exc).__name__)
    if not finding.useful:
        return None, SourceAttempt(name, "nothing", _since(started))
    return finding, SourceAttempt(name, "found", _since(started))


def _since(started: float) -> float:
    return round(time.monotonic() - started, 4)


def _decide(order: list[str], results: dict[str, Result], *, final: bool) -> Finding | None | bool:
    """The winning finding, ``None`` when every source ended empty, ``False`` while an earlier
    source may still answer (``final``: the deadline passed, skip those)."""
    for name in order:
        if name not in results:
            if final:
                continue
            return False
        finding = results[name][0]
        if finding is not None:
            return finding
    return None


def race(
    ctx: Context, sources: dict[str, Source], *, wait_all: bool = False
) -> tuple[Finding | None, list[SourceAttempt]]:
    """Run ``sources`` concurrently until the deadline; the first in order that answers wins.
    ``wait_all``: keep waiting (up to the deadline) for sources that are no longer needed, so
    every outcome is known (the CLI). Raises :class:`.workers.Busy` (nothing started) when
    this process runs as many detections as it may."""
    order = list(sources)
    results: dict[str, Result] = {}
    if not order:
        return None, []
    calls = [partial(_timed, name, source, ctx) for name, source in sources.items()]
    futures: dict[Future[Result], str] = dict(zip(workers().start(calls), order, strict=True))
    pending = set(futures)
    try:
        while pending:
            if not wait_all and _decide(order, results, final=False) is not False:
                break
            remaining = ctx.deadline - time.monotonic()
            if remaining <= 0:
                break
            done, pending = wait(pending, timeout=remaining, return_when=FIRST_COMPLETED)
            for future in done:
                results[futures[future]] = future.result()
    finally:
        # Never wait for a slow source: its requests and queries end by the deadline.
        for future in pending:
            future.cancel()  # only one not started yet: the pool never makes a source queue
    decided = _decide(order, results, final=True)
    winner = decided if isinstance(decided, Finding) else None
    attempts = []
    for name in order:
        if name in results:
            attempts.append(results[name][1])
        elif winner is not None and not wait_all and order.index(name) > order.index(winner.source):
            attempts.append(SourceAttempt(name, "skipped", None, "an earlier source answered"))
        else:
            attempts.append(SourceAttempt(name, "timeout", None, "no answer by the deadline"))
    return winner, attempts


# -- from a finding to the answer for one address ----------------------------------------------


def _provider_by_servers(catalog: Catalog, finding: Finding) -> Provider | None:
    """The catalogue provider whose servers a source named (its OAuth button, its advice)."""
    hosts = {s.host for s in (finding.smtp, finding.imap) if s is not None}
    for provider in catalog:
        if provider.key == "other" or not provider.enabled:
            continue
        if hosts & {s.host for s in (provider.smtp, provider.imap) if s is not None}:
            return provider
    return None


def _server(server: object) -> DetectedServer | None:
    if server is None:
        return None
    return DetectedServer(server.host, server.port, server.security)  # type: ignore[attr-defined]


def build(
    email: str,
    domain: str,
    catalog: Catalog,
    finding: Finding | None,
    tried: tuple[SourceAttempt, ...],
    *,
    cached: bool = False,
    seconds: float = 0.0,
) -> Detection:
    """The :class:`Detection` for ``email`` from the winning ``finding`` (``None``: nothing)."""
    if finding is None:
        return Detection(email, domain, tried=tried, cached=cached, seconds=seconds)
    provider = catalog.get(finding.provider) if finding.provider else None
    if provider is None:
        provider = _provider_by_servers(catalog, finding)
    if provider is not None and (provider.key == "other" or not provider.enabled):
        provider = None
    has_servers = bool(finding.smtp or finding.imap)
    smtp = finding.smtp or (_server(provider.smtp) if provider else None)
    imap = finding.imap or (_server(provider.imap) if provider else None)
    # RFC 6186: the login is the address, unless the source says otherwise.
    login = finding.username or ("%EMAILADDRESS%" if has_servers else None)
    if login:
        username = clean_login(fill(login, email))
    else:
        username = (provider.login_for(email) if provider else email) or None
    auth: list[Auth] = list(finding.auth) if has_servers else []
    if not has_servers and provider is not None and (provider.smtp or provider.imap):
        auth.append("password")
    if provider is not None and provider.offers_oauth and "oauth2" not in auth:
        auth.append("oauth2")
    return Detection(
        email, domain, provider=provider, smtp=smtp, imap=imap, username=username,
        auth=tuple(auth), source=finding.source, tried=tried,
        display_name=finding.display_name, pop3_only=finding.pop3_only,
        origin=finding.origin, cached=cached, seconds=seconds, login=login,
    )  # fmt: skip


def _split(email: str) -> tuple[str, str, bool]:
    """(address with its domain lower-cased, domain, whether it has a local part and "@")."""
    local, at, domain = email.strip()[:320].rpartition("@")
    domain = domain.strip().lower().rstrip(".")
    return f"{local}@{domain}", domain, bool(at and local.strip())


def context(email: str, domain: str, catalog: Catalog) -> Context:
    """The sources' view of the current app's configuration for one detection."""
    config = current_app.config
    autodiscover = None
    if config["MAILCONNECT_DETECT_AUTODISCOVER"]:
        autodiscover = config["MAILCONNECT_AUTODISCOVER_URL"] or web.AUTODISCOVER_URL
    return Context(
        email=email,
        domain=domain,
        catalog=catalog,
        options=current_runtime().transport_options(),
        deadline=time.monotonic() + float(config["MAILCONNECT_DETECT_TIMEOUT"]),
        nameservers=config["MAILCONNECT_DNS_NAMESERVERS"],
        ispdb_url=config["MAILCONNECT_ISPDB_URL"] or None,
        autoconfig_urls=tuple(config["MAILCONNECT_AUTOCONFIG_URLS"] or ()),
        autodiscover_url=autodiscover,
    )


def _sources() -> dict[str, Source]:
    """The network sources this app asks (MX only with ``MAILCONNECT_MX_LOOKUP``)."""
    if current_app.config["MAILCONNECT_MX_LOOKUP"]:
        return dict(NETWORK)
    return {k: v for k, v in NETWORK.items() if k != "mx"}


def detect(
    email: str,
    *,
    network: bool | Callable[[], bool] = True,
    fresh: bool = False,
    wait_all: bool = False,
) -> Detection:
    """Servers for ``email`` and where they came from (see the module docstring).

    ``network=False``: the catalogue and the cache only; a callable is asked only when the
    network is needed (``/detect`` spends one of the person's look-ups per minute there).
    ``fresh``: ignore the cached answer (a new one is stored). ``wait_all``: learn every
    source's outcome (up to the deadline) even after the winner is known.
    """
    started = time.monotonic()
    email, domain, has_local = _split(email)
    lookup = ascii_domain(domain) if has_local else None  # what is asked and cached
    catalog = current_catalog()
    provider = catalog.for_domain(domain) if has_local else None
    if provider is None and lookup is not None and lookup != domain:
        provider = catalog.for_domain(lookup)
    first = SourceAttempt("catalogue", "found" if provider else "nothing", _since(started))
    if provider is not None:
        finding = Finding("catalogue", provider=provider.key)
        return build(email, domain, catalog, finding, (first,), seconds=_since(started))

    def skipped(reason: str, not_asked: NotAsked = "") -> Detection:
        rest = tuple(SourceAttempt(n, "skipped", None, reason) for n in SOURCES[1:])
        return Detection(email, domain, tried=(first, *rest), seconds=_since(started),
                         not_asked=not_asked)  # fmt: skip

    if lookup is None:
        return skipped("not a valid domain")
    if is_reserved(lookup):
        return skipped("a reserved name (RFC 2606, 6761) that no public source knows")
    policy = cache.CachePolicy.from_config(current_app.config["MAILCONNECT_DETECT_CACHE"])
    engine = current_runtime().engine()  # our tables may live on a bind
    if policy is not None and not fresh:
        hit = cache.load(engine, lookup)
        if hit is not None:
            return build(email, domain, catalog, hit.finding, (first, *hit.tried), cached=True,
                         seconds=_since(started))  # fmt: skip
    if not (network() if callable(network) else network):
        return skipped("look-up limit reached: try again in a minute", "limit")
    ctx = context(f"{email.rpartition('@')[0]}@{lookup}", lookup, catalog)
    try:
        winner, attempts = race(ctx, _sources(), wait_all=wait_all)
    except Busy:
        return skipped("busy: too many look-ups running at once", "busy")
    # A login without placeholders may be one person's (autoconfig is told the address).
    if policy is not None and not (winner is not None and personal(winner.username)):
        unsure = any(a.outcome in ("timeout", "failed") for a in attempts)
        ttl = policy.positive if winner else policy.negative
        cache.store(engine, lookup, winner, tuple(attempts),
                    min(ttl, RETRY_SOON) if unsure and not winner else ttl)  # fmt: skip
    return build(email, domain, catalog, winner, (first, *attempts), seconds=_since(started))
