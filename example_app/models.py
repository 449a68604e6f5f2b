"""The example app's own tables: people who can sign in. Email accounts live in the extension's
``mailconnect_*`` tables, keyed by ``("user", str(user.id))``, with no foreign key into these."""

from __future__ import annotations

from flask_login import UserMixin
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class User(db.Model, UserMixin):  # type: ignore[name-defined,misc]
    __tablename__ = "demo_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(default=False)

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)


#: The demo people created at start-up: (email, name, password, is_admin).
DEMO_USERS = (
    ("alice@demo.test", "Alice Martin", "alice", False),
    ("admin@demo.test", "Ada Admin", "admin", True),
)


def create_demo_users() -> None:
    """Add the demo users that do not exist yet (safe to run at every start)."""
    existing = set(db.session.scalars(db.select(User.email)))
    for email, name, password, is_admin in DEMO_USERS:
        if email in existing:
            continue
        user = User(email=email, name=name, is_admin=is_admin)
        user.set_password(password)
        db.session.add(user)
    db.session.commit()
