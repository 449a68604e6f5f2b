"""The test host with scopes: users 4 (carol, member of project 7) and 5 (dave, its manager), and
a ``project`` scope over an in-memory catalogue (so query counts measure only our queries)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import Flask

from flask_mailconnect import MailAccount, MailConnect
from tests.hostapp import User, db

ALICE, BOB, ADMIN, CAROL, DAVE = 1, 2, 3, 4, 5


@dataclass
class Project:
    id: int
    name: str
    members: set[int] = field(default_factory=set)
    managers: set[int] = field(default_factory=set)


def setup_scopes(app: Flask, ext: MailConnect, count: int = 2) -> dict[str, Project]:
    """Register ``project`` with projects 7 (Apollo: carol member, dave manager), 8 (Zephyr), and
    more up to ``count``."""
    projects = {"7": Project(7, "Apollo", {CAROL}, {DAVE}), "8": Project(8, "Zephyr")}
    for n in range(len(projects), count):
        projects[str(100 + n)] = Project(100 + n, f"Project {n:04d}", {CAROL}, {DAVE})

    @app.get("/test-csrf")
    def test_csrf() -> str:
        from flask_wtf.csrf import generate_csrf

        return generate_csrf()

    if hasattr(ext, "user_getter"):  # the admin pages find people through it
        ext.user_getter(lambda user_id: db.session.get(User, int(user_id)))

    ext.register_scope(
        "project",
        load=projects.get,
        label=lambda p: p.name,
        can_manage=lambda user, p: user.id in p.managers,
        can_use=lambda user, p: user.id in p.members or user.id in p.managers,
        list=lambda: sorted(projects.values(), key=lambda p: p.name),
        title="Project",
    )
    with app.app_context():
        db.session.add_all(
            [User(id=CAROL, email="carol@example.test"), User(id=DAVE, email="dave@example.test")]
        )
        db.session.commit()
    return projects


def add_account(app: Flask, owner: tuple[str, str], email: str, **extra: Any) -> int:
    """An account stored directly (no network)."""
    with app.app_context():
        account = MailAccount(
            owner_kind=owner[0], owner_id=owner[1], provider="other", email=email,
            username=email, password="stored-secret", smtp_host="smtp.example.test",
            smtp_port=587, smtp_security="starttls", is_default=True, **extra,
        )  # fmt: skip
        db.session.add(account)
        db.session.commit()
        return account.id
