"""Flask's own tutorial app ("Flaskr": plain sqlite3, its own session login, users as
``sqlite3.Row``, no Flask-Login), condensed into one module, with Flask-MailConnect added the way
the README says.

Everything between ``# mailconnect: begin`` and ``# mailconnect: end``, and each line ending in
``# mailconnect: line``, is what the host wrote for the extension; tests/test_first_hour.py
counts those lines. ``with_hooks=False`` builds the
same host without the user hooks (what a newcomer has before reading that part of the README).
"""

from __future__ import annotations

import functools
import os
import sqlite3
from typing import Any

import click
from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_sqlalchemy import SQLAlchemy  # mailconnect: line
from jinja2 import DictLoader
from werkzeug.security import check_password_hash, generate_password_hash

from flask_mailconnect import MailConnect  # mailconnect: line

# mailconnect: begin
db = SQLAlchemy()
mailconnect = MailConnect()
# mailconnect: end

SCHEMA = """
DROP TABLE IF EXISTS user;
DROP TABLE IF EXISTS post;
CREATE TABLE user (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  username TEXT UNIQUE NOT NULL,
  password TEXT NOT NULL
);
CREATE TABLE post (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  author_id INTEGER NOT NULL,
  created TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  title TEXT NOT NULL,
  body TEXT NOT NULL,
  FOREIGN KEY (author_id) REFERENCES user (id)
);
"""

# The tutorial's base.html, as written there (its nav, header and h1 included).
TEMPLATES = {
    "base.html": """<!doctype html>
<title>{% block title %}{% endblock %} - Flaskr</title>
<nav>
  <h1>Flaskr</h1>
  <ul>
    {% if g.user %}
      <li><span>{{ g.user['username'] }}</span>
      <li><a href="{{ url_for('auth.logout') }}">Log Out</a>
    {% else %}
      <li><a href="{{ url_for('auth.register') }}">Register</a>
      <li><a href="{{ url_for('auth.login') }}">Log In</a>
    {% endif %}
  </ul>
</nav>
<section class="content">
  <header>
    {% block header %}{% endblock %}
  </header>
  {% for message in get_flashed_messages() %}
    <div class="flash">{{ message }}</div>
  {% endfor %}
  {% block content %}{% endblock %}
</section>
""",
    "auth/login.html": """{% extends 'base.html' %}
{% block header %}<h1>{% block title %}Log In{% endblock %}</h1>{% endblock %}
{% block content %}
  <form method="post">
    <label for="username">Username</label><input name="username" id="username" required>
    <label for="password">Password</label>
    <input type="password" name="password" id="password" required>
    <input type="submit" value="Log In">
  </form>
{% endblock %}
""",
    "blog/index.html": """{% extends 'base.html' %}
{% block header %}<h1>{% block title %}Posts{% endblock %}</h1>{% endblock %}
{% block content %}{% endblock %}
""",
}


# -- flaskr/db.py ------------------------------------------------------------------------------


def get_db() -> sqlite3.Connection:
    if "db" not in g:
        g.db = sqlite3.connect(current_app.config["DATABASE"], detect_types=sqlite3.PARSE_DECLTYPES)
        g.db.row_factory = sqlite3.Row
    return g.db


def close_db(e: BaseException | None = None) -> None:
    found = g.pop("db", None)
    if found is not None:
        found.close()


def init_db() -> None:
    get_db().executescript(SCHEMA)


@click.command("init-db")
def init_db_command() -> None:
    """Clear the existing data and create new tables."""
    init_db()
    click.echo("Initialized the database.")


# -- flaskr/auth.py ----------------------------------------------------------------------------

bp = Blueprint("auth", __name__, url_prefix="/auth")


@bp.route("/register", methods=("GET", "POST"))
def register() -> Any:
    if request.method == "POST":
        database = get_db()
        database.execute(
            "INSERT INTO user (username, password) VALUES (?, ?)",
            (request.form["username"], generate_password_hash(request.form["password"])),
        )
        database.commit()
        return redirect(url_for("auth.login"))
    return render_template("auth/login.html")


@bp.route("/login", methods=("GET", "POST"))
def login() -> Any:
    if request.method == "POST":
        user = (
            get_db()
            .execute("SELECT * FROM user WHERE username = ?", (request.form["username"],))
            .fetchone()
        )
        if user is None or not check_password_hash(user["password"], request.form["password"]):
            flash("Incorrect username or password.")
        else:
            session.clear()
            session["user_id"] = user["id"]
            return redirect(url_for("index"))
    return render_template("auth/login.html")


@bp.before_app_request
def load_logged_in_user() -> None:
    user_id = session.get("user_id")
    g.user = (
        None
        if user_id is None
        else get_db().execute("SELECT * FROM user WHERE id = ?", (user_id,)).fetchone()
    )


@bp.route("/logout")
def logout() -> Any:
    session.clear()
    return redirect(url_for("index"))


def login_required(view: Any) -> Any:
    @functools.wraps(view)
    def wrapped_view(**kwargs: Any) -> Any:
        if g.user is None:
            return redirect(url_for("auth.login"))
        return view(**kwargs)

    return wrapped_view


# -- flaskr/__init__.py ------------------------------------------------------------------------


def create_app(test_config: dict[str, Any] | None = None, *, with_hooks: bool = True) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(
        SECRET_KEY="dev",
        DATABASE=os.path.join(app.instance_path, "flaskr.sqlite"),
    )
    if test_config is not None:
        app.config.from_mapping(test_config)
    app.jinja_loader = DictLoader(TEMPLATES)  # the tutorial keeps these in flaskr/templates/
    app.teardown_appcontext(close_db)
    app.cli.add_command(init_db_command)
    app.register_blueprint(bp)

    @app.route("/")
    def index() -> Any:
        return render_template("blog/index.html")

    # mailconnect: begin
    app.config.setdefault("SQLALCHEMY_DATABASE_URI", "sqlite:///" + app.config["DATABASE"])
    app.config["MAILCONNECT_ENCRYPTION_KEYS"] = [os.environ["MAILCONNECT_KEY"]]
    app.config["MAILCONNECT_BASE_TEMPLATE"] = "base.html"
    db.init_app(app)
    # mailconnect: end
    # A newcomer's state before the README's hooks: the same host, no user hooks.
    (mailconnect if with_hooks else MailConnect()).init_app(app, db=db)  # mailconnect: line
    return app


# mailconnect: begin
# The README's "without Flask-Login" lines (decorators return the function, so each hook is
# one call; the decorator form works the same).
current_user = mailconnect.user_loader(lambda: g.user)  # None when nobody is signed in
user_id = mailconnect.user_id(lambda user: str(user["id"]))
user_label = mailconnect.user_label(lambda user: user["username"])
# mailconnect: end
