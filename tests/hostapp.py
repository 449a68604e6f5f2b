"""A minimal host application for the tests: Flask-Login users, its own layout, our extension."""

from __future__ import annotations

from typing import Any

from flask import Flask, render_template_string
from flask_login import LoginManager, UserMixin, login_user
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from flask_mailconnect import MailConnect
from flask_mailconnect import metadata as mailconnect_metadata

TEST_KEY = "5Lq1m0wQyqjAR1-3uQ2mH1q3ZBxB5i1aX5p1Z9xW0aM="


class HostBase(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=HostBase)


class User(db.Model, UserMixin):  # type: ignore[name-defined,misc]
    __tablename__ = "host_user"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(200))
    is_admin: Mapped[bool] = mapped_column(default=False)


LAYOUT = """<!doctype html><html><head><title>{% block title %}{% endblock %} - Host</title>
{% block head %}{% endblock %}</head><body><nav id="host-nav">Host navigation</nav>
<main>{% block content %}{% endblock %}</main></body></html>"""


def create_app(
    database_url: str = "sqlite://", *, reset: bool = True, **config: Any
) -> tuple[Flask, MailConnect]:
    """The host app on ``database_url``. ``reset=False`` (another process joining a database a
    first app already set up) leaves the tables and rows as they are."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="test-secret",
        SQLALCHEMY_DATABASE_URI=database_url,
        MAILCONNECT_ENCRYPTION_KEYS=[TEST_KEY],
        MAILCONNECT_BASE_TEMPLATE="host_layout.html",
        TESTING=True,
    )
    if database_url == "sqlite://":
        from sqlalchemy.pool import StaticPool

        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
            "poolclass": StaticPool,
            "connect_args": {"check_same_thread": False},
        }
    app.config.update(config)
    from jinja2 import ChoiceLoader, DictLoader

    app.jinja_loader = ChoiceLoader(  # type: ignore[assignment]
        [DictLoader({"host_layout.html": LAYOUT}), app.jinja_loader]  # type: ignore[list-item]
    )
    db.init_app(app)
    login = LoginManager(app)

    @login.user_loader
    def load(user_id: str) -> User | None:
        return db.session.get(User, int(user_id))

    @app.post("/test-login/<int:user_id>")
    def test_login(user_id: int) -> str:
        login_user(db.session.get(User, user_id))
        return "ok"

    @app.get("/")
    def home() -> str:
        return render_template_string("home")

    mailconnect = MailConnect(app, db=db)
    if not reset:
        return app, mailconnect
    with app.app_context():
        if database_url != "sqlite://":  # shared server databases: start from empty tables
            mailconnect_metadata.drop_all(db.engine)
            db.drop_all()
        db.create_all()
        mailconnect.create_all()
        db.session.add_all(
            [
                User(id=1, email="alice@example.test"),
                User(id=2, email="bob@example.test"),
                User(id=3, email="admin@example.test", is_admin=True),
            ]
        )
        db.session.commit()
    return app, mailconnect
