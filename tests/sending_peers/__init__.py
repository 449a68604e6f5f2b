"""Sending against the suite's aiosmtpd (and Dovecot for the Sent copies).

The modules here share one ``peer_app`` (this package's conftest.py), overriding the root
conftest's: the host app allowed to reach the local peers, inside its app context. The helpers
they share are in tests/sending.py.
"""
