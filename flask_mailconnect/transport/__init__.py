"""Talking to mail servers: SMTP, IMAP and the network guard. Imports no Flask and no SQLAlchemy."""
