"""The example host app: Flask-Login users, its own layout, Flask-MailConnect mounted in it.

Run it with ``make demo`` (``python -m example_app``), which also starts the demo mail sandbox.
``create_app(config)`` builds the app alone; ``config`` is applied last, so tests and the sandbox
can override anything.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from flask import Flask
from flask_login import LoginManager

from flask_mailconnect import MailConnect

from . import notifications
from .forms import LogoutForm
from .models import User, all_projects, create_demo_users, db, load_project, parse_id

DEFAULT_INSTANCE_PATH = Path(__file__).resolve().parent / "instance"


def _persisted_secret(instance: Path, name: str, make: Any) -> str:
    """A value created once and kept in the instance folder (readable by its owner only)."""
    path = instance / name
    if path.exists():
        return path.read_text().strip()
    value = str(make())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


def _encryption_keys(instance: Path) -> list[str]:
    """``MAILCONNECT_ENCRYPTION_KEYS`` from the environment (comma separated, newest first).

    DEMO ONLY: without the variable, a key is generated and stored next to the database in the
    instance folder. A production app must set the keys from its secret store, never keep them
    beside the data they protect, and never derive them from SECRET_KEY.
    """
    env = os.environ.get("MAILCONNECT_ENCRYPTION_KEYS", "")
    keys = [k.strip() for k in env.split(",") if k.strip()]
    if keys:
        return keys
    return [
        _persisted_secret(instance, "mailconnect-key.txt", lambda: Fernet.generate_key().decode())
    ]


def _demo_oauth_provider(sandbox: dict[str, Any]) -> dict[str, Any]:
    """The "Connect with Demo provider" entry: a generic OAuth 2.0 / OpenID Connect provider
    (the sandbox's local OAuth server), sending and receiving through the sandbox's servers."""
    oauth = sandbox.get("oauth")
    if not oauth:
        return {}
    return {
        "demo": {
            "name": "Demo provider",
            "auth": "oauth2",
            **oauth,
            # Like Google: a refresh token only with offline access and a fresh consent.
            "authorize_params": {"access_type": "offline", "prompt": "consent"},
            "smtp": {
                "host": sandbox["smtp_host"],
                "port": sandbox["smtp_port"],
                "security": sandbox["smtp_security"],
            },
            "imap": {
                "host": sandbox["imap_host"],
                "port": sandbox["imap_port"],
                "security": sandbox["imap_security"],
            },
        }
    }


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the example app. ``config`` overrides every default; ``INSTANCE_PATH`` in it moves
    the instance folder (database, generated keys, sandbox certificates)."""
    config = dict(config or {})
    instance = Path(config.pop("INSTANCE_PATH", None) or DEFAULT_INSTANCE_PATH)
    instance.mkdir(parents=True, exist_ok=True)
    app = Flask(__name__, instance_path=str(instance))

    app.config.update(
        SQLALCHEMY_DATABASE_URI=os.environ.get("DATABASE_URL")
        or f"sqlite:///{instance / 'example.db'}",
        MAILCONNECT_BASE_TEMPLATE="demo/layout.html",
    )
    # Secrets: only generated when neither the overrides nor the environment provide them.
    if "SECRET_KEY" not in config:
        app.config["SECRET_KEY"] = os.environ.get("SECRET_KEY") or _persisted_secret(
            instance, "secret-key.txt", lambda: secrets.token_urlsafe(32)
        )
    if "MAILCONNECT_ENCRYPTION_KEYS" not in config:
        app.config["MAILCONNECT_ENCRYPTION_KEYS"] = _encryption_keys(instance)
    sandbox = config.get("EXAMPLE_SANDBOX")
    if sandbox:
        # A host-declared provider (MAILCONNECT_PROVIDERS, merged into the provider
        # catalogue): the connect page fills in the sandbox's servers when someone types the
        # demo address.
        config.setdefault(
            "MAILCONNECT_PROVIDERS",
            {
                "sandbox": {
                    "name": "Demo sandbox",
                    "auth": "password",
                    "smtp": {
                        "host": sandbox["smtp_host"],
                        "port": sandbox["smtp_port"],
                        "security": sandbox["smtp_security"],
                    },
                    "imap": {
                        "host": sandbox["imap_host"],
                        "port": sandbox["imap_port"],
                        "security": sandbox["imap_security"],
                    },
                    "domains": [sandbox["address"].rpartition("@")[2]],
                },
                **_demo_oauth_provider(sandbox),
            },
        )
    app.config.update(config)

    db.init_app(app)
    login_manager = LoginManager(app)
    login_manager.login_view = "demo.login"
    login_manager.login_message_category = "info"

    @login_manager.user_loader
    def load_user(user_id: str) -> User | None:
        ident = parse_id(user_id)
        return db.session.get(User, ident) if ident is not None else None

    mailconnect = MailConnect()
    mailconnect.init_app(app, db=db)

    @mailconnect.admin_checker
    def is_admin(user: User) -> bool:
        return bool(user.is_admin)

    # Admin pages: find people and open their email accounts.
    @mailconnect.user_search
    def search_users(query: str, limit: int) -> list[User]:
        # The extension passes at most 200 characters; a host keeps its own bound anyway
        # (SQLite refuses LIKE patterns over 50,000 bytes) and escapes the wildcards.
        text = query.strip().lower()[:200]
        text = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{text}%"
        name, email = db.func.lower(User.name), db.func.lower(User.email)
        found = db.select(User).where(
            db.or_(email.like(pattern, escape="\\"), name.like(pattern, escape="\\"))
        )
        return list(db.session.scalars(found.order_by(User.name).limit(limit)))

    @mailconnect.user_getter
    def get_user(user_id: str) -> User | None:
        ident = parse_id(user_id)
        return db.session.get(User, ident) if ident is not None else None

    # The admin lists name a person per row: load everyone on a page in one query.
    @mailconnect.users_getter
    def get_users(user_ids: list[str]) -> dict[str, User]:
        wanted = [n for n in map(parse_id, user_ids) if n is not None]
        found = db.session.scalars(db.select(User).where(User.id.in_(wanted)))
        return {str(user.id): user for user in found}

    # Projects own email accounts too: managers connect them, members send from them.
    mailconnect.register_scope(
        "project",
        load=load_project,
        label=lambda project: project.name,
        can_manage=lambda user, project: project.role_of(user) == "manager",
        can_use=lambda user, project: project.role_of(user) is not None,
        list=all_projects,
        title="Project",
    )

    from .views import bp

    app.register_blueprint(bp)
    notifications.install(app)  # new_mail -> pop-ups with author and subject

    @app.context_processor
    def layout_context() -> dict[str, Any]:
        return {"logout_form": LogoutForm(), "reconnect_banner": reconnect_banner}

    def reconnect_banner() -> list[dict[str, Any]]:
        """The signed-in user's accounts that need signing in again (the layout's banner)."""
        from flask_login import current_user
        from flask_wtf.csrf import generate_csrf

        from flask_mailconnect import AccountStatus

        if not current_user.is_authenticated:
            return []
        broken = [
            a
            for a in mailconnect.accounts_for(("user", current_user.get_id()))
            if a.status == AccountStatus.NEEDS_RECONNECT
        ]
        return [
            {
                "account": a,
                "oauth_provider": mailconnect.provider_for(a).key
                if a.auth_method == "oauth2"
                else None,
                "csrf": generate_csrf(),
            }
            for a in broken
        ]

    with app.app_context():
        db.create_all()
        mailconnect.create_all()
        create_demo_users()
    return app


__all__ = ["create_app"]
