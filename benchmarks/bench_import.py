"""``import flask_mailconnect``: what it adds to a host's own Flask stack.

Each run is a fresh interpreter that imports Flask, Flask-SQLAlchemy, Flask-WTF and Flask-Login
(the host's stack, timed on its own as the baseline) and then ``flask_mailconnect``, timed inside
the process (interpreter start-up left out). Runs alternate between "stack only" and "stack +
flask_mailconnect". The goal is an absolute budget of 80 ms added: the ratio printed is the added
time over that budget. The note names the heaviest packages the import still pulls in, from
``python -X importtime``.

Three rows: ``import flask_mailconnect`` alone (the package's public names load on first use,
PEP 562); ``from flask_mailconnect import MailConnect`` (the extension and its models; the
views, forms and use-cases load on their first request or call); and that import plus
``MailConnect(app, db=db)`` on a minimal app (SQLite in memory, an encryption key set),
which is what a host's app factory pays at start-up. The third row keeps work moved from the
import into ``init_app`` in the figure: only work deferred past start-up (to a first request
or a first call) leaves it. Its baseline is the host stack's import plus the host's own
``Flask()`` and ``SQLAlchemy(app)``. Heavy third-party packages (Authlib and joserfc,
dnspython, publicsuffixlist, cryptography) load where they are first used, so no row includes
them (``init_app`` checks the keys' format without cryptography).

Bytecode is compiled first (:func:`_compile`), as ``pip install`` does for a wheel: with
``PYTHONDONTWRITEBYTECODE`` set (as on CI machines) an editable checkout would otherwise compile
every module from source on each run, a cost no installed host pays (about 40% of the figure).
"""

from __future__ import annotations

import compileall
import statistics
import subprocess
import sys
from pathlib import Path

from benchmarks.table import Row, measured, samples

RUNS = 7
BUDGET_MS = 80.0
HOST_STACK = "import flask, flask_sqlalchemy, flask_wtf, flask_login"
#: The host's own minimal app, part of the baseline of the ``init_app`` row. The key is made
#: per run (an encryption key set is the configured case: ``init_app`` checks it).
HOST_APP = f"""{HOST_STACK}
import base64, os
app = flask.Flask("host")
app.config.update(
    SECRET_KEY="bench", SQLALCHEMY_DATABASE_URI="sqlite://",
    MAILCONNECT_ENCRYPTION_KEYS=[base64.urlsafe_b64encode(os.urandom(32)).decode()],
)
db = flask_sqlalchemy.SQLAlchemy(app)"""

_TIMED = """
import time
start = time.perf_counter()
{host}
host = time.perf_counter()
{ours}
end = time.perf_counter()
print(host - start, end - host)
"""


#: (figure, host code timed as the baseline, our code timed as what it adds) per row.
STATEMENTS = (
    ("import flask_mailconnect", HOST_STACK, "import flask_mailconnect"),
    (
        "from flask_mailconnect import MailConnect",
        HOST_STACK,
        "from flask_mailconnect import MailConnect",
    ),
    (
        "import + MailConnect(app, db=db), what an app factory pays",
        HOST_APP,
        "from flask_mailconnect import MailConnect\nMailConnect(app, db=db)",
    ),
)


def _compile() -> None:
    """Write the package's ``__pycache__`` (what an installed wheel has), quietly."""
    import flask_mailconnect

    compileall.compile_dir(Path(flask_mailconnect.__file__).parent, quiet=2)


def _run(ours: str, host: str = HOST_STACK) -> tuple[float, float]:
    code = _TIMED.format(host=host, ours=ours)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    return float(out[0]), float(out[1])


def heaviest(
    ours: str = "import flask_mailconnect", limit: int = 5, host: str = HOST_STACK
) -> list[tuple[str, float]]:
    """Top-level packages that ``ours`` adds, by the import time of all their modules (the sum
    of each module's own time, ms), heaviest first."""
    code = f"{host}\n{ours}"
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
        check=True,
    ).stderr  # fmt: skip
    host = subprocess.run(
        [sys.executable, "-c", f"{host}\nimport sys\nprint(' '.join(sys.modules))"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    already = set(host)
    found: dict[str, float] = {}
    for line in err.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        own, _, name = (part.strip() for part in line.split("|"))
        own = own.removeprefix("import time:").strip()
        if not own.isdigit():
            continue
        top = name.split(".")[0]
        if top in already or top == "flask_mailconnect":
            continue  # only packages the host stack did not import already
        found[top] = found.get(top, 0.0) + int(own) / 1000
    heavy = [(name, ms) for name, ms in found.items() if ms >= 0.5]  # not failed probes
    return sorted(heavy, key=lambda item: -item[1])[:limit]


def rows(*, smoke: bool = False) -> list[Row]:
    _compile()
    return [_row(figure, host, ours, smoke=smoke) for figure, host, ours in STATEMENTS]


def _row(figure: str, host: str, ours: str, *, smoke: bool) -> Row:
    runs = 1 if smoke else RUNS
    stack, added = [], []
    for _ in range(runs):
        host_only, _ = _run("", host)
        _host, took = _run(ours, host)
        stack.append(host_only)
        added.append(took)
    median_added = statistics.median(added) * 1000
    heavy = ", ".join(f"{name} {ms:.0f} ms" for name, ms in heaviest(ours, host=host))
    return measured(
        f"{figure}, added over the host stack",
        samples(added, "ms added", 1000),
        samples(stack, "ms", 1000),
        median_added / BUDGET_MS,
        at_most=1.0,
        against="Flask + Flask-SQLAlchemy + Flask-WTF + Flask-Login"
        + (" + the host's Flask() and SQLAlchemy(app)" if host != HOST_STACK else ""),
        note=f"ratio = added ms / the {BUDGET_MS:.0f} ms budget; heaviest packages it "
        f"still imports: {heavy or 'none'}",
    )  # fmt: skip


def main() -> None:
    from benchmarks.table import print_table

    print_table(rows())


if __name__ == "__main__":
    main()
