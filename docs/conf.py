"""Sphinx configuration for Flask-MailConnect (``make docs`` builds with ``-W``)."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.abspath(".."))
sys.path.insert(0, os.path.abspath("_ext"))

import flask_mailconnect  # noqa: E402

project = "Flask-MailConnect"
author = "Flask-MailConnect contributors"
copyright = "Flask-MailConnect contributors"  # noqa: A001
release = flask_mailconnect.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
    "mailconnect_tables",
]

templates_path: list[str] = []
exclude_patterns = ["_build"]
html_theme = "furo"
html_title = f"Flask-MailConnect {release}"
# Screenshots live in _static/; the folder may be absent in a fresh checkout.
_static = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_static")
html_static_path = ["_static"] if os.path.isdir(_static) else []

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True}
