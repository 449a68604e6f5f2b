"""Microsoft's Autodiscover v2 endpoint, used by detection only to learn that a domain is
hosted on Microsoft 365 (and so offer its "Connect with ..." button).

Not a provider module (the leading underscore keeps it out of the catalogue): it lives here
because provider names and URLs live only under ``providers/builtin/``.

The JSON endpoint answers an address hosted on Microsoft 365 with
``{"Protocol": "AutodiscoverV1", "Url": "https://outlook.office365.com/autodiscover/..."}``;
other addresses get an error object or a redirect elsewhere.
"""

from __future__ import annotations

from urllib.parse import urlsplit

#: ``{email}`` is replaced by the URL-quoted address.
AUTODISCOVER_URL = (
    "https://outlook.office365.com/autodiscover/autodiscover.json/v1.0/{email}"
    "?Protocol=AutodiscoverV1"
)
#: Hosts an answer's ``Url`` points at when the address is on Microsoft 365.
HOSTED_AT = ("outlook.office365.com", "outlook.office.com")
#: The catalogue key of the provider those addresses belong to.
PROVIDER_KEY = "microsoft"


def hosted_provider(answer: object) -> str | None:
    """The catalogue key an Autodiscover v2 JSON answer points at, else ``None``."""
    if not isinstance(answer, dict) or answer.get("Protocol") != "AutodiscoverV1":
        return None
    url = answer.get("Url")
    host = (urlsplit(url).hostname or "") if isinstance(url, str) else ""
    if urlsplit(str(url)).scheme == "https" and host.lower() in HOSTED_AT:
        return PROVIDER_KEY
    return None
