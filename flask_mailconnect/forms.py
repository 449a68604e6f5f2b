"""Flask-WTF forms of the user pages.

Field names of :class:`ConnectForm` match :class:`ServerSettings` so that errors from
:func:`flask_mailconnect.validation.settings_errors` (the checks the Python API runs too) land on
the right field. Passwords are :class:`PasswordField`, which never renders its value back.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Callable
from typing import Any

from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from wtforms import (
    BooleanField,
    EmailField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional, ValidationError
from wtforms.widgets import TextArea, TextInput
from wtforms.widgets.core import clean_key

from .i18n import gettext, lazy_gettext
from .providers import Provider, current_catalog, detect_provider
from .transport.settings import SECURITY_CHOICES, SECURITY_LABELS, ServerSettings
from .validation import control_chars, is_host, normalize_email, parse_int, settings_errors

try:  # WTForms 3.3 deprecates (value, label) tuples in favour of SelectChoice
    from wtforms import SelectChoice as _Choice
except ImportError:  # pragma: no cover - WTForms < 3.3

    def _Choice(value: str, label: str) -> Any:  # noqa: N802
        return (value, label)


def html_params(**kwargs: Any) -> Markup:
    """WTForms' ``html_params``, written the same (sorted, ``True`` bare, ``False`` left out,
    values escaped and ``"`` as ``&quot;``) without a ``Markup.format`` per attribute, which was
    most of the account page's cost of writing its text fields."""
    params = []
    for key, value in sorted(kwargs.items()):
        if value is True:
            params.append(_attr_name(key))
        elif value is not False:
            if type(value) is str:  # most values: escape's text, without a Markup made twice
                text = value.translate(_ESCAPES)
            else:
                # A raw '"' is left only in a Markup value (escape keeps it): WTForms writes
                # &quot;.
                text = str(escape(value)).replace('"', "&quot;")
            params.append(f'{_attr_name(key)}="{text}"')
    return Markup(" ".join(params))  # noqa: S704  # every key and value escaped above


#: What :func:`markupsafe.escape` replaces, and with what (tests/test_pages_fast_pages.py
#: compares the two).
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "'": "&#39;", '"': "&#34;"})


@functools.lru_cache(maxsize=256)
def _attr_name(key: str) -> str:
    """A keyword argument's attribute name as WTForms writes it (``class_`` -> ``class``,
    ``data_x`` -> ``data-x``), escaped; the names are the code's own, so few and kept."""
    return str(escape(clean_key(key)))


def _flag_attrs(names: Any, field: Any, kwargs: dict[str, Any], *, call: bool) -> None:
    """The field's flags among ``names`` (``maxlength``, ``required`` ...) as attributes, as
    WTForms' widgets add them, but read from the flags' own attributes: WTForms walks
    ``dir(flags)``, which sorts every name of the class too (a third of writing a field)."""
    flags = getattr(field, "flags", None)
    for key, value in getattr(flags, "__dict__", {}).items():
        if key in names and key not in kwargs:
            kwargs[key] = value() if call and callable(value) else value


def checkbox_html(field: Any, help: Any = None, class_: Any = "") -> Markup | None:  # noqa: A002
    """The ``checkbox`` macro of ``mailconnect/_field.html`` for a plain BooleanField (no
    ``render_kw``, no ``checked`` attribute, not required or disabled, no extra attributes),
    written here in one go: the same characters the macro's template writes (the suite
    compares them), for a fifth of the cost. ``None`` for any other field: the macro writes it.
    """
    flags = field.flags
    if (
        getattr(field, "type", None) != "BooleanField"
        or field.render_kw
        or hasattr(field, "checked")
        or flags.required
        or flags.disabled
    ):
        return None
    ident, name = escape_text(field.id), escape_text(field.name)
    described = f'aria-describedby="{ident}-help" ' if help else ""
    checked = "checked " if field.data else ""
    note = f'<p class="mc-help" id="{ident}-help">{escape_text(help)}</p>' if help else ""
    return Markup(  # noqa: S704  # every value escaped above
        f'<div class="mc-check {escape_text(class_)}" data-field="{name}">\n'
        f"  <input {described}{checked}"
        f'class="mc-check-input" id="{ident}" name="{name}" type="checkbox"'
        f' value="{escape_text(field._value())}">\n'
        f"  <div>\n"
        f'    <label class="mc-check-label" for="{ident}">{escape_text(field.label.text)}</label>\n'
        f"    {note}\n"
        f"  </div>\n"
        f"</div>"
    )


