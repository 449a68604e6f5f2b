"""The blueprint: the person's pages, shared (scope) accounts, OAuth, folders, admin pages.

Templates extend ``mailconnect/_base.html``, which this package generates: it extends the host's
``MAILCONNECT_BASE_TEMPLATE`` and puts our pages into the block named by
``MAILCONNECT_CONTENT_BLOCK``. Jinja cannot take a block name from a variable, hence a template
written per app from its config. A host may still override ``mailconnect/_base.html`` by path.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cached_property

from flask import Blueprint, render_template
from jinja2 import BaseLoader, ChoiceLoader, Environment, FileSystemLoader, TemplateNotFound

from ..exceptions import EncryptionKeyError
from .routes import register

PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE_NAME = "mailconnect/_base.html"
_BASE_SOURCE = """{%% extends config.MAILCONNECT_BASE_TEMPLATE %%}
{%% block title %%}{%% block mailconnect_title %%}{%% endblock %%}{%% endblock %%}
{%% block %s %%}{%% block mailconnect_content %%}{%% endblock %%}{%% endblock %%}
"""


class _GeneratedBaseLoader(BaseLoader):
    """Serves ``mailconnect/_base.html`` for the app's configured content block."""

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        if template != BASE_NAME:
            raise TemplateNotFound(template)
        app = environment.app  # type: ignore[attr-defined]  # Flask's Environment has it
        block = app.config.get("MAILCONNECT_CONTENT_BLOCK") or "content"
        if not block.isidentifier() or block in ("title", "mailconnect_content"):
            raise ValueError(f"MAILCONNECT_CONTENT_BLOCK is not a usable block name: {block!r}")
        # Config does not change while the app runs, so the generated template never goes stale.
        return _BASE_SOURCE % block, None, lambda: True


class _MailConnectBlueprint(Blueprint):
    @cached_property
    def jinja_loader(self) -> BaseLoader | None:
        files = FileSystemLoader(os.path.join(PACKAGE_ROOT, "templates"))
        return ChoiceLoader([files, _GeneratedBaseLoader()])


def create_blueprint(*, preload: bool = False) -> Blueprint:
    """A new blueprint per app (routes and hooks are registered on it here); ``preload``
    imports the view modules now (``MAILCONNECT_PRELOAD_VIEWS``), else each loads on first use."""

    bp = _MailConnectBlueprint(
        "mailconnect",
        __name__,
        static_folder=os.path.join(PACKAGE_ROOT, "static"),
        static_url_path="/static",
    )
    register(bp, preload=preload)  # every route, hook and helper
    bp.register_error_handler(EncryptionKeyError, _key_unavailable)
    return bp


def _key_unavailable(exc: EncryptionKeyError) -> tuple[str, int, dict[str, str]]:
    """A stored secret could not be decrypted: a documented state, shown inside the host's
    layout with 503 (an administrator must restore the key), never a 500."""
    page = render_template("mailconnect/key_unavailable.html")
    return page, 503, {"Retry-After": "300"}


__all__ = ["create_blueprint"]
