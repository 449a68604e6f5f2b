"""The example app's own pages: home, projects, sign in, sign out."""

from __future__ import annotations

import unicodedata
from typing import Any
from urllib.parse import urljoin, urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from flask_mailconnect import MailConnect

from .forms import LoginForm, LogoutForm
from .models import User, all_projects, db

bp = Blueprint("demo", __name__)


def _safe_next(target: str | None) -> str | None:
    """Only same-site paths: ``/email/`` yes; ``//evil.test``, ``/\\evil.test`` (browsers read
    ``/\\`` like ``//``), ``https://evil.test`` or ``javascript:...`` no."""
    if not target:
        return None
    if "\\" in target or any(unicodedata.category(ch) == "Cc" for ch in target):
        return None
    if not target.startswith("/") or target.startswith("//"):
        return None
    host = urlsplit(request.host_url)
    resolved = urlsplit(urljoin(request.host_url, target))
    if (resolved.scheme, resolved.netloc) != (host.scheme, host.netloc):
        return None
    return target


@bp.get("/")
@login_required
def home() -> Any:
    mailconnect = MailConnect.of()
    account = mailconnect.default_account(("user", current_user.id))
    return render_template(
        "demo/home.html",
        account=account,
        sandbox=current_app.config.get("EXAMPLE_SANDBOX"),
    )


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if current_user.is_authenticated:
        return redirect(url_for("demo.home"))
    form = LoginForm()
    if form.validate_on_submit():
        email = (form.email.data or "").strip().lower()
        user = db.session.scalars(db.select(User).where(User.email == email)).first()
        if user is not None and user.check_password(form.password.data or ""):
            login_user(user)
            flash(f"Welcome, {user.name or user.email}.", "success")
            return redirect(_safe_next(request.args.get("next")) or url_for("demo.home"))
        flash("Wrong email or password.", "error")
    status = 400 if form.is_submitted() else 200
    return render_template("demo/login.html", form=form), status


@bp.post("/logout")
def logout() -> Any:
    if LogoutForm().validate_on_submit():
        logout_user()
        flash("You are signed out.", "success")
    else:
        flash("Your session expired; please try again.", "error")
    return redirect(url_for("demo.login"))


@bp.get("/projects")
@login_required
def projects() -> Any:
    """The signed-in person's projects (every project for an admin), with each one's email
    account: the project list and all their accounts in three queries."""
    mailconnect = MailConnect.of()
    rows = [
        (p, p.role_of(current_user))
        for p in all_projects()
        if current_user.is_admin or p.role_of(current_user) is not None
    ]
    found = mailconnect.accounts_for_owners([("project", p.id) for p, _ in rows])
    accounts = {p.id: found.get(("project", str(p.id)), []) for p, _ in rows}
    return render_template(
        "demo/projects.html",
        rows=rows,
        accounts=accounts,
        can_configure=current_user.is_admin or any(role == "manager" for _, role in rows),
    )