def escape_text(value: Any) -> str:
    """``value`` as Jinja prints it under autoescape (markup as it is, anything else escaped),
    as a plain ``str``: a plain string is escaped by :data:`_ESCAPES`, without the two
    ``Markup`` objects ``escape`` makes."""
    return value.translate(_ESCAPES) if type(value) is str else str(escape(value))


class FastTextInput(TextInput):
    """A text input written as :class:`~wtforms.widgets.TextInput` writes it (the suite
    compares them), with :func:`html_params` and :func:`_flag_attrs`."""

    html_params = staticmethod(html_params)

    def __call__(self, field: Any, **kwargs: Any) -> Markup:
        kwargs.setdefault("id", field.id)
        kwargs.setdefault("type", self.input_type)
        if "value" not in kwargs:
            kwargs["value"] = field._value()
        datalist = getattr(field, "_datalist", None)
        if datalist is not None and "list" not in kwargs:
            kwargs["list"] = datalist if isinstance(datalist, str) else datalist.id
        _flag_attrs(self.validation_attrs, field, kwargs, call=True)
        return Markup(f"<input {html_params(name=field.name, **kwargs)}>")  # noqa: S704  # escaped


class FastTextArea(TextArea):
    """A textarea written as :class:`~wtforms.widgets.TextArea` writes it (the suite compares
    them), with :func:`html_params`: WTForms' own calls its module's function, not a method."""

    def __call__(self, field: Any, **kwargs: Any) -> Markup:
        kwargs.setdefault("id", field.id)
        _flag_attrs(self.validation_attrs, field, kwargs, call=False)
        params = html_params(name=field.name, **kwargs)
        # The attributes and the text are escaped: the whole is safe HTML.
        return Markup(f"<textarea {params}>\r\n{escape(field._value())}</textarea>")  # noqa: S704


# Protocol names stay as they are; "None" (no encryption) is a word.
_SECURITY_LABELS: dict[str, Any] = {**SECURITY_LABELS, "none": lazy_gettext("None")}
SECURITY = [_Choice(key, _SECURITY_LABELS[key]) for key in SECURITY_CHOICES]
SERVER_FIELDS = ("smtp_host", "smtp_port", "smtp_security", "imap_host", "imap_port",
                 "imap_security")  # fmt: skip


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _single_line(form: Any, field: Any) -> None:
    """A display name goes into a From header: no CR, LF, NUL or other control characters."""
    value = field.data or ""
    if "\r" in value or "\n" in value:
        raise ValidationError(gettext("Line breaks are not allowed in a display name."))
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise ValidationError(gettext("Control characters are not allowed in a display name."))


def no_control(allow: str = "") -> Callable[[Any, Any], None]:
    """A validator refusing NUL, CR, LF and other control characters (those in ``allow``
    excepted: a multi-line field allows ``"\\r\\n\\t"``). Such text breaks headers and protocol
    lines, and PostgreSQL refuses NUL in any text column."""

    def check(form: Any, field: Any) -> None:
        value = field.data
        if isinstance(value, str) and control_chars(value, allow=allow):
            if "\n" in allow:
                raise ValidationError(gettext("Control characters are not allowed here."))
            raise ValidationError(
                gettext("Line breaks and control characters are not allowed here.")
            )

    return check


#: For every single-line text field.
SINGLE_LINE = no_control()
#: For multi-line fields: line breaks and tabs are text there.
MULTI_LINE = no_control("\r\n\t\u2028\u2029")


def host_name(form: Any, field: Any) -> None:
    """A server: a host name such as ``mail.example.com`` or an IP address (checked when the
    form is saved; the network guard judges the address again at every connection)."""
    value = field.data or ""
    if value and not control_chars(value) and not is_host(value):
        raise ValidationError(
            gettext("Enter a server name such as mail.example.com, or an IP address.")
        )


