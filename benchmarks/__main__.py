"""``make bench``: run every benchmark and print ONE table (figure, ours, baseline, ratio, goal,
met); see benchmarks/table.py for the row type every module returns.

Each module runs in a fresh interpreter of its own (as pyperf runs each benchmark in worker
processes): what one benchmark leaves behind (a heap of 10,000 messages, threads of a peer,
imported modules, a warm pool) must not slow or speed the next. Measured: the 200-caller token
refresh, run after the others in one process, took 50 ms against 37 ms in a fresh one, its
baseline (one refresh alone) unchanged, because the crowd's garbage collections walked the
earlier benchmarks' objects.

A module that fails (a peer missing that it did not detect, a bug, a crash of its interpreter)
becomes a skipped row with the reason: one broken benchmark never hides the others' figures.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

from benchmarks.table import Row, print_table, skipped

#: In the order printed.
MODULES = (
    "bench_bulk_send",
    "bench_import",
    "bench_check",
    "bench_test_connection",
    "bench_sync",
    "bench_pages",
    "bench_admin_list",
    "bench_refresh",
)


def rows_of(name: str, *, smoke: bool = False) -> list[Row]:
    """One module's rows, in this interpreter; a failure becomes a skipped row."""
    try:
        module = importlib.import_module(f"benchmarks.{name}")
        produce: Callable[..., list[Row]] = module.rows
        return list(produce(smoke=smoke))
    except Exception as exc:  # noqa: BLE001 - reported as a row, the rest still runs
        traceback.print_exc(file=sys.stderr)
        return [skipped(name, f"failed: {type(exc).__name__}: {exc}"[:200])]


def isolated(name: str, *, smoke: bool = False) -> list[Row]:
    """One module's rows, measured in a fresh interpreter (its printout passes through)."""
    with tempfile.TemporaryDirectory(prefix="mailconnect-bench-") as scratch:
        out = Path(scratch) / "rows.json"
        command = [sys.executable, "-m", "benchmarks", "--one", name, str(out)]
        done = subprocess.run([*command, *(["--smoke"] if smoke else [])], check=False)
        if not out.exists():  # it died before writing its rows (a crash, a signal)
            return [skipped(name, f"failed: its interpreter exited with {done.returncode}")]
        return [Row(**fields) for fields in json.loads(out.read_text())]


def collect(names: tuple[str, ...] = MODULES, *, smoke: bool = False) -> list[Row]:
    rows: list[Row] = []
    for name in names:
        rows.extend(isolated(name, smoke=smoke))
        print(f"... {name} done", file=sys.stderr, flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--one"]:  # the child of isolated(): one module, rows to a file
        name, path = args[1], Path(args[2])
        found = rows_of(name, smoke="--smoke" in args)
        path.write_text(json.dumps([dataclasses.asdict(row) for row in found]))
        return
    print_table(collect(tuple(args) or MODULES))


if __name__ == "__main__":
    main()
