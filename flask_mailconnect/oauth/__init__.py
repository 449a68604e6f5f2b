"""OAuth 2.0 accounts: provider settings (providers.py), the consent flow (flow.py) and tokens
(tokens.py: refresh under a row lock, revoke)."""

from ..exceptions import OAuthConfigError
from .providers import OAuthProvider, oauth_providers

__all__ = ["OAuthConfigError", "OAuthProvider", "current_oauth_providers", "oauth_providers"]
