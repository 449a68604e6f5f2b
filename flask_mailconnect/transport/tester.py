"""Test connection: SMTP and IMAP side by side, so a user waits for the slower, not the sum."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ..codes import PROTOCOL_ERROR, message_for
from .imap import check_imap
from .settings import ConnectionReport, Protocol, ProtocolResult, ServerSettings, TransportOptions

log = logging.getLogger(__name__)

Check = Callable[[ServerSettings, TransportOptions], ProtocolResult]


def _in_thread(
    check: Check, protocol: Protocol, settings: ServerSettings, options: TransportOptions
) -> Callable[[], ProtocolResult]:
    """Start ``check`` (which tests ``protocol``) in a thread; return a function that waits for
    its result.

    Checks never raise and bound every network step with ``options.timeout``, so joining
    without a limit cannot hang beyond the checks' own timeouts.
    """
    box: list[ProtocolResult] = []

    def run() -> None:
        try:
            box.append(check(settings, options))
        except Exception as exc:  # reported by wait(); the class name is enough to debug
            log.warning("%s check crashed: %s", protocol.name, type(exc).__name__)

    worker = threading.Thread(
        target=run,
        name=f"mailconnect-{check.__name__}",
        daemon=True,
    )
    worker.start()

    def wait() -> ProtocolResult:
        worker.join()
        if not box:  # the check broke its promise not to raise; report it, don't crash
            return ProtocolResult(
                protocol,
                ok=False,
                code=PROTOCOL_ERROR,
                message=message_for(PROTOCOL_ERROR, settings.hints),
            )
        return box[0]

    return wait


def test_connection(settings: ServerSettings, options: TransportOptions) -> ConnectionReport:
    """SMTP always; IMAP too when the account receives. Both run in parallel threads."""
    # Imported with the first test: smtplib (and the email generator it loads) is not part of
    # a host's start-up (issue 13).
    from .smtp import check_smtp

    wait_imap = None
    if settings.receives:
        wait_imap = _in_thread(check_imap, Protocol.IMAP, settings, options)
    smtp = check_smtp(settings, options)  # the calling thread does one of the two checks
    imap = wait_imap() if wait_imap is not None else None
    return ConnectionReport(smtp=smtp, imap=imap)


# pytest collects test_* functions from modules that import this; it is not a test.
test_connection.__test__ = False  # type: ignore[attr-defined]
