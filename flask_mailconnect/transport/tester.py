"""Test connection: SMTP and IMAP side by side, so a user waits for the slower, not the sum."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable

from ..codes import PROTOCOL_ERROR, message_for
from .imap import check_imap
from .settings import ConnectionReport, Protocol, ProtocolResult, ServerSettings, TransportOptions

log = logging.getLogger(__name__)

Check = Callable[[ServerSettings, TransportOptions], ProtocolResult]


def _guarded(
    check: Check, protocol: Protocol, settings: ServerSettings, options: TransportOptions
) -> ProtocolResult:
    """``check``'s result; ``protocol_error`` for ``protocol`` if it broke its promise not to
    raise, so one broken check never costs the user the other's result."""
    try:
        return check(settings, options)
    except Exception as exc:  # the class name is enough to debug
        log.warning("%s check crashed: %s", protocol.name, type(exc).__name__)
        return _protocol_error(protocol, settings)


def _protocol_error(protocol: Protocol, settings: ServerSettings) -> ProtocolResult:
    return ProtocolResult(
        protocol, ok=False, code=PROTOCOL_ERROR, message=message_for(PROTOCOL_ERROR, settings.hints)
    )


def _in_thread(
    check: Check, protocol: Protocol, settings: ServerSettings, options: TransportOptions
) -> Callable[[], ProtocolResult]:
    """Start ``check`` (which tests ``protocol``) in a new thread; return a function that waits
    for its result.

    Checks never raise (and are guarded anyway) and bound every network step with
    ``options.timeout``, so joining without a limit cannot hang beyond their own timeouts.
    """
    box: list[ProtocolResult] = []

    def run() -> None:
        box.append(_guarded(check, protocol, settings, options))

    worker = threading.Thread(target=run, name=f"mailconnect-{check.__name__}", daemon=True)
    worker.start()

    def wait() -> ProtocolResult:
        worker.join()
        # Empty only if the thread ended on a BaseException (SystemExit): report, don't crash.
        return box[0] if box else _protocol_error(protocol, settings)

    return wait


def test_connection(settings: ServerSettings, options: TransportOptions) -> ConnectionReport:
    """SMTP always; IMAP too when the account receives. Both run in parallel threads."""
    # Imported with the first test: smtplib (and the email generator it loads) is not part of
    # a host's start-up (issue 13).
    from .smtp import check_smtp

    # Both checks take their verified TLS context from options.ssl_context()'s cache. On the first
    # test of a process the cache is empty and the two checks, starting together, would each
    # load the trust store (15-30 ms of CPU; callgrind counted the second full load): build
    # it once here, before the SMTP thread starts, so neither check pays for it twice. A bad
    # ca_file fails again inside each check, which reports it with its own code: no raise here.
    with contextlib.suppress(Exception):
        options.ssl_context()
    if not settings.receives:
        return ConnectionReport(smtp=_guarded(check_smtp, Protocol.SMTP, settings, options))
    wait_smtp = _in_thread(check_smtp, Protocol.SMTP, settings, options)
    # The calling thread does IMAP, usually the slower check (its login starts a mail process,
    # then SELECT opens the mailbox): it starts at once, as it would alone, and the wall time
    # tracks it rather than it plus a thread start.
    imap = _guarded(check_imap, Protocol.IMAP, settings, options)
    return ConnectionReport(smtp=wait_smtp(), imap=imap)


# pytest collects test_* functions from modules that import this; it is not a test.
test_connection.__test__ = False  # type: ignore[attr-defined]