class PortField(IntegerField):
    """A port number: ASCII digits 1 .. 65535 (``int`` alone accepts "٣" and 5,000 digits)."""

    data: Any

    def process_formdata(self, valuelist: list[Any]) -> None:
        if not valuelist or valuelist[0] in ("", None):
            return
        self.data = parse_int(valuelist[0], 1, 65535)
        if self.data is None:
            raise ValueError(gettext("Enter a port number between 1 and 65535."))


def provider_title(provider: Provider) -> str:
    """A provider's name for people: real providers keep theirs; the catch-all for servers
    typed by hand is a description, in the page's language."""
    return gettext("Other (IMAP / SMTP)") if provider.key == "other" else provider.title


def ports_help(ports: tuple[int, ...] | None, usual: str) -> str:
    if ports is None:
        return usual
    return gettext("Allowed ports: %(ports)s.", ports=", ".join(str(p) for p in ports))


class ConnectForm(FlaskForm):
    """Manual (password) connection: the address, the login and both servers.

    Server names are judged by :func:`~flask_mailconnect.validation.settings_errors` (a host
    name or an IP literal) together with the other settings, as the Python API judges them.
    """

    email = EmailField(
        lazy_gettext("Email address"),
        [DataRequired(), Length(max=320), SINGLE_LINE],
        filters=[_strip],
    )
    # Choices are the providers the app offers (its catalogue), set per request.
    provider = SelectField(lazy_gettext("Provider"), choices=[], default="other")
    username = StringField(lazy_gettext("Login"), [Length(max=320), SINGLE_LINE], filters=[_strip])
    password = PasswordField(lazy_gettext("Password"), [Length(max=1000), SINGLE_LINE])
    smtp_host = StringField(
        lazy_gettext("SMTP server"), [Length(max=253), SINGLE_LINE], filters=[_strip]
    )
    smtp_port = PortField(lazy_gettext("Port"), [Optional()])
    smtp_security = SelectField(lazy_gettext("Security"), choices=SECURITY, default="starttls")
    receives = BooleanField(lazy_gettext("Receive mail (IMAP)"), default=True)
    imap_host = StringField(
        lazy_gettext("IMAP server"), [Length(max=253), SINGLE_LINE], filters=[_strip]
    )
    imap_port = PortField(lazy_gettext("Port"), [Optional()])
    imap_security = SelectField(lazy_gettext("Security"), choices=SECURITY, default="ssl")
    display_name = StringField(
        lazy_gettext("Display name"), [Length(max=200), _single_line], filters=[_strip]
    )

    # Three submit buttons; which one was pressed decides what the (no-JS) POST does.
    continue_ = SubmitField(lazy_gettext("Continue"))
    test = SubmitField(lazy_gettext("Test connection"))
    save = SubmitField(lazy_gettext("Save account"))

    def __init__(self, *args: Any, ports: dict[str, tuple[int, ...] | None], **kw: Any):
        super().__init__(*args, **kw)
        self.presets = {p.key: p for p in current_catalog().offered()}
        self.provider.choices = [_Choice(p.key, provider_title(p)) for p in self.presets.values()]
        self.ports = ports
        usual = gettext("Usually 587 (STARTTLS) or 465 (SSL/TLS).")
        self.smtp_port.description = ports_help(ports["smtp"], usual)
        usual = gettext("Usually 993 (SSL/TLS) or 143 (STARTTLS).")
        self.imap_port.description = ports_help(ports["imap"], usual)

    @property
    def action(self) -> str:
        """Which button submitted the form: ``continue``, ``test`` or ``save``."""
        if self.continue_ is not None and self.continue_.data:
            return "continue"
        return "test" if self.test.data else "save"

    def prefill(self) -> None:
        """Fill the login and servers from the preset for the address (no-JS "Continue").

        Only called when those fields were not shown yet, so nothing the user typed is lost.
        """
        email = self.email.data or ""
        # The catalogue by domain (admin rows first), then the domain's MX records.
        preset = detect_provider(email)[0]
        self.provider.data = preset.key
        self.username.data = preset.login_for(email)
        for proto, fallback in (("smtp", (587, "starttls")), ("imap", (993, "ssl"))):
            server = getattr(preset, proto)
            host, (port, security) = ("", fallback) if server is None else (
                server.host, (server.port, server.security))  # fmt: skip
            getattr(self, f"{proto}_host").data = host
            getattr(self, f"{proto}_port").data = port
            getattr(self, f"{proto}_security").data = security

    def preset(self) -> Provider:
        return self.presets.get(self.provider.data or "", self.presets["other"])

    def check_email(self) -> bool:
        """Validate only the address (the "Continue" step)."""
        if not self.email.validate(self):
            return False
        try:
            normalize_email(self.email.data or "")
        except ValueError as exc:
            self.email.errors = [str(exc)]
            return False
        return True

    def to_settings(self) -> ServerSettings:
        receives = bool(self.receives.data)
        username = self.username.data or self.preset().login_for(self.email.data or "")
        return ServerSettings(
            email=self.email.data or "",
            username=username,
            password=self.password.data or "",
            smtp_host=self.smtp_host.data or "",
            smtp_port=self.smtp_port.data,
            smtp_security=self.smtp_security.data,
            imap_host=(self.imap_host.data or "") if receives else None,
            imap_port=self.imap_port.data if receives else None,
            imap_security=self.imap_security.data if receives else None,
            provider=self.provider.data,
        )

    def validate(self, extra_validators: Any = None) -> bool:
        ok = super().validate(extra_validators)
        if not self.receives.data:  # a send-only account ignores whatever the IMAP fields hold
            for name in ("imap_host", "imap_port", "imap_security"):
                self[name].errors = []
            ok = not any(f.errors for f in self)
        if not ok:
            return False
        # The same checks the Python API runs, so the page and connect_manual() agree.
        errors = settings_errors(
            self.to_settings(), smtp_ports=self.ports["smtp"], imap_ports=self.ports["imap"]
        )
        self.add_errors(errors)
        return not errors

    def add_errors(self, errors: dict[str, str]) -> None:
        for name, message in errors.items():
            field = self._fields.get(name) or self.email
            field.errors = [*field.errors, message]


