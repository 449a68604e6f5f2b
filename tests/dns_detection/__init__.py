"""Provider detection's MX step against a real (local) DNS server, in the pages and the admin's
``/detect``: the modules here share ``dns_server`` (this package's conftest.py)."""
