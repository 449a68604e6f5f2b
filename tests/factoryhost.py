"""A blog-shaped host with an app factory, Flask-Login and Flask-SQLAlchemy, whose users have no
``is_admin`` (a ``role`` column instead), with Flask-MailConnect added the way the README says.

Lines between ``# mailconnect: begin`` / ``# mailconnect: end`` and lines ending in
``# mailconnect: line`` are the host's lines for the extension (tests/test_first_hour.py
counts them). The blog's own schema is managed by Flask-Migrate; its one changed line,
``migrate.init_app(app, db, include_object=include_object)``, keeps our tables out of the blog's
``flask db migrate`` (tests/test_migrations.py runs the real ``flask db`` commands on it).
"""

from __future__ import annotations

import os
from typing import Any

from flask import Blueprint, Flask, render_template_string
from flask_login import LoginManager, UserMixin, login_user
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from jinja2 import DictLoader
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from flask_mailconnect import MailConnect, include_object  # mailconnect: line

db = SQLAlchemy()
login_manager = LoginManager()
migrate = Migrate()
mailconnect = MailConnect()  # mailconnect: line


class User(UserMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "blog_user"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(16), default="author")


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    return db.session.get(User, int(user_id))


# mailconnect: begin
@mailconnect.admin_checker
def is_admin(user):
    return user.role == "admin"


# mailconnect: end

LAYOUT = """<!doctype html><html lang="en"><head><title>{% block title %}{% endblock %} - Blog
</title></head><body><header class="blog-header">The Blog</header>
<main>{% block content %}{% endblock %}</main></body></html>"""

main = Blueprint("main", __name__)


@main.get("/")
def index() -> str:
    return render_template_string("{% extends 'base.html' %}{% block content %}Hi{% endblock %}")


@main.post("/login/<int:user_id>")  # the blog's real login form, shortened for the tests
def login(user_id: int) -> str:
    login_user(db.session.get(User, user_id))
    return "ok"


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    database = os.environ.get("BLOG_DATABASE_URL", "sqlite://")
    app.config.update(SECRET_KEY="dev", SQLALCHEMY_DATABASE_URI=database)
    app.config.update(config or {})
    app.config["MAILCONNECT_ENCRYPTION_KEYS"] = [os.environ["MAILCONNECT_KEY"]]  # mailconnect: line
    app.config["MAILCONNECT_BASE_TEMPLATE"] = "base.html"  # mailconnect: line
    app.jinja_loader = DictLoader({"base.html": LAYOUT})
    db.init_app(app)
    migrate.init_app(app, db, include_object=include_object)  # mailconnect: line
    login_manager.init_app(app)
    mailconnect.init_app(app, db=db)  # mailconnect: line
    app.register_blueprint(main)
    return app
