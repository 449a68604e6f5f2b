"""The one HTTP client of the package: every HTTP request (OAuth discovery, token, userinfo,
revoke, JWKS; Microsoft Graph) goes out through a session made here.

An admin types an OAuth provider's URLs; a metadata document names more of them. Any of these
could point at the machine we run on or its private network (SSRF: ``169.254.169.254`` cloud
metadata, an internal admin port). So, for every request and every redirect hop:

* **https only**; ``http://`` only with ``allow_private_hosts`` (a local test provider).
* **Ports**: 443 (80 for http), others only with ``allow_private_hosts``: a public provider
  has no reason to live elsewhere, and the allowlist keeps us from probing other services.
* **Resolve once** with :func:`.netguard.resolve_guarded`, refuse every non-public address (the
  socket guard's rules, IPv4 hidden in IPv6 included) unless ``allow_private_hosts``, before any
  socket exists; then connect to exactly the checked address (no second DNS lookup, so DNS
  rebinding cannot swap it), while TLS SNI and certificate verification use the URL's host name.
* **TLS verified** with :meth:`TransportOptions.ssl_context` (system store plus
  ``MAILCONNECT_CA_FILE``); a caller's ``verify=False`` or CA path is ignored. No proxy, netrc
  or CA bundle from the environment (``trust_env`` off): a proxy would resolve the name itself.
* **Redirects**: only GET and HEAD are followed; any other method (a token or revoke POST) is
  never re-sent, whatever the status (307/308 would re-POST the client secret). At most
  :data:`MAX_REDIRECTS` hops, each ``https://``, each re-checked like a first request.
* **Timeouts** on every request (connect and read, from ``TransportOptions.timeout``) even when
  the caller passes none; **responses** are read in full here, refused beyond ``max_bytes``.
* **Deadline** (optional ``deadline=``, a ``time.monotonic()`` value): no request or redirect
  hop starts after it, connect and read timeouts are cut to the time left, and every read of
  the answer ends by it (a server dripping a byte a second cannot hold the request, its thread
  or socket): past it the request fails with code ``timeout`` and its connection is closed.

Refusals raise :class:`HTTPGuardError`, a :class:`~flask_mailconnect.ConnectionFailed` with a
stable ``code``; one raised by a session's request is also a :class:`requests.ConnectionError`,
so code written for requests (``except requests.RequestException``) still turns it into a clear
failure.

This module is light to import: the requests and urllib3 machinery lives in
:mod:`.http_session`, loaded by the first session made here.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from .settings import TransportOptions
from .urlguard import (
    DEFAULT_MAX_BYTES,
    MAX_REDIRECTS,
    REFUSAL_CODES,
    HTTPGuardError,
    check_redirect,
    check_url,
)

if TYPE_CHECKING:
    from authlib.integrations.requests_client import OAuth2Session

    from .http_session import GuardedSession

    class GuardedOAuth2Session(OAuth2Session):  # the class oauth2_session_class() builds
        guard_options: TransportOptions

        def __init__(
            self,
            *args: Any,
            transport_options: TransportOptions | None = None,
            max_response_bytes: int = DEFAULT_MAX_BYTES,
            **kwargs: Any,
        ) -> None: ...


def guarded_session(
    options: TransportOptions, *, max_bytes: int = DEFAULT_MAX_BYTES, deadline: float | None = None
) -> GuardedSession:
    """A new guarded session (use it as a context manager: ``with guarded_session(o) as s``);
    ``deadline``: a ``time.monotonic()`` value none of its requests goes on past."""
    from .http_session import GuardedSession  # requests, loaded by the first session

    return GuardedSession(options, max_bytes=max_bytes, deadline=deadline)


@cache
def oauth2_session_class() -> type[GuardedOAuth2Session]:
    """Authlib's requests ``OAuth2Session`` with the same guard, as ``GuardedOAuth2Session``.
    It takes Authlib's arguments plus ``transport_options`` and ``max_response_bytes``, so it can
    be Authlib's ``client_cls`` (the options then travel in ``client_kwargs``).

    Built on first use, once per process: Authlib and joserfc (with cryptography's X.509)
    cost ~45 ms to import, which a host would otherwise pay at start-up for its first OAuth
    request. ``from flask_mailconnect.transport.http import GuardedOAuth2Session`` still works
    (module ``__getattr__``)."""
    from .http_session import build_oauth2_session_class

    return build_oauth2_session_class()


def __getattr__(name: str) -> Any:
    # The session classes, for ``from flask_mailconnect.transport.http import GuardedSession``:
    # loading them loads requests, so only on demand.
    if name == "GuardedOAuth2Session":
        return oauth2_session_class()
    if name == "GuardedSession":
        from .http_session import GuardedSession

        return GuardedSession
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_MAX_BYTES",
    "MAX_REDIRECTS",
    "REFUSAL_CODES",
    "GuardedOAuth2Session",
    "GuardedSession",
    "HTTPGuardError",
    "check_redirect",
    "check_url",
    "guarded_session",
    "oauth2_session_class",
]
