"""The example app's own tables: people who can sign in, and projects with members. Email
accounts live in the extension's ``mailconnect_*`` tables, keyed by ``("user", str(user.id))`` or
``("project", str(project.id))``, with no foreign key into these."""

from __future__ import annotations

from flask_login import UserMixin
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, selectinload
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


class Project(db.Model):  # type: ignore[name-defined,misc]
    """A CRM project; its mail goes out through the project's email account (scope "project")."""

    __tablename__ = "demo_project"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    memberships: Mapped[list[Membership]] = relationship(
        back_populates="project", cascade="all, delete-orphan"
    )

    def role_of(self, user: User) -> str | None:
        """``"manager"``, ``"member"`` or ``None`` (reads the loaded memberships: no query)."""
        for m in self.memberships:
            if m.user_id == user.id:
                return m.role
        return None


class Membership(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "demo_membership"

    project_id: Mapped[int] = mapped_column(ForeignKey("demo_project.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("demo_user.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16), default="member")  # "member" | "manager"

    project: Mapped[Project] = relationship(back_populates="memberships")


#: The largest primary key every database of the example holds: its INTEGER ids are 32-bit
#: signed on PostgreSQL and MariaDB (SQLite's hold 64 bits).
MAX_ID = 2**31 - 1


def parse_id(value: object) -> int | None:
    """An id from a URL, the session or the extension (always a string there): ASCII digits
    1 .. ``MAX_ID``, else ``None``. ``str.isdigit`` is not enough: it is true for "²" (which
    ``int`` refuses) and "٣" (which ``int`` reads as 3), and a huge number overflows SQLite."""
    text = str(value)
    if not (text.isascii() and text.isdigit()) or len(text) > 10:
        return None
    number = int(text)
    return number if 1 <= number <= MAX_ID else None


def load_project(project_id: str) -> Project | None:
    ident = parse_id(project_id)
    if ident is None:
        return None
    query = db.select(Project).options(selectinload(Project.memberships))
    return db.session.scalars(query.where(Project.id == ident)).first()


def all_projects() -> list[Project]:
    """Every project with its memberships loaded (two queries, however many projects)."""
    query = db.select(Project).options(selectinload(Project.memberships)).order_by(Project.name)
    return list(db.session.scalars(query))


#: The demo people created at start-up: (email, name, password, is_admin).
DEMO_USERS = (
    ("alice@demo.test", "Alice Martin", "alice", False),
    ("admin@demo.test", "Ada Admin", "admin", True),
    ("bob@demo.test", "Bob Stone", "bob", False),
)

#: Demo projects: name -> {email: role}.
DEMO_PROJECTS = {
    "Apollo launch": {"bob@demo.test": "manager", "alice@demo.test": "member"},
    "Website redesign": {"alice@demo.test": "manager", "bob@demo.test": "member"},
    "Q3 hiring": {"bob@demo.test": "member"},
}


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
    create_demo_projects()


def create_demo_projects() -> None:
    """Add the demo projects and memberships that do not exist yet."""
    users = {u.email: u for u in db.session.scalars(db.select(User))}
    existing = set(db.session.scalars(db.select(Project.name)))
    for name, members in DEMO_PROJECTS.items():
        if name in existing:
            continue
        project = Project(name=name)
        for email, role in members.items():
            if email in users:
                project.memberships.append(Membership(user_id=users[email].id, role=role))
        db.session.add(project)
    db.session.commit()
