"""The OAuth consent flow through the pages, against the real local OAuth server.

The modules here share the host app with Google and Microsoft at that server (``oauth_app``,
``app`` and ``server``, in this package's conftest.py); the helpers that drive the flow are in
tests/oauth_flows.py.
"""
