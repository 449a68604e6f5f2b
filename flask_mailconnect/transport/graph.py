"""Microsoft Graph: send a MIME message with ``POST /me/sendMail``, or check the token works.

For Microsoft 365 tenants that turned SMTP AUTH off (SMTP answers ``535 5.7.139``), an account
whose token carries ``Mail.Send`` sends through Graph instead. Graph's MIME send takes the whole
RFC 5322 message, base64-encoded, as a ``text/plain`` body and answers ``202 Accepted``.

``graph_url`` is configuration (``https://graph.microsoft.com/v1.0``), yet requests still go
through the network guard (transport/http.py: checked address, https, verified TLS, size cap):
a private ``graph_url`` needs ``allow_private_hosts``. Redirects are never followed (a redirect
would carry the bearer token to another host). The token is never logged.
"""

from __future__ import annotations

import base64
import logging
import time
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

from .. import codes as errors
from ..codes import message_for
from ..exceptions import ConnectionFailed, GraphOutcomeUnknown
from .http import HTTPGuardError, guarded_session
from .settings import Protocol, ProtocolResult, TransportOptions

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)

#: Statuses that say the request was not processed: retry (after Retry-After when given). Any
#: other 5xx answered to a send means the message may have been accepted before the failure
#: (see :class:`GraphOutcomeUnknown`).
_THROTTLED = frozenset({429, 503})
#: Longest Retry-After we pass on; a server asking for more is treated as this.
_MAX_RETRY_AFTER = 3600.0


def _fail(code: str, detail: str, retry_after: float | None = None) -> ConnectionFailed:
    return ConnectionFailed(code, message_for(code), detail=detail, retry_after=retry_after)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError):
            return None
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER)


def _graph_error_code(response: requests.Response) -> str:
    """Graph's machine-readable error code (``ErrorAccessDenied``...), never its message."""
    try:
        body = response.json()
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) and code.isascii() and len(code) <= 80 else ""


def _raise_for(response: requests.Response) -> None:
    status = response.status_code
    graph_code = _graph_error_code(response)
    detail = f"Graph {status} {graph_code}".strip()
    if status == 401:
        raise _fail(errors.TOKEN_REJECTED, detail)
    if status == 403:
        raise _fail(errors.GRAPH_SEND_DENIED, detail)
    retry_after = _retry_after(response.headers.get("Retry-After"))
    if status in _THROTTLED:
        if retry_after is not None:
            detail = f"{detail}; retry after {retry_after:g} s"
        raise _fail(errors.GRAPH_THROTTLED, detail, retry_after)
    if 300 <= status < 400:
        raise _fail(errors.PROTOCOL_ERROR, f"Graph {status} redirect not followed")
    if 400 <= status < 500:
        raise _fail(errors.GRAPH_REJECTED, detail)
    # Other 5xx (500, 502, 504...): the request reached Graph, which may have acted on it.
    raise GraphOutcomeUnknown(
        errors.NETWORK_ERROR, message_for(errors.NETWORK_ERROR), detail=detail
    )


