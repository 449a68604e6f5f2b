"""Flask-WTF forms of the example app (CSRF protected like every form in a real host)."""

from __future__ import annotations

import unicodedata
from typing import Any

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length, ValidationError


def _one_line(form: Any, field: Any) -> None:
    """No NUL, line breaks or other control characters (PostgreSQL refuses NUL in a query)."""
    if any(unicodedata.category(ch) == "Cc" for ch in field.data or ""):
        raise ValidationError("Control characters are not allowed here.")


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=320), _one_line])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200), _one_line])


class LogoutForm(FlaskForm):
    """No fields: only the CSRF token, so signing out is a protected POST."""
