"""Tables generated from the code, so the documentation never drifts from it.

(The settings table of ``configuration.rst`` is plain reStructuredText written into the file by
``gen_config.py``, so it also reads on a code host.)

``.. mailconnect-error-table::`` renders :data:`flask_mailconnect.codes.MESSAGES`;
``.. mailconnect-provider-table::`` lists the modules of ``flask_mailconnect/providers/builtin``;
``.. mailconnect-screenshot:: name.png`` shows ``_static/name.png`` once it exists.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import Directive, directives
from docutils.statemachine import StringList


def _cell(text: str) -> str:
    return " ".join(text.split())


class _TableDirective(Directive):
    has_content = False
    headers: tuple[str, ...] = ()
    widths = ""

    def rows(self) -> list[tuple[str, ...]]:
        raise NotImplementedError

    def run(self) -> list[nodes.Node]:
        lines = [".. list-table::", "   :header-rows: 1", f"   :widths: {self.widths}", ""]
        for row in [self.headers, *self.rows()]:
            first, *rest = row
            lines.append(f"   * - {_cell(first)}")
            lines.extend(f"     - {_cell(value)}" for value in rest)
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source="mailconnect_tables"), 0, container)
        return container.children


class ErrorTable(_TableDirective):
    headers = ("Code", "Retry may help", "Message shown to people")
    widths = "25 15 60"

    def rows(self) -> list[tuple[str, ...]]:
        from flask_mailconnect.codes import MESSAGES, RETRYABLE_CODES

        return [
            (f"``{code}``", "yes" if code in RETRYABLE_CODES else "", message)
            for code, message in MESSAGES.items()
        ]


class ProviderTable(_TableDirective):
    headers = ("Key (aliases)", "Name", "Domains", "Servers", "Sign-in")
    widths = "15 20 25 25 15"

    def rows(self) -> list[tuple[str, ...]]:
        from flask_mailconnect.providers.builtin import builtin_providers

        def server(value: Any) -> str:
            return f"{value.host}:{value.port} ({value.security})" if value else ""

        rows = []
        for provider, _configure in builtin_providers():
            aliases = f" ({', '.join(provider.aliases)})" if provider.aliases else ""
            domains = ", ".join(provider.domains)
            if provider.mx_suffixes:
                domains = ", ".join(filter(None, (domains, "by MX")))
            rows.append(
                (
                    f"``{provider.key}``{aliases}",
                    provider.title,
                    domains,
                    " / ".join(filter(None, (server(provider.smtp), server(provider.imap)))),
                    "password, OAuth 2.0" if provider.scopes else "password",
                )
            )
        return rows


class Screenshot(Directive):
    """An image from ``_static/`` when it exists; nothing (and no warning) until it does.

    Screenshots are taken by the browser tests and saved separately from the text.
    """

    required_arguments = 1
    option_spec = {"alt": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        env = self.state.document.settings.env
        name = self.arguments[0]
        if not (Path(env.srcdir) / "_static" / name).is_file():
            return []
        alt = self.options.get("alt", "")
        return [nodes.image(uri=f"_static/{name}", alt=alt, width="100%")]


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("mailconnect-error-table", ErrorTable)
    app.add_directive("mailconnect-provider-table", ProviderTable)
    app.add_directive("mailconnect-screenshot", Screenshot)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
