"""The OAuth 2.0 protocol: Authlib's client per provider (client.py), the consent flow
(flow.py) and who signed in (identity.py), flow state (state.py), tokens refreshed under a row
lock (refresh.py, locks.py, endpoints.py) and revoked (revoke.py). Protocol only: accounts are
written by :mod:`flask_mailconnect.accounts`."""