def _request(
    method: str,
    url: str,
    *,
    access_token: str,
    timeout: float,
    ca_file: str | None,
    allow_private_hosts: bool = False,
    data: bytes | None = None,
    content_type: str | None = None,
) -> requests.Response:
    import requests  # loaded already by guarded_session below; here for its exceptions

    headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
    if content_type:
        headers["Content-Type"] = content_type
    try:
        options = TransportOptions(
            timeout=timeout, allow_private_hosts=allow_private_hosts, ca_file=ca_file
        )
        with guarded_session(options) as session:
            return session.request(
                method,
                url,
                data=data,
                headers=headers,
                timeout=(timeout, timeout),
                allow_redirects=False,
            )
    except HTTPGuardError as exc:
        detail = f"Graph {exc.detail}".strip()
        if exc.code == errors.RESPONSE_TOO_LARGE:  # the request went out: Graph may have acted
            raise GraphOutcomeUnknown(exc.code, exc.message, detail=detail) from None
        raise _fail(exc.code, detail) from None  # refused or unresolved: nothing was sent
    except requests.exceptions.SSLError as exc:
        text = str(exc)
        code = (
            errors.CERTIFICATE_INVALID
            if "CERTIFICATE_VERIFY_FAILED" in text or "certificate" in text.lower()
            else errors.TLS_FAILED
        )
        raise _fail(code, "SSLError") from None
    except requests.exceptions.ConnectTimeout:  # before the request was sent
        raise _fail(errors.TIMEOUT, "Graph connect timeout") from None
    except requests.exceptions.Timeout:  # read timeout: the request went out
        raise GraphOutcomeUnknown(
            errors.TIMEOUT, message_for(errors.TIMEOUT), detail="Graph read timeout"
        ) from None
    except requests.exceptions.ConnectionError as exc:
        text = str(exc)
        if "Name or service not known" in text or "NameResolutionError" in text:
            raise _fail(errors.HOST_NOT_FOUND, "ConnectionError") from None
        if "Connection refused" in text:
            raise _fail(errors.REFUSED, "ConnectionError") from None
        if "NewConnectionError" in text or "Failed to establish a new connection" in text:
            raise _fail(errors.NETWORK_ERROR, "ConnectionError") from None
        # Aborted or reset after connecting: the request may have been read.
        raise GraphOutcomeUnknown(
            errors.CONNECTION_LOST, message_for(errors.CONNECTION_LOST), detail="ConnectionError"
        ) from None
    except requests.RequestException as exc:
        raise GraphOutcomeUnknown(
            errors.NETWORK_ERROR, message_for(errors.NETWORK_ERROR), detail=type(exc).__name__
        ) from None


def send_via_graph(
    message_bytes: bytes,
    *,
    access_token: str,
    graph_url: str,
    timeout: float,
    ca_file: str | None,
    allow_private_hosts: bool = False,
) -> None:
    """Send one MIME message through ``POST {graph_url}/me/sendMail``.

    Raises :class:`ConnectionFailed`: ``token_rejected`` (401: sign in again),
    ``graph_send_denied`` (403: Mail.Send not granted), ``graph_throttled`` (429, 503:
    retryable, ``retry_after`` from the header), ``graph_rejected`` (any other 4xx,
    permanent), or a network code. :class:`GraphOutcomeUnknown` (a subclass) when the request
    went out and the answer was lost or a 5xx: the message may have been sent.
    """
    body = base64.b64encode(message_bytes)
    response = _request(
        "POST",
        f"{graph_url.rstrip('/')}/me/sendMail",
        access_token=access_token,
        timeout=timeout,
        ca_file=ca_file,
        allow_private_hosts=allow_private_hosts,
        data=body,
        content_type="text/plain",
    )
    with response:
        if response.status_code == 202:
            return
        log.info("Graph send failed: HTTP %s", response.status_code)
        _raise_for(response)


def check_graph(
    access_token: str,
    graph_url: str,
    timeout: float,
    ca_file: str | None,
    *,
    allow_private_hosts: bool = False,
) -> ProtocolResult:
    """``GET {graph_url}/me`` with the token: does Graph accept it? Never raises.

    The result is reported as the account's sending protocol (``Protocol.SMTP``), since Graph
    takes SMTP's place for accounts that send through it.
    """
    started = time.monotonic()
    code, detail = errors.OK, ""
    try:
        response = _request(
            "GET",
            f"{graph_url.rstrip('/')}/me",
            access_token=access_token,
            timeout=timeout,
            ca_file=ca_file,
            allow_private_hosts=allow_private_hosts,
        )
        with response:
            if response.status_code != 200:
                _raise_for(response)
    except ConnectionFailed as exc:
        code, detail = exc.code, exc.detail
        log.info("Graph check failed: %s (%s)", exc.code, exc.detail)
    except Exception as exc:  # never raise from a check
        code, detail = errors.PROTOCOL_ERROR, type(exc).__name__
        log.warning("Graph check crashed: %s", detail)
    return ProtocolResult(
        Protocol.SMTP,
        ok=code == errors.OK,
        code=code,
        message=message_for(code),
        detail=detail,
        elapsed=time.monotonic() - started,
    )
