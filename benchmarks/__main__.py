"""``make bench``: run every benchmark and print ONE table (figure, ours, baseline, ratio, goal,
met); see benchmarks/table.py for the row type every module returns.

A module that fails (a peer missing that it did not detect, a bug) becomes a skipped row with
the reason: one broken benchmark never hides the others' figures.
"""

from __future__ import annotations

import importlib
import sys
import traceback
from collections.abc import Callable
from typing import Any

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


def collect(names: tuple[str, ...] = MODULES, *, smoke: bool = False) -> list[Row]:
    rows: list[Row] = []
    for name in names:
        try:
            module = importlib.import_module(f"benchmarks.{name}")
            produce: Callable[..., Any] | None = getattr(module, "rows", None)
            if produce is None:
                # A module not yet moved to the table: run it for its own printout.
                if not smoke:
                    module.main()
                rows.append(skipped(name, "prints its own output above (no rows() yet)"))
            else:
                rows.extend(produce(smoke=smoke))
        except Exception as exc:  # noqa: BLE001 - reported as a row, the rest still runs
            traceback.print_exc(file=sys.stderr)
            rows.append(skipped(name, f"failed: {type(exc).__name__}: {exc}"[:200]))
        print(f"... {name} done", file=sys.stderr, flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    names = tuple(argv if argv else sys.argv[1:]) or MODULES
    print_table(collect(names))


if __name__ == "__main__":
    main()
