"""Health checks and token keep-alive against real peers: aiosmtpd, Dovecot, the OAuth server.

The modules here share ``dbapp`` (this package's conftest.py): the host app on every database in
MAILCONNECT_TEST_DATABASE_URLS. The accounts they check are made by tests/health_accounts.py.
"""
