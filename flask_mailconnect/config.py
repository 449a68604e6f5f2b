"""Every ``MAILCONNECT_*`` configuration key, its default and what it means.

The table in ``docs/configuration.rst`` is generated from :data:`DEFAULTS`, so this module is the
single source of truth. :meth:`MailConnect.init_app` applies each default with
``app.config.setdefault``; a host sets any of them before calling it.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class Option(NamedTuple):
    default: Any
    meaning: str


DEFAULTS: dict[str, Option] = {
    "MAILCONNECT_ENCRYPTION_KEYS": Option(
        None,
        "List of Fernet keys (newest first) that encrypt passwords and tokens at rest. Required; "
        "never derived from SECRET_KEY. Generate one with "
        "``python -m flask_mailconnect generate-key`` (no app needed).",
    ),
    "MAILCONNECT_URL_PREFIX": Option("/email", "Where the blueprint is mounted."),
    "MAILCONNECT_BASE_TEMPLATE": Option(
        "mailconnect/standalone.html",
        "The host template every page extends; it must define ``{% block content %}`` "
        "(see ``MAILCONNECT_CONTENT_BLOCK``) and may define ``title`` and ``head``.",
    ),
    "MAILCONNECT_CONTENT_BLOCK": Option(
        "content", "Name of the block in the base template that receives the page body."
    ),
    "MAILCONNECT_PROVIDERS": Option(
        {},
        "Providers besides the presets, by key: ``name``, ``smtp`` and ``imap`` (``host``, "
        "``port``, ``security``), ``domains`` for detection, ``login_format`` (``email``, "
        "``local_part`` or ``manual``), ``keeps_sent_copy`` (the provider files sent mail "
        "itself, so no copy is appended to Sent). Declared domains win over the presets'.",
    ),
    "MAILCONNECT_EXTERNAL_URL": Option(
        None,
        "Public base URL of the app (``https://crm.example.com``) used to build OAuth redirect "
        "URIs; never taken from the request's Host header. Without it, ``SERVER_NAME`` must be "
        "set, or each OAuth provider needs its own ``redirect_uri``.",
    ),
    "MAILCONNECT_CONNECT_TIMEOUT": Option(
        10.0, "Seconds allowed for each network step (resolve, connect, each server reply)."
    ),
    "MAILCONNECT_ALLOW_PRIVATE_HOSTS": Option(
        False,
        "Allow mail servers on loopback, private, link-local and other non-public addresses. "
        "Leave off in production unless your mail server sits in your own network.",
    ),
    "MAILCONNECT_ALLOW_PLAINTEXT_AUTH": Option(
        False,
        "Allow sending a password over a connection with security 'None'. Off: such a test "
        "fails with ``tls_required`` before the password leaves the machine.",
    ),
    "MAILCONNECT_SMTP_PORTS": Option(
        [25, 465, 587, 2525], "SMTP ports users may enter; ``None`` allows any port."
    ),
    "MAILCONNECT_IMAP_PORTS": Option(
        [143, 993], "IMAP ports users may enter; ``None`` allows any."
    ),
    "MAILCONNECT_CA_FILE": Option(
        None,
        "Extra PEM bundle of certificate authorities trusted besides the system store "
        "(``SSL_CERT_FILE`` also works).",
    ),
    "MAILCONNECT_TESTS_PER_HOUR": Option(
        30,
        "Connection tests (including the one Save runs) one person may run per hour, so the "
        "Test button cannot be used to try passwords against mail servers. ``None``: no limit.",
    ),
    "MAILCONNECT_SIGNATURE_MAX_LENGTH": Option(20_000, "Longest signature HTML accepted."),
    "MAILCONNECT_ADMIN_PAGE_SIZE": Option(
        50, "Rows per page in the admin lists (accounts, audit trail, users found)."
    ),
    "MAILCONNECT_MX_LOOKUP": Option(
        True,
        "Detect the provider of an unknown domain from its MX records (after admin-entered "
        "domains and the presets). ``False``: no DNS lookups.",
    ),
    "MAILCONNECT_MX_TIMEOUT": Option(
        3.0, 'Seconds one MX lookup may take; past it detection answers "Other".'
    ),
    "MAILCONNECT_MX_CACHE_SECONDS": Option(
        3600, "How long an MX answer (or its failure) is remembered, per app and process."
    ),
    "MAILCONNECT_PROVIDER_CACHE_SECONDS": Option(
        5.0,
        "How long each process reuses the admin-entered providers it read (client secrets "
        "stay encrypted in that copy) instead of reading them on every page. A change made "
        "in one process is seen there at once; other processes see it within this time. "
        "``0``: read them once per request.",
    ),
    "MAILCONNECT_PRELOAD_VIEWS": Option(
        False,
        "Import every view module (with the forms and use-cases they use) in ``init_app`` "
        "instead of with the first request that runs each. For servers that load the app once "
        "and fork their workers (gunicorn ``--preload``): the workers share that code and "
        "none pays for the import on its first request; start-up pays it instead.",
    ),
    "MAILCONNECT_DNS_NAMESERVERS": Option(
        None,
        'Name servers for server detection (MX and SRV; ``["10.0.0.2"]`` or '
        '``["127.0.0.1:5353"]``); ``None`` uses the system\'s resolver configuration.',
    ),
    "MAILCONNECT_DETECT_TIMEOUT": Option(
        4.0,
        "Seconds server detection may take in all: its sources are asked at once, and one "
        "that has not answered by then is not waited for.",
    ),
    "MAILCONNECT_ISPDB_URL": Option(
        "https://autoconfig.thunderbird.net/v1.1/",
        "Mozilla's ISP database (Thunderbird's clientConfig v1.1 files); the domain is "
        "appended. ``None``: not asked.",
    ),
    "MAILCONNECT_AUTOCONFIG_URLS": Option(
        [
            "https://autoconfig.{domain}/mail/config-v1.1.xml?emailaddress={email}",
            "https://{domain}/.well-known/autoconfig/mail/config-v1.1.xml",
        ],
        "Where a domain publishes its own clientConfig file (``{domain}`` and ``{email}`` "
        "are filled in); the first is the ``autoconfig`` source, the second ``.well-known``.",
    ),
    "MAILCONNECT_DETECT_AUTODISCOVER": Option(
        True,
        "Ask Microsoft's Autodiscover whether a domain is hosted on Microsoft 365 (only to "
        "offer its sign-in button).",
    ),
    "MAILCONNECT_AUTODISCOVER_URL": Option(
        None,
        "The Autodiscover v2 JSON endpoint (``{email}`` is filled in); ``None``: Microsoft's.",
    ),
    "MAILCONNECT_DETECT_CACHE": Option(
        {"positive": 86_400, "negative": 3_600},
        'Seconds a detection answer (``positive``) and a "nothing found" (``negative``) are '
        "kept per domain in the ``mailconnect_detect_cache`` table, shared by every worker. "
        "``None``: no cache.",
    ),
    "MAILCONNECT_USERS_CAN_MANAGE_OWN": Option(
        True,
        "People may connect, edit and disconnect their own accounts. ``False``: only admins "
        "manage personal accounts (users still see and send from theirs).",
    ),
    "MAILCONNECT_ADMIN_OAUTH_ON_BEHALF": Option(
        True,
        "Admins may give the OAuth consent for someone else's personal account (\"Connect with "
        "Google\" on a person's admin page): the admin signs in at the provider and the "
        "account is stored under that person, audited with the admin as actor. ``False``: "
        "admins hand accounts over instead and only the person themselves gives consent.",
    ),
    "MAILCONNECT_MAX_ACCOUNTS": Option(
        None,
        "Most accounts one owner may have: an int for every scope, or a dict by scope kind "
        '(``{"user": 1, "project": 1}``; kinds not listed are unlimited). ``None``: no limit.',
    ),
    "MAILCONNECT_SENDER_ORDER": Option(
        ["scope", "organization", "user"],
        "Where ``resolve_sender`` looks for an account, in order: ``scope`` (the owner given, "
        "e.g. the project), ``organization`` (the shared accounts), ``user`` (the sender's own).",
    ),
    "MAILCONNECT_SYNC_ON_SAVE_TIMEOUT": Option(
        5.0,
        "When an account is saved (connected, reconnected, signed in again) its newest 50 "
        "messages are loaded at once: through the host's queue when ``@mailconnect.enqueue`` "
        "is set, else in the request, waiting at most this many seconds for the mail server "
        "(the save itself never fails because of it). ``0``: load only through the queue, or "
        "on Refresh.",
    ),
    "MAILCONNECT_CHECK_CONCURRENCY": Option(
        8,
        "How many accounts ``flask mailconnect check`` (and ``keep-alive``) work on at once "
        "(threads, each with its own app context and database connection).",
    ),
    "MAILCONNECT_KEEPALIVE_DAYS": Option(
        {},
        "Refresh an OAuth token whose refresh token has gone unused this many days, by "
        'provider key (``"*"``: every provider not listed; ``None`` turns it off). Unset, '
        "each provider's own rule applies (its ``keepalive_days``: 60 days for Microsoft, "
        "ahead of its 90-day inactivity limit; 150 for Google, ahead of 6 months; 60 for "
        "others). Google apps in testing mode lose refresh tokens after 7 days: set that "
        "provider's key to 3 there.",
    ),
}


def apply_defaults(config: dict[str, Any]) -> None:
    """Fill in every key the host did not set (``setdefault``, never overwrite)."""
    for key, option in DEFAULTS.items():
        value = option.default
        if isinstance(value, (list, dict)):  # never share one mutable default between apps
            value = value.copy()
        config.setdefault(key, value)