class ReconnectForm(ConnectForm):
    """Sign an existing account in again: same servers form; the address cannot change."""

    display_name = None
    continue_ = None
    save = SubmitField(lazy_gettext("Save and reconnect"))


class AccountSettingsForm(FlaskForm):
    """Personal settings of one account (never credentials)."""

    display_name = StringField(
        lazy_gettext("Display name"),
        [Length(max=200), _single_line],
        filters=[_strip],
        widget=FastTextInput(),
    )
    signature_html = TextAreaField(
        lazy_gettext("Signature"), [Length(max=20_000), MULTI_LINE], widget=FastTextArea()
    )
    # Health alerts (not new mail: NewMailSettingsForm).
    notify_email = BooleanField(lazy_gettext("Alert me when this account needs attention"))
    mute_mobile = BooleanField(lazy_gettext("Do not send these alerts to my phone"))
    is_default = BooleanField(lazy_gettext("Use as default account"))
    submit = SubmitField(lazy_gettext("Save settings"))

    def add_errors(self, errors: dict[str, str]) -> None:
        """Errors from the Python API (InvalidSettings) on their fields."""
        for name, message in errors.items():
            field = self._fields.get(name) or self.display_name
            field.errors = [*field.errors, message]

    def changes(self) -> dict[str, Any]:
        return {
            "display_name": self.display_name.data or "",
            "signature_html": self.signature_html.data or "",
            "notify_email": bool(self.notify_email.data),
            "notify_mobile": not self.mute_mobile.data,
            "is_default": bool(self.is_default.data),
        }


class NewMailSettingsForm(FlaskForm):
    """New-mail notifications of one account (the ``new_mail`` signal carries them); apart
    from the health alerts of :class:`AccountSettingsForm`."""

    notify_new_mail = BooleanField(lazy_gettext("Notify me about new mail"))
    mute_new_mail_mobile = BooleanField(lazy_gettext("Do not notify on my phone"))
    submit_notifications = SubmitField(lazy_gettext("Save notifications"))

    def changes(self) -> dict[str, Any]:
        return {
            "notify_new_mail": bool(self.notify_new_mail.data),
            "notify_new_mail_mobile": not self.mute_new_mail_mobile.data,
        }


class ConfirmForm(FlaskForm):
    """A button and a CSRF token: the confirmation of a destructive action."""

    submit = SubmitField(lazy_gettext("Disconnect"))
